"""What-if replay: what another policy would have done to a past day or month (DESIGN.md
"Reproducible reruns and what-if replay").

A replay recomputes D or M from the original run's stored snapshot into replays/<replay_id>/
of the output root with the same stage functions as a run (revisit.stages.partitions:
`source` is the original output root). This module names the replay's folder (one rule for
the DAGs' bridge and the command line) and compares the replay's outputs with the original
run's:

- `changes.csv` (`kind, key, before, after`): one row per value that differs, sorted by kind
  then key. An entry present on one side only has an empty `before` or `after`.
    - `sla`, key `<ticket_id>/<metric>`: the verdict (status). A deadline or overdue_minutes
      that moved while the verdict stayed the same is no row (every ticket of a priority
      whose target changed would be one, burying the flips); the summary counts them.
    - `call_list`, key `<customer_id>`: `<agent_id>:<reasons>` — who calls and why. The rank
      (shifts for everyone below an added row) and a moved window end are no rows either;
      the summary counts window ends that moved.
    - `kpi`, key `<month>/<department_id>/<metric>`: the value as reports/M/kpis.csv writes it.
    - `agent`, key `<month>/<department_id>/<agent_id>/<column>`: a reports/M/agents.csv
      value, when both runs wrote that file.
- `summary.md`: the same in counts a person reads (flips per metric and priority, call-list
  entries added / removed / changed, KPI deltas per department); the stage returns these
  counts (no customer data) for XCom and the command line.
- `replay.json`: what was replayed (period, profile, policy versions of the replay and of the
  original run, replay id).

It only reads the original output root; everything it writes is under the replay's root.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from revisit.config.policy import Policy
from revisit.core.errors import BadParam
from revisit.io.files import shown
from revisit.stages.partitions import DayPartitions, MonthPartitions

REPLAY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # names one folder
CHANGE_COLUMNS = ("kind", "key", "before", "after")
SLA, CALL_LIST, KPI, AGENT = "sla", "call_list", "kpi", "agent"
KINDS = (SLA, CALL_LIST, KPI, AGENT)
# call_lists/D/ files that are not an agent's list (revisit.stages.daily.run_call_lists).
NOT_AGENT_LISTS = ("sms_notice", "carried_over", "not_listed")
AGENT_KEYS = ("month", "department_id", "agent_id")  # agents.csv: what names a row
NONE = "(none)"  # a side without the entry, in the summary


# ================================================================= where a replay goes
def default_replay_id(period: str, policy: Policy) -> str:
    """<period>_<profile>_<policy version>: a replay of the same period under the same policy
    lands in the same folder (a rerun replaces it), another policy in another."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(policy.profile).stem) or "policy"
    return f"{period}_{stem}_{policy.version}"


def replay_id(period: str, policy: Policy, requested: str | None = None) -> str:
    """`requested` (params.replay_id, --replay-id) or the default id; one that cannot name a
    single folder (a '/', '..', a leading '.') is a BadParam: it would escape replays/."""
    chosen = str(requested) if requested else default_replay_id(period, policy)
    if not REPLAY_ID_PATTERN.fullmatch(chosen):
        raise BadParam("replay_id", chosen, "a folder name (letters, digits, . _ -)")
    return chosen


def replay_root(output_root: Path, replay_id: str) -> Path:
    """replays/<replay_id>/ of the original output root: the replay's own output root."""
    return output_root / "replays" / replay_id


def require_snapshot(parts: DayPartitions | MonthPartitions) -> None:
    """A replay recomputes only from the original run's stored snapshot, never the live CRM:
    revisit.io.extract.SnapshotMissing (not retryable) when it is gone."""
    from revisit.io.extract import SnapshotMissing, snapshot_exists

    if not snapshot_exists(parts.snapshot):
        raise SnapshotMissing(parts.period, parts.snapshot)


