"""The daily stages over files: snapshot -> quality gate -> call lists / SLA -> results database.

Each stage reads the previous stage's partition for call date D and writes its own partition
atomically (temp folder + rename), so every stage is idempotent and safe to retry. Nothing
here imports Airflow: revisit.bridge.tasks calls these with values taken from the task context.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from revisit.config.policy import Policy
from revisit.core.errors import RevisitError
from revisit.io.extract import Cutoff, SnapshotTables
from revisit.io.files import atomic_dir
from revisit.io.runinfo import run_info, write_run_info
from revisit.rules.calendar import BusinessCalendar
from revisit.stages.partitions import DayPartitions, MonthPartitions

log = logging.getLogger(__name__)


def cutoff_of(day: dt.date, policy: Policy) -> pd.Timestamp:
    """D 00:00, naive business-local: the instant the run sees the CRM at."""
    return Cutoff.for_date(day, policy.calendar.timezone, policy.source_tz).business


def provenance(parts: DayPartitions | MonthPartitions, policy: Policy) -> dict:
    """What made D's outputs (run.json of each partition, revisit.io.runinfo): the policy, the
    snapshot read (the original run's for a replay) and the code."""
    return run_info(policy, parts.snapshot, parts.period)


# Columns no daily rule reads (free text, the visits' own ids): at a million customers these
# are ~1 GB of the 11.7 M visits.
UNREAD_COLUMNS = {"visits": ("visit_id", "agent_id", "method", "notes"),
                  "tickets": ("description",)}


Partitions = DayPartitions | MonthPartitions


def read_clean(parts: Partitions, tables: tuple[str, ...] | None = None,
               only: dict[str, tuple[str, list[str]]] | None = None,
               columns: dict[str, tuple[str, ...]] | None = None,
               unread: dict[str, tuple[str, ...]] = UNREAD_COLUMNS
               ) -> dict[str, pd.DataFrame]:
    """The clean tables of the period (all of them, or `tables`), without the `unread`
    columns: each task holds only what its rules read. `only` {table: (column, values)}:
    just the rows whose column is one of the values are ever in memory (a shard's,
    revisit.rules.shards); no values, no rows. `columns` {table: names}: only those."""
    if not parts.clean.exists():
        raise FileNotFoundError(f"no clean data for {parts.period}: {parts.clean} is missing "
                                "(run the quality gate first)")
    return {path.stem: _read_table(path, (only or {}).get(path.stem),
                                   (columns or {}).get(path.stem), unread)
            for path in sorted(parts.clean.glob("*.parquet"))
            if tables is None or path.stem in tables}


def _read_table(path, only: tuple[str, list[str]] | None = None,
                columns: tuple[str, ...] | None = None,
                unread: dict[str, tuple[str, ...]] = UNREAD_COLUMNS) -> pd.DataFrame:
    """One table file without its `unread` columns (read_clean's `only` and `columns`)."""
    skip = unread.get(path.stem, ())
    schema = pq.read_schema(path)
    names = [n for n in schema.names if n not in skip and (columns is None or n in columns)]
    rows = None
    if only is not None:
        column, values = only
        rows = pc.field(column).isin(pa.array(values, type=schema.field(column).type))
    return pd.read_parquet(path, columns=names, filters=rows)


GATE = "gate"  # handoff/<period>/gate/: the gate's verdict (revisit.quality.stored)


def run_quality(parts: Partitions, policy: Policy) -> dict:
    """Quality gate over the period's snapshot: quality/<period>/ report, clean/<period>/
    frames and their shard split (revisit.stages.shard_rows), the verdict for a later run
    over the same snapshot (revisit.quality.stored), or a stop
    (revisit.quality.gate.QualityStop: no lists or reports go out)."""
    from revisit.io.parquet import ParquetTables, file_schemas
    from revisit.quality.gate import gate_or_stop
    from revisit.quality.stored import write_verdict
    from revisit.stages.shard_rows import SHARD_ROWS, ShardRows, both

    info = provenance(parts, policy)
    # Each clean table is written as soon as it is gated (one table in memory at a time); a
    # stop leaves clean/D as it was, with the reasons in quality/D.
    types = file_schemas(parts.snapshot)
    with atomic_dir(parts.clean) as tmp, atomic_dir(parts.handoff / SHARD_ROWS) as rows, \
            ParquetTables(tmp, types) as clean, \
            ShardRows(rows, policy.scale.max_customers_per_shard, types) as by_shard:
        result = gate_or_stop(SnapshotTables(parts.snapshot), policy, parts.quality,
                              parts.period, run_info=info, sink=both(clean, by_shard))
        write_run_info(tmp, info)
        write_verdict(result, parts.handoff / GATE)
    return gate_summary(result, parts)


def gate_summary(result, parts: Partitions) -> dict:
    """What the gate task returns (counts and the report's path: no rows)."""
    return {
        "quarantined_rows": int(result.quarantine[["table", "row_key"]].drop_duplicates().shape[0])
        if len(result.quarantine) else 0,
        "clean_rows": {row.table: int(row.clean_rows) for row in result.summary.itertuples()},
        "report": str(parts.quality),
    }


def run_call_lists(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar,
                   shards: list[str] | None = None) -> dict:
    """Per-agent call lists (XLSX + CSV), SMS pre-notice, carried-over and not-listed reports;
    with `shards`, the visit obligations are the merge of those shards'
    (run_obligations_shard), the same rows."""
    from revisit.io.spreadsheet import csv_ready, write_csv, write_xlsx
    from revisit.rules.calllist import build_call_list
    from revisit.rules.visits import visit_obligations

    if shards is None:
        frames = read_clean(parts)
        obligations, history = visit_obligations(frames, policy, calendar, parts.day), None
    else:
        obligations, history, frames = _merged_obligations(parts, shards)
    result = build_call_list(obligations, frames, policy, calendar, parts.day, history)
    lists = result.lists
    # Cells are prepared once for all agents, then split: per-agent preparation cost more
    # than the writing with a thousand agents.
    lists = lists.reset_index(drop=True)
    as_csv = csv_ready(lists)
    as_xlsx, layout, title = _xlsx_ready(lists, policy.report.locale)
    with atomic_dir(parts.call_lists) as tmp:
        for agent_id, rows in sorted(lists.groupby("agent_id").indices.items()):
            write_csv(as_csv.iloc[rows], tmp / f"{agent_id}.csv", ready=True)
            write_xlsx(as_xlsx.iloc[rows].reset_index(drop=True), tmp / f"{agent_id}.xlsx",
                       title=title.format(agent_id=agent_id, date=parts.day.isoformat()),
                       **layout)
        write_csv(result.sms_notice, tmp / "sms_notice.csv")
        write_csv(result.carried_over, tmp / "carried_over.csv")
        write_csv(result.not_listed, tmp / "not_listed.csv")
        write_run_info(tmp, provenance(parts, policy))
    write_handoff(parts, "call_list",
                  lists.loc[:, list(CALL_LIST_RESULT_COLUMNS)].rename(
                      columns=CALL_LIST_RESULT_COLUMNS))
    return {
        "path": str(parts.call_lists),
        "agents": int(lists["agent_id"].nunique()),
        "rows": len(lists),
        "sms_notice": len(result.sms_notice),
        "carried_over": len(result.carried_over),
        "not_listed": len(result.not_listed),
    }


def _xlsx_ready(rows: pd.DataFrame, locale: str) -> tuple[pd.DataFrame, dict, str]:
    """The call list as the agent's XLSX shows it in `locale`, how to write it (write_xlsx's
    keyword arguments) and the printed title (fields agent_id, date); phrases: call_list.sheet.

    Every CSV column, in the CSV's order: dates as real dates (the CSV keeps ISO text), the
    tier and the reasons as labels (a reason's label is the note's phrase without its ids,
    joined by the note's separator: "使用初期回访；投诉处理后回访"), several ticket / order
    ids one per line, headers in the locale;
    then the columns the agent fills in: the outcome (a drop-down of the visit outcomes),
    the satisfaction (a whole number in the visits' range) and notes."""
    from revisit.config.schema import VISIT_OUTCOMES
    from revisit.config.translations import load_translations
    from revisit.delivery.agent_mail import reason_label
    from revisit.io.spreadsheet import Entry
    from revisit.quality.suites import RANGES
    from revisit.rules.calllist import ID_SEPARATOR, REASON_SEPARATOR

    tr = load_translations(locale)
    sheet, joiner = tr["call_list"]["sheet"], tr["call_list"]["separator"]
    out = rows.astype(object).where(rows.notna(), None)
    for name in ("call_date", "window_end"):
        out[name] = [dt.date.fromisoformat(v) if isinstance(v, str) else None for v in out[name]]
    # Labels per distinct cell: a few hundred distinct values for a million rows.
    reasons = {v: joiner.join(reason_label(code, tr) for code in v.split(REASON_SEPARATOR) if code)
               for v in out["reasons"].dropna().unique()}
    out["reasons"] = out["reasons"].map(reasons)
    # Several ids one per line: wrapped, a spreadsheet would break inside an id.
    for name in ("ticket_id", "order_id"):
        out[name] = [v.replace(ID_SEPARATOR, "\n") if isinstance(v, str) else None
                     for v in out[name]]
    out["tier"] = out["tier"].map(lambda v: sheet["tiers"].get(v, v) if v is not None else None)
    lowest, highest = RANGES[("visits", "satisfaction")]
    scale = {"lowest": lowest, "highest": highest}
    entries = (
        Entry(sheet["outcome"], choices=tuple(sheet["outcomes"].get(o, o) for o in VISIT_OUTCOMES),
              prompt=sheet["outcome_prompt"], error=sheet["outcome_error"], width=10),
        Entry(sheet["satisfaction"].format_map(scale), whole=(lowest, highest),
              prompt=sheet["satisfaction_prompt"].format_map(scale),
              error=sheet["satisfaction_error"].format_map(scale), width=8),
        Entry(sheet["notes"], width=20, wrap=True),
    )
    layout = {
        "sheet": sheet["name"],
        "headers": {name: sheet["columns"].get(name, name) for name in out.columns},
        "entries": entries,
        # Fitted to their content up to these widths, then wrapped (CJK characters count 2).
        "wrap": {"customer_name": 18, "reasons": 16, "ticket_id": 12, "order_id": 12,
                 "note": 28},
    }
    return out, layout, sheet["title"]


# ================================================================= shards (DESIGN.md scale-out)
SLA_SHARDS = "sla_shards"  # handoff/D/sla_shards/<shard>.parquet: one shard's SLA status


def shard_plan(parts: Partitions):
    """D's shard plan (revisit.rules.shards): the one the quality gate split D's rows by
    (revisit.stages.shard_rows), the same in every task that asks."""
    from revisit.stages.shard_rows import read_plan

    return read_plan(parts.handoff)


def plan_of_shard(parts: Partitions, shard: str):
    """D's shard plan, which must know `shard` (a mapped task of another plan is refused)."""
    plan = shard_plan(parts)
    if shard not in plan.shard_ids:
        raise RevisitError(f"shard {shard!r} is not in the plan of {parts.period} "
                           f"({len(plan.shard_ids)} shards)", retryable=False)
    return plan


def run_sla_shard(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar,
                  shard: str) -> dict:
    """The SLA status as of D 00:00 of the tickets of one shard's customers (and their pauses:
    the shard's rows, revisit.stages.shard_rows), for the sla task to merge."""
    from revisit.io.parquet import MERGED_ROW_GROUP_ROWS
    from revisit.rules.sla import sla_status

    plan_of_shard(parts, shard)
    rows = read_shard_rows(parts, shard, ("tickets", "ticket_pauses"))
    status = sla_status(rows["tickets"], rows["ticket_pauses"], policy, calendar,
                        cutoff_of(parts.day, policy))
    write_handoff(parts, f"{SLA_SHARDS}/{shard}", status, MERGED_ROW_GROUP_ROWS)
    return {"shard": shard, "tickets": len(rows["tickets"]), "rows": len(status)}


def read_shard_rows(parts: Partitions, shard: str, tables: tuple[str, ...],
                    unread: dict[str, tuple[str, ...]] = UNREAD_COLUMNS
                    ) -> dict[str, pd.DataFrame]:
    """One shard's clean rows of `tables` (revisit.stages.shard_rows), without the `unread`
    columns, as read_clean filtered to the shard would give them."""
    from revisit.stages.shard_rows import shard_rows_file

    frames = {}
    for name in tables:
        path = shard_rows_file(parts.handoff, shard, name)
        if not path.exists():
            raise FileNotFoundError(f"no {name} rows of shard {shard} for {parts.period}: "
                                    f"{path} is missing (run the quality gate first)")
        frames[name] = _read_table(path, unread=unread)
    return frames


OBLIGATION_SHARDS = "obligation_shards"  # handoff/D/obligation_shards/<shard>.parquet
OBLIGATION_ROWS = ("orders", "tickets", "visits")  # what visit_obligations reads by shard


HISTORY_SHARDS = "history_shards"  # handoff/D/history_shards/<shard>.parquet


def run_obligations_shard(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar,
                          shard: str) -> dict:
    """One shard's customers at D (their orders, tickets and visits only are read): the visit
    obligations the call lists can use, and those customers' history (what the ranking reads
    of their visits and tickets), for the call_lists task to merge."""
    from revisit.rules.calllist import customer_history, listable_obligations
    from revisit.rules.visits import visit_obligations

    ids = _shard_customers(parts, shard).dropna().astype(str).tolist()
    frames = {**read_clean(parts, ("customers",), {"customers": ("customer_id", ids)}),
              **read_shard_rows(parts, shard, OBLIGATION_ROWS)}
    obligations = listable_obligations(visit_obligations(frames, policy, calendar, parts.day),
                                       policy, calendar, parts.day)
    history = customer_history(frames, policy, parts.day,
                               obligations["customer_id"].drop_duplicates())
    write_handoff(parts, f"{OBLIGATION_SHARDS}/{shard}", obligations)
    write_handoff(parts, f"{HISTORY_SHARDS}/{shard}", history)
    return {"shard": shard, "customers": len(ids), "obligations": len(obligations)}


def _merged_obligations(parts: DayPartitions, shards: list[str]
                        ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """(the shards' obligations merged, their customers' history, the clean agents and the
    customers those obligations name): all build_call_list reads, bounded by who has
    something to do at D rather than by the CRM."""
    from revisit.rules.calllist import CUSTOMER_READS
    from revisit.rules.visits import merge_obligations

    obligations = merge_obligations([read_handoff(parts, f"{OBLIGATION_SHARDS}/{shard}")
                                     for shard in shards])
    history = pd.concat([read_handoff(parts, f"{HISTORY_SHARDS}/{shard}") for shard in shards],
                        ignore_index=True)
    ids = obligations["customer_id"].dropna().astype(str).unique().tolist()
    frames = read_clean(parts, ("customers", "agents"), {"customers": ("customer_id", ids)},
                        {"customers": CUSTOMER_READS})
    return obligations, history, frames


def _shard_customers(parts: Partitions, shard: str) -> pd.Series:
    """The ids of `shard`'s clean customers, in the clean table's order: as the quality gate's
    shard split wrote them (revisit.stages.shard_rows), else (a split written before it wrote
    them: a retry or a reused gate across an upgrade) from every clean customer's shard."""
    from revisit.stages.shard_rows import CUSTOMER_IDS, shard_rows_file

    plan = plan_of_shard(parts, shard)
    path = shard_rows_file(parts.handoff, shard, CUSTOMER_IDS)
    if path.exists():
        return pd.read_parquet(path, columns=["customer_id"])["customer_id"]
    log.info("shard %s of %s: no %s, its customers found from every clean customer's shard",
             shard, parts.period, path.name)
    customers = pd.read_parquet(parts.clean / "customers.parquet",
                                columns=["customer_id", "department_id"])
    mine = plan.shard_of(customers["department_id"], customers["customer_id"]) == shard
    return customers["customer_id"][mine.to_numpy(bool)]


def _merged_sla(parts: DayPartitions, policy: Policy, shards: list[str]
                ) -> tuple[Iterator[pd.DataFrame], pa.Schema]:
    """The shards' SLA status in sla_status's order (by ticket_id; a ticket's rows come from
    one shard, already in the policy's metric order), `scale.merge_rows` rows at a time, and
    the one schema of those parts."""
    from revisit.io.parquet import merged_frames, unified_schema

    paths = [handoff_file(parts, f"{SLA_SHARDS}/{shard}") for shard in shards]
    return merged_frames(paths, "ticket_id", policy.scale.merge_rows), unified_schema(paths)


def run_sla(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar,
            shards: list[str] | None = None) -> dict:
    """SLA status of every ticket metric as of D 00:00, and the per-department digests;
    with `shards`, the status is the merge of those shards' (run_sla_shard), the same rows,
    written as it is merged: the task holds `scale.merge_rows` status rows and the few the
    digests list, not every ticket's."""
    from revisit.rules.sla import sla_status

    if shards is None:
        frames = read_clean(parts, ("tickets", "ticket_pauses"))
        status = sla_status(frames["tickets"], frames.get("ticket_pauses"), policy, calendar,
                            cutoff_of(parts.day, policy))
        del frames
        step = policy.scale.merge_rows
        return _write_sla(parts, policy, (status.iloc[start:start + step]
                                          for start in range(0, max(len(status), 1), step)),
                          pa.Schema.from_pandas(status, preserve_index=False))
    return _write_sla(parts, policy, *_merged_sla(parts, policy, shards))


def _write_sla(parts: DayPartitions, policy: Policy, status: Iterator[pd.DataFrame],
               schema: pa.Schema | None = None) -> dict:
    """sla/D (sla_status.csv, a digest CSV per department, run.json), handoff/D/sla_status and
    the quality summary's unknown section, from the status in parts (of `schema`, when
    several)."""
    from revisit.delivery.digest import DIGEST_PREFIX
    from revisit.io.files import atomic_path
    from revisit.io.parquet import parquet_writer
    from revisit.io.spreadsheet import csv_writer, write_csv
    from revisit.quality.summary import write_sla_unknown_section
    from revisit.rules.sla import (
        DIGEST_READS,
        UNKNOWN,
        breach_digest,
        digest_candidates,
        digest_parties,
        status_csv_rows,
    )

    cutoff = cutoff_of(parts.day, policy)
    previous = cutoff_of(parts.day - dt.timedelta(days=1), policy)
    listed, unknown, counts, rows = [], [], pd.Series(dtype="int64"), 0
    with atomic_dir(parts.sla) as tmp, \
            atomic_path(parts.handoff / "sla_status.parquet") as handoff, \
            csv_writer(tmp / "sla_status.csv") as to_csv, \
            parquet_writer(handoff, schema) as to_handoff:
        for part in status:  # the CSV says true / false; the handoff keeps bool
            to_csv(status_csv_rows(part))
            to_handoff(part)
            listed.append(digest_candidates(part, cutoff, previous))
            unknown.append(part.loc[(part["status"] == UNKNOWN).to_numpy(bool),
                                    ["ticket_id", "metric"]])
            counts = counts.add(part["status"].value_counts(), fill_value=0)
            rows += len(part)
        candidates = pd.concat(listed, ignore_index=True)
        tickets, customers = digest_parties(candidates, cutoff, previous)
        # the digests name a few tickets and customers: only those are read
        frames = read_clean(parts, ("tickets", "customers"),
                            {"tickets": ("ticket_id", tickets),
                             "customers": ("customer_id", customers)}, DIGEST_READS)
        digests = breach_digest(candidates, frames["tickets"], frames["customers"], cutoff,
                                previous)
        for department_id, digest in sorted(digests.items()):
            write_csv(digest, tmp / f"{DIGEST_PREFIX}{department_id}.csv")
        write_run_info(tmp, provenance(parts, policy))
    # DESIGN.md: unknown verdicts are listed in the quality summary (ids only). The gate wrote
    # quality/D/summary.{md,html} before SLA ran: its section is put in by marker, the rest of
    # the files untouched.
    write_sla_unknown_section(parts.quality, pd.concat(unknown, ignore_index=True))
    return {"path": str(parts.sla), "rows": rows,
            "by_status": {str(k): int(v) for k, v in sorted(counts.items())},
            "digest_departments": sorted(digests)}


class DigestNotSent(RevisitError):
    """Some department's digest was not delivered; `retryable` says whether a retry may."""


def send_sla_digests(parts: DayPartitions, policy: Policy, url: str, transport) -> dict:
    """E-mail each department head D's digest once, and each active supervisor of a department
    with escalated rows (policy `sla.escalate_priorities`, at_risk or breached) their copy
    once (ledger in the results database: kinds sla_digest and escalation). A supervisor
    without a valid address is reported (ids in the result and the log), not failed."""
    from revisit.delivery.digest import send_digests, send_escalations
    from revisit.delivery.mail import ESCALATION, SLA_DIGEST, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    clean = read_clean(parts, ("departments", "agents"))
    departments, agents = clean["departments"], clean["agents"]
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        ledger = DeliveryLedger(engine, policy.calendar.timezone, kind=SLA_DIGEST)
        outcome = send_digests(parts.sla, departments, parts.day, policy, ledger, transport)
        escalated = send_escalations(
            parts.sla, departments, agents, parts.day, policy,
            DeliveryLedger(engine, policy.calendar.timezone, kind=ESCALATION), transport)
    finally:
        engine.dispose()
    if escalated["no_address"]:  # ids only: no name or address in the log
        log.warning("SLA escalation of %s not e-mailed to %d supervisor(s) without a valid "
                    "address: %s", parts.day, len(escalated["no_address"]),
                    ", ".join(escalated["no_address"]))
    failed = {**outcome["failed"],
              **{f"supervisor {a}": e for a, e in escalated["failed"].items()}}
    if failed:  # a retry may help when one of the refused sends may be retried
        raise DigestNotSent(
            f"SLA digest of {parts.day} not delivered to " + "; ".join(
                f"{d}: {error}" for d, error in sorted(failed.items())),
            retryable=any(error.retryable for error in failed.values()))
    counts: dict[str, int] = {}
    for state in outcome["states"].values():
        counts[state] = counts.get(state, 0) + 1
    escalations: dict[str, int] = {}
    for state in escalated["states"].values():
        escalations[state] = escalations.get(state, 0) + 1
    return {"departments": sorted(outcome["states"]), "states": counts,
            "escalations": escalations, "no_address": escalated["no_address"]}


class CallListsNotSent(RevisitError):
    """Some agent's call-list e-mail was not delivered; `retryable` says whether a retry may."""


def send_call_lists(parts: DayPartitions, policy: Policy, url: str, transport) -> dict:
    """E-mail each agent with a non-empty list of D their own XLSX, and each ticket handler
    their due-today / at-risk tickets (from the sla task's digests in sla/D/), in one message
    per agent once (ledger in the results database, kind call_list, key (agent, D)); a handler
    without a list gets the message without attachment. An agent without a valid address is
    reported (ids in the result and the log), not failed: the others get theirs and a retry
    could not fix the CRM."""
    from revisit.delivery.agent_mail import read_handler_tickets, send_agent_lists
    from revisit.delivery.mail import CALL_LIST, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    if not parts.call_lists.exists():
        raise FileNotFoundError(f"no call lists for {parts.day}: {parts.call_lists} is missing "
                                "(run the call_lists task first)")
    if not parts.sla.exists():
        raise FileNotFoundError(f"no SLA status for {parts.day}: {parts.sla} is missing "
                                "(run the sla task first)")
    tickets = read_handler_tickets(parts.sla)
    agents = read_clean(parts, ("agents",))["agents"]
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        ledger = DeliveryLedger(engine, policy.calendar.timezone, kind=CALL_LIST)
        outcome = send_agent_lists(parts.call_lists, agents, parts.day, policy, ledger,
                                   transport, tickets=tickets)
    finally:
        engine.dispose()
    no_address = sorted(outcome["no_address"])
    if no_address:  # ids only: no name or address in the log
        log.warning("call lists of %s not e-mailed to %d agent(s) without a valid address: %s",
                    parts.day, len(no_address), ", ".join(no_address))
    if outcome["failed"]:  # a retry may help when one of the refused sends may be retried
        raise CallListsNotSent(
            f"call lists of {parts.day} not delivered to " + "; ".join(
                f"{a}: {error}" for a, error in sorted(outcome["failed"].items())),
            retryable=any(error.retryable for error in outcome["failed"].values()))
    counts: dict[str, int] = {}
    for state in outcome["states"].values():
        counts[state] = counts.get(state, 0) + 1
    # Counts, not the agents' ids (XCom stays small with a thousand agents); ids only of
    # those without an address, for the quality summary.
    return {"agents": len(outcome["states"]), "states": counts, "no_address": no_address}


CALL_LIST_RESULT_COLUMNS = {  # call-list column -> results table column
    "agent_id": "agent_id", "rank": "list_rank", "customer_id": "customer_id", "tier": "tier",
    "reasons": "reasons", "window_end": "window_end", "overdue_days": "overdue_days",
    "ticket_id": "ticket_id", "order_id": "order_id", "suggested_window": "suggested_window"}


def write_handoff(parts: DayPartitions, name: str, frame: pd.DataFrame,
                  row_group_rows: int | None = None) -> None:
    """A typed table for a later task of D (handoff/D/<name>.parquet, atomic): publish reads
    what the stage computed, not the user's CSV files parsed back. `row_group_rows`: for a
    file a merge reads part by part (revisit.io.parquet.merged_frames)."""
    from revisit.io.files import atomic_path

    with atomic_path(parts.handoff / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False, row_group_size=row_group_rows)


def read_handoff(parts: DayPartitions, name: str) -> pd.DataFrame:
    return pd.read_parquet(handoff_file(parts, name))


def handoff_file(parts: DayPartitions, name: str) -> Path:
    """handoff/D/<name>.parquet, which an earlier task of D wrote (else a clear error)."""
    path = parts.handoff / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no {name} for {parts.day}: {path} is missing "
                                f"(run the task that writes it first)")
    return path


PUBLISHED_HANDOFFS = ("call_list", "sla_status")  # what publish_results reads of handoff/D


def publish_results(parts: DayPartitions, policy: Policy, url: str) -> dict:
    """Replace D's rows in the results database with D's call lists, SLA status, quality
    issues; the hand-offs are read `scale.merge_rows` rows at a time, not whole."""
    from revisit.io.db import make_engine
    from revisit.io.parquet import frames_of
    from revisit.io.results import ensure_schema, replace_partition

    def naive_sla(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for sla in frames:  # naive business-local, as the table holds
            yield sla.assign(**{name: sla[name].dt.tz_localize(None)
                                for name in ("started_at", "deadline", "achieved_at")})

    calls, sla = (frames_of(handoff_file(parts, name), policy.scale.merge_rows)
                  for name in PUBLISHED_HANDOFFS)
    sla = naive_sla(sla)
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        written = {
            "call_list": replace_partition(engine, "call_list", parts.day, calls),
            "sla_status": replace_partition(engine, "sla_status", parts.day, sla),
            "quality_issues": replace_partition(engine, "quality_issues", parts.day,
                                                _quality_issues(parts)),
        }
    finally:
        engine.dispose()
    return written


def _quality_issues(parts: DayPartitions) -> pd.DataFrame:
    """quality/D/quarantine.parquet (the CSV's rows as the gate made them) as results rows:
    one per (table, row, check, column)."""
    quality = pd.read_parquet(parts.quality / "quarantine.parquet")
    return pd.DataFrame({
        "table_name": quality.get("table"), "row_key": quality.get("row_key"),
        "check_name": quality.get("check"), "column_name": quality.get("column").fillna("")
        if "column" in quality else None, "reason": quality.get("reason"),
    }).drop_duplicates(["table_name", "row_key", "check_name", "column_name"])