# ================================================================= the day
def compare_day(parts: DayPartitions, policy: Policy) -> dict[str, Any]:
    """The replay of D against the original run of D: SLA verdicts and call-list entries."""
    original = DayPartitions(_source_of(parts), parts.day)
    sla_before, sla_after = _read_sla(original.sla, "original"), _read_sla(parts.sla, "replay")
    lists_before = _read_call_lists(original.call_lists, "original")
    lists_after = _read_call_lists(parts.call_lists, "replay")
    sla = _merge(_sla_values(sla_before), _sla_values(sla_after))
    lists = _merge(_list_values(lists_before), _list_values(lists_after))
    changes = _changes({SLA: sla, CALL_LIST: lists})
    counts = {"sla": _sla_counts(sla), "call_list": _list_counts(lists)}
    record = _record(parts, policy, _run_info(original.sla), _versions(sla_before))
    lines = [*_sla_lines(counts["sla"]), *_list_lines(counts["call_list"])]
    return _write(parts, policy, changes, counts, record, lines)


def _read_sla(folder: Path, side: str) -> pd.DataFrame:
    columns = ["ticket_id", "metric", "priority", "status", "deadline", "overdue_minutes",
               "policy_version"]
    return _read_csv(_required(folder / "sla_status.csv", side), columns)


def _read_call_lists(folder: Path, side: str) -> pd.DataFrame:
    """Every agent's call_lists/D/<agent_id>.csv in one frame (agent_id, customer_id,
    reasons, window_end)."""
    columns = ["agent_id", "customer_id", "reasons", "window_end"]
    _required(folder, side)
    files = [p for p in sorted(folder.glob("*.csv")) if p.stem not in NOT_AGENT_LISTS]
    frames = [_read_csv(path, columns) for path in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=columns, dtype="string")


def _sla_values(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"key": rows["ticket_id"] + "/" + rows["metric"],
                         "value": rows["status"], "metric": rows["metric"],
                         "priority": rows["priority"],
                         "moved": rows["deadline"] + "|" + rows["overdue_minutes"]})


def _list_values(rows: pd.DataFrame) -> pd.DataFrame:
    values = pd.DataFrame({"key": rows["customer_id"], "agent": rows["agent_id"],
                           "value": rows["agent_id"] + ":" + rows["reasons"],
                           "moved": rows["window_end"]})
    return _one_per_key(values)


def _sla_counts(sla: pd.DataFrame) -> dict[str, Any]:
    """Flips as {metric: {priority: {"met->breached": n}}}, and the verdicts whose deadline
    or overdue minutes moved while they stayed the same (not rows of changes.csv)."""
    flipped = sla[sla["differs"]]
    metric = flipped["metric_after"].where(flipped["metric_after"] != "", flipped["metric_before"])
    priority = flipped["priority_after"].where(flipped["priority_after"] != "",
                                               flipped["priority_before"])
    flip = _side(flipped["value_before"]) + "->" + _side(flipped["value_after"])
    table = pd.DataFrame({"metric": metric, "priority": priority, "flip": flip})
    grouped = table.groupby(["metric", "priority", "flip"]).size()
    flips: dict[str, dict[str, dict[str, int]]] = {}
    for (m, p, f), n in grouped.sort_index().items():  # one per (metric, priority, flip)
        flips.setdefault(str(m), {}).setdefault(str(p), {})[str(f)] = int(n)
    same = sla["both"] & ~sla["differs"]
    return {"rows_before": int(sla["in_before"].sum()), "rows_after": int(sla["in_after"].sum()),
            "flipped": len(flipped), "flips": flips,
            "same_verdict_other_deadline": int((same & (sla["moved_before"]
                                                        != sla["moved_after"])).sum())}


def _list_counts(lists: pd.DataFrame) -> dict[str, int]:
    changed = lists["both"] & lists["differs"]
    same = lists["both"] & ~lists["differs"]
    return {
        "entries_before": int(lists["in_before"].sum()),
        "entries_after": int(lists["in_after"].sum()),
        "added": int((lists["in_after"] & ~lists["in_before"]).sum()),
        "removed": int((lists["in_before"] & ~lists["in_after"]).sum()),
        "changed": int(changed.sum()),
        "other_agent": int((changed & (lists["agent_before"] != lists["agent_after"])).sum()),
        "same_entry_other_window_end": int((same & (lists["moved_before"]
                                                    != lists["moved_after"])).sum()),
    }


def _sla_lines(counts: dict[str, Any]) -> list[str]:
    lines = ["## SLA verdicts", "",
             f"Verdicts: {counts['rows_before']} in the original run, {counts['rows_after']} "
             f"in the replay; {counts['flipped']} differ. {NONE}: no such verdict on that side "
             "(the policy has no such target, or, for a month, its deadline falls in another "
             "month).", ""]
    if counts["flips"]:
        lines += ["| metric | priority | before -> after | verdicts |",
                  "| --- | --- | --- | ---: |"]
        for metric, by_priority in counts["flips"].items():
            for priority, by_flip in by_priority.items():
                lines += [f"| {metric} | {priority} | {flip} | {n} |"
                          for flip, n in by_flip.items()]
        lines.append("")
    lines += [f"Same verdict, other deadline or overdue minutes (not in changes.csv): "
              f"{counts['same_verdict_other_deadline']}.", ""]
    return lines


def _list_lines(counts: dict[str, int]) -> list[str]:
    return ["## Call lists", "",
            f"Entries: {counts['entries_before']} in the original run, "
            f"{counts['entries_after']} in the replay.",
            f"Added {counts['added']}, removed {counts['removed']}, changed "
            f"{counts['changed']} (of which to another agent: {counts['other_agent']}).",
            f"Same agent and reasons, other window end (not in changes.csv): "
            f"{counts['same_entry_other_window_end']}.", ""]


# ================================================================= the month
def compare_month(parts: MonthPartitions, policy: Policy) -> dict[str, Any]:
    """The replay of M against the original run of M: kpis.csv and, when both runs wrote it,
    agents.csv."""
    original = MonthPartitions(_source_of(parts), parts.month)
    kpis = _merge(_kpi_values(_read_kpis(original.reports, "original")),
                  _kpi_values(_read_kpis(parts.reports, "replay")))
    compared = {KPI: kpis}
    counts: dict[str, Any] = {"kpi": _kpi_counts(kpis)}
    verdicts = _month_verdicts(original.reports, parts.reports)
    if verdicts is not None:  # the SLA verdicts with deadlines in M that the KPIs count
        compared[SLA] = verdicts
        counts["sla"] = _sla_counts(verdicts)
    agents_before, agents_after = original.reports / "agents.csv", parts.reports / "agents.csv"
    if agents_before.is_file() and agents_after.is_file():
        agents = _agent_merge(_read_csv(agents_before), _read_csv(agents_after))
        compared[AGENT] = agents
        counts["agent"] = {"values_changed": int(agents["differs"].sum()),
                           "agents_changed": int(_either(agents, "row")[agents["differs"]]
                                                 .nunique())}
    changes = _changes(compared)
    record = _record(parts, policy, _run_info(original.reports))
    lines = _kpi_lines(kpis, counts["kpi"]) + _agent_lines(counts.get("agent"), agents_before,
                                                          agents_after)
    if "sla" in counts:
        lines += _sla_lines(counts["sla"])
    return _write(parts, policy, changes, counts, record, lines)


def _month_verdicts(before: Path, after: Path) -> pd.DataFrame | None:
    """reports/M/sla_status.csv of both runs compared, as a day's are; None when a run has
    none (an original made before the monthly run wrote it)."""
    if not ((before / "sla_status.csv").is_file() and (after / "sla_status.csv").is_file()):
        return None
    return _merge(_sla_values(_read_sla(before, "original")),
                  _sla_values(_read_sla(after, "replay")))


def _read_kpis(folder: Path, side: str) -> pd.DataFrame:
    return _read_csv(_required(folder / "kpis.csv", side),
                     ["month", "department_id", "metric", "value"])


def _kpi_values(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"key": rows["month"] + "/" + rows["department_id"] + "/" + rows["metric"],
                         "value": rows["value"], "department_id": rows["department_id"],
                         "metric": rows["metric"]})


def _kpi_counts(kpis: pd.DataFrame) -> dict[str, Any]:
    """Per department, how many KPIs differ; the company's (ALL) deltas by metric."""
    from revisit.rules.kpis import COMPANY

    differs = kpis[kpis["differs"]]
    department = _either(differs, "department_id")
    per_department = {str(k): int(v) for k, v in department.value_counts().sort_index().items()}
    company = _deltas(differs[(department == COMPANY).to_numpy(bool)])
    return {"changed": len(differs), "by_department": per_department,
            "company_deltas": {m: d for m, d in zip(company["metric"], company["delta"],
                                                    strict=True)}}


def _deltas(rows: pd.DataFrame) -> pd.DataFrame:
    """department_id, metric, before, after, delta (None when a side is empty)."""
    before = pd.to_numeric(rows["value_before"], errors="coerce")
    after = pd.to_numeric(rows["value_after"], errors="coerce")
    delta = (after - before).round(6)
    return pd.DataFrame({
        "department_id": _either(rows, "department_id"), "metric": _either(rows, "metric"),
        "before": rows["value_before"], "after": rows["value_after"],
        "delta": delta.astype(object).where(delta.notna(), None),
    })


def _kpi_lines(kpis: pd.DataFrame, counts: dict[str, Any]) -> list[str]:
    lines = ["## KPIs", "", f"KPI values that differ: {counts['changed']}.", ""]
    table = _deltas(kpis[kpis["differs"]]).sort_values(["department_id", "metric"])
    if len(table):
        lines += ["| department | metric | before | after | delta |",
                  "| --- | --- | ---: | ---: | ---: |"]
        lines += [f"| {d} | {m} | {b or NONE} | {a or NONE} | "
                  f"{'' if delta is None else f'{delta:+.6g}'} |"
                  for d, m, b, a, delta in table.itertuples(index=False)]  # departments x KPIs
        lines.append("")
    return lines


def _agent_merge(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """agents.csv long: one value per (row, column) of the columns both files have."""
    keys = [c for c in AGENT_KEYS if c in before.columns and c in after.columns]
    values = [c for c in before.columns if c in after.columns and c not in keys]

    def long(rows: pd.DataFrame) -> pd.DataFrame:
        out = rows.loc[:, keys + values].melt(id_vars=keys, var_name="column")
        row = out[keys[0]].str.cat([out[k] for k in keys[1:]], sep="/") if keys else out.index
        return pd.DataFrame({"key": row + "/" + out["column"], "value": out["value"],
                             "row": row})

    return _merge(long(before), long(after))


def _agent_lines(counts: dict[str, int] | None, before: Path, after: Path) -> list[str]:
    if counts is None:
        missing = " and ".join(side for side, path in (("original", before), ("replay", after))
                               if not path.is_file())
        return ["## Per-agent table", "", f"agents.csv not compared: the {missing} run has none.",
                ""]
    return ["## Per-agent table", "",
            f"agents.csv values that differ: {counts['values_changed']} "
            f"(agents: {counts['agents_changed']}).", ""]


# ================================================================= comparing
def _merge(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Both sides by key (an outer merge): <column>_before / _after ("" where a side lacks
    the key), in_before / in_after / both, and differs (the values are not the same)."""
    merged = before.merge(after, on="key", how="outer", suffixes=("_before", "_after"),
                          indicator=True)
    side = merged.pop("_merge")
    merged["in_before"] = (side != "right_only").to_numpy(bool)
    merged["in_after"] = (side != "left_only").to_numpy(bool)
    merged["both"] = merged["in_before"] & merged["in_after"]
    for name in merged.columns:
        if name.endswith(("_before", "_after")) and name not in ("in_before", "in_after"):
            merged[name] = merged[name].astype("string").fillna("")
    merged["differs"] = (merged["value_before"] != merged["value_after"]).to_numpy(bool)
    return merged


def _changes(compared: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """changes.csv rows: kind, key, before, after of every differing value, by kind then key."""
    frames = [pd.DataFrame({"kind": kind, "key": merged.loc[merged["differs"], "key"],
                            "before": merged.loc[merged["differs"], "value_before"],
                            "after": merged.loc[merged["differs"], "value_after"]})
              for kind, merged in compared.items()]
    out = pd.concat(frames, ignore_index=True).astype("string")
    out["order"] = out["kind"].map({k: i for i, k in enumerate(KINDS)})
    out = out.sort_values(["order", "key"], kind="mergesort", ignore_index=True)
    return out.loc[:, list(CHANGE_COLUMNS)]


def _one_per_key(values: pd.DataFrame) -> pd.DataFrame:
    """A customer is on one list (one row per customer, DESIGN.md); were they on two, their
    entries are joined (sorted) so that the comparison stays one row per key."""
    twice = values["key"].duplicated(keep=False).to_numpy(bool)
    if not twice.any():
        return values
    rows = values[twice].sort_values(["key", "value"], kind="mergesort")
    joined = rows.groupby("key", sort=False).agg(
        {"agent": " / ".join, "value": " / ".join, "moved": " / ".join}).reset_index()
    return pd.concat([values[~twice], joined], ignore_index=True)


def _either(rows: pd.DataFrame, name: str) -> pd.Series:
    """A column from the replay's side, else the original's (an entry on one side only)."""
    after, before = rows[f"{name}_after"], rows[f"{name}_before"]
    return after.where(after != "", before)


def _side(values: pd.Series) -> pd.Series:
    return values.where(values != "", NONE)


# ================================================================= reading and writing
def _source_of(parts: DayPartitions | MonthPartitions) -> Path:
    """The original output root; a replay's root must be another folder, or it would
    overwrite the outputs it is compared with."""
    if parts.source is None:
        raise ValueError(f"{parts.root} is no replay's partitions (no source): nothing to "
                         "compare with")
    if Path(parts.root).resolve() == Path(parts.source).resolve():
        raise ValueError(f"a replay's root must not be the original output root {parts.root}")
    return Path(parts.source)


def _required(path: Path, side: str) -> Path:
    if not path.exists():
        hint = ("the original run of the period did not get that far (or its outputs were "
                "removed)" if side == "original" else "run the replay's stages first")
        raise FileNotFoundError(f"no {path} to compare with: {hint}")
    return path


def _read_csv(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The CSV as the text it holds ("" for empty cells): compared as written, no parsing."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=columns)
    return rows.astype("string")


def _versions(sla: pd.DataFrame) -> str | None:
    """The original run's policy_version from its sla_status.csv (several joined by ',')."""
    found = sorted(v for v in sla["policy_version"].unique() if v)
    return ",".join(found) or None


def _run_info(folder: Path) -> dict[str, Any]:
    """The original partition's run.json (revisit.io.runinfo; {} for a run made before it
    was written): the policy_version and profile it was computed under."""
    path = folder / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _record(parts: DayPartitions | MonthPartitions, policy: Policy, original: dict[str, Any],
            versions: str | None = None) -> dict[str, Any]:
    """replay.json: what was replayed, under which policy, against which run (the original's
    policy_version from its sla_status.csv column when there is one, else its run.json)."""
    return {"replay_id": Path(parts.root).name, "period": parts.period,
            "kind": "day" if isinstance(parts, DayPartitions) else "month",
            "profile": policy.profile or None, "policy_version": policy.version,
            "original": {"output_root": shown(parts.source),
                         "profile": original.get("profile"),
                         "policy_version": versions or original.get("policy_version")}}


def _write(parts: DayPartitions | MonthPartitions, policy: Policy, changes: pd.DataFrame,
           counts: dict[str, Any], record: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """changes.csv, summary.md and replay.json in the replay's root (each atomically); the
    counts for XCom."""
    from revisit.io.files import write_text
    from revisit.io.spreadsheet import write_csv

    root = Path(parts.root)
    by_kind = {str(k): int(v) for k, v in changes["kind"].value_counts().sort_index().items()}
    result = {**record, "changes": len(changes), "by_kind": by_kind, **counts,
              "changes_csv": str(root / "changes.csv"), "summary_md": str(root / "summary.md")}
    write_csv(changes, root / "changes.csv")
    write_text(root / "summary.md", "\n".join(_header(record, policy, len(changes), by_kind)
                                              + lines))
    write_text(root / "replay.json", json.dumps({**record, "changes": len(changes),
                                                 "by_kind": by_kind}, indent=1) + "\n")
    return result


def _header(record: dict[str, Any], policy: Policy, changes: int,
            by_kind: dict[str, int]) -> list[str]:
    kinds = ", ".join(f"{k} {n}" for k, n in by_kind.items()) or "none"
    return [f"# What-if replay of {record['period']} under {record['profile'] or 'a policy'}",
            "",
            f"Replay `{record['replay_id']}`: policy version {policy.version}; the original "
            f"run's: {record['original']['policy_version'] or 'not recorded'}.",
            "Nothing was sent or published; the original run's outputs were only read.",
            f"changes.csv: {changes} rows ({kinds}).", ""]


__all__ = [
    "CHANGE_COLUMNS", "KINDS", "REPLAY_ID_PATTERN", "compare_day", "compare_month",
    "default_replay_id", "replay_id", "replay_root", "require_snapshot",
]
