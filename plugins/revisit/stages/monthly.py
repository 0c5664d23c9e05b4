"""The monthly stages over month M's partitions: snapshot -> KPIs -> per department: render ->
send -> summary. Nothing here imports Airflow: revisit.bridge.tasks calls these with values it
took from the task context (as it does for revisit.stages.daily).

- the quality gate over M's snapshot is the daily run's (revisit.stages.daily.run_quality):
  clean/M and its split by shard;
- `run_kpis_shard`: one shard's rows -> its share of M's KPIs (revisit.rules.kpi_shares) in
  handoff/M/kpi_shares/;
- `compute_kpis`: the shares merged -> reports/M/kpis.csv and one JSON of report data per
  department in report_data/M/ (so each render task reads a small file, not the snapshot);
- `render_department`: report_data/M/<department_id>.json -> reports/M/<department_id>.pdf
  and reports/M/<department_id>_agents.xlsx (every agent; the PDF shows the strongest and
  weakest);
- `send_department`: the PDF to the department head, at most once (revisit.delivery.mail ledger);
- `summarize`: the delivery ledger of M -> reports/M/delivery.json; raises ReportsNotDelivered
  when a department's report was not delivered, naming it.

Everything returned is small (paths, ids, counts): XCom never carries customer rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from revisit.config.policy import Policy
from revisit.config.schema import TABLES
from revisit.core.errors import RevisitError
from revisit.core.periods import month_end, month_start
from revisit.rules.visits import empty_table
from revisit.stages.partitions import DayPartitions, MonthPartitions

log = logging.getLogger(__name__)


class ReportsNotDelivered(RevisitError):
    """Some department's report of M did not reach its head; a retry of the summary cannot
    change that (the send tasks retry themselves)."""

    retryable = False


# ================================================================= the gate of M
def gate_month(parts: MonthPartitions, policy: Policy) -> dict[str, Any]:
    """M's quality gate: the daily run's of M's cut-off day when it gated this very snapshot
    under the same policy (reused_gate), else the gate run over M's snapshot
    (revisit.stages.daily.run_quality)."""
    from revisit.stages.daily import run_quality

    reused = reused_gate(parts, policy)
    return reused if reused is not None else run_quality(parts, policy)


def reused_gate(parts: MonthPartitions, policy: Policy) -> dict[str, Any] | None:
    """clean/M, its shard split and quality/M from the daily run of the 1st of M+1, or None
    when that run's gate is not M's: another snapshot (M's was not the day's copy, or was
    re-extracted), another policy or code, another shard size, a stop, or nothing there.

    Why: the monthly run sees the CRM at the instant that day's run snapshotted and gated a
    few hours before (the snapshot is already reused: revisit.bridge.tasks); gating it again
    is the monthly run's largest cost after the KPIs. The clean files are linked (copied on a
    file system without links); the report is written again from the day's verdict
    (revisit.quality.stored), since it names its period."""
    from revisit.io.extract import snapshot_manifest
    from revisit.io.files import link_tree
    from revisit.io.runinfo import RUN_FILE, write_run_info
    from revisit.quality.stored import read_verdict
    from revisit.quality.summary import write_quality_outputs
    from revisit.stages.daily import GATE, gate_summary, provenance
    from revisit.stages.shard_rows import SHARD_ROWS, plan_file, plan_info

    day = DayPartitions(parts.root, parts.cutoff_date)

    def refused(why: str) -> None:  # the data team sees in the task log why M is gated again
        log.info("quality gate of %s: the daily run's of %s is not reused (%s): gated again",
                 parts.period, day.period, why)

    if parts.replay or not (day.clean / RUN_FILE).exists() \
            or not plan_file(day.handoff).exists():
        return refused("a replay" if parts.replay else "no gated day with a shard plan")
    info = provenance(parts, policy)
    gated = json.loads((day.clean / RUN_FILE).read_text(encoding="utf-8"))
    absent = object()  # a key one side lacks differs, even from a null on the other
    changed = sorted(k for k in set(gated) | set(info)
                     if k != "period" and gated.get(k, absent) != info.get(k, absent))
    if changed:
        return refused("made with another " + ", ".join(changed))
    if snapshot_manifest(day.snapshot) != snapshot_manifest(parts.snapshot):
        return refused("another snapshot")
    if plan_info(day.handoff)["max_customers_per_shard"] != policy.scale.max_customers_per_shard:
        return refused("another scale.max_customers_per_shard")
    result = read_verdict(day.handoff / GATE,
                          {"agents": pd.read_parquet(day.clean / "agents.parquet")})
    if result is None or result.stopped:
        return refused("no stored verdict" if result is None else "the day's gate stopped")
    with link_tree(day.clean, parts.clean, skip=(RUN_FILE,)) as tmp:
        write_run_info(tmp, info)  # M's own
    for folder in (SHARD_ROWS, GATE):
        with link_tree(day.handoff / folder, parts.handoff / folder):
            pass
    write_quality_outputs(result, parts.quality, parts.period, info)
    log.info("quality gate of %s: the daily run's of %s (the same snapshot and policy), not "
             "run again", parts.period, day.period)
    return {**gate_summary(result, parts), "reused": day.period}


# ================================================================= kpis
def quarantined_by_department(issues: pd.DataFrame | None, raw: RawRows
                              ) -> dict[str, int] | None:
    """Rows the daily quality gate quarantined during M (`issues`: table, row_key, from the
    results database, _quality_issues), per department (key "ALL": all); None when the
    database has no quality history."""
    from revisit.rules.kpis import COMPANY

    if issues is None:
        return None
    dept = raw.departments_of(issues["table"], issues["row_key"])
    counts = {str(k): int(v) for k, v in dept.value_counts().items()}
    counts[COMPANY] = len(issues)
    return counts


# What the gate leaves out of M's KPIs and the report's data-quality note counts, as
# (check, column) of the gate's quarantine and the stamp that puts a row in the month (None:
# counted whatever its month, e.g. a value that could not be read has no trustworthy stamp).
LEFT_OUT = {
    "parse_error_rows": ("parse_error", None, None),
    "invalid_ratings": ("range", "satisfaction", {"visits": "visited_at", "tickets": "closed_at"}),
    "tickets_without_department": ("required", "department_id", {"tickets": "created_at"}),
}
QUARANTINE_READS = ["table", "row_key", "check", "column"]  # of quality/M/quarantine.parquet


def left_out_by_gate(quarantine: pd.DataFrame, raw: RawRows, month: str
                     ) -> dict[str, dict[str, int]]:
    """Per department (and "ALL"): the rows M's quality gate quarantined, by LEFT_OUT kind —
    counts the KPIs cannot show themselves, because they run on the rows that passed."""
    from revisit.rules.kpis import COMPANY

    out: dict[str, dict[str, int]] = {}
    for kind, (check, column, stamps) in LEFT_OUT.items():
        rows = quarantine[(quarantine["check"] == check)
                          & ((quarantine["column"] == column) if column else True)]
        rows = rows.drop_duplicates(["table", "row_key"])
        if stamps is not None:
            rows = rows[rows["table"].isin(list(stamps))]
            rows = rows[_in_month(rows, raw, stamps, month)]
        dept = raw.departments_of(rows["table"], rows["row_key"])
        for department_id, count in dept.value_counts().items():
            out.setdefault(str(department_id), {})[kind] = int(count)
        out.setdefault(COMPANY, {})[kind] = len(rows)
    return out


def _in_month(rows: pd.DataFrame, raw: RawRows, stamps: dict[str, str], month: str
              ) -> np.ndarray:
    """Whether each quarantined row's own stamp (visited_at, closed_at ...) falls in M."""
    keep = np.zeros(len(rows), dtype=bool)
    for name, stamp in stamps.items():
        mask = (rows["table"] == name).to_numpy(bool)
        # reindex, not map: Series.map over an empty datetime lookup fails to cast
        when = raw.column(name, stamp)
        at = pd.to_datetime(when.reindex(rows.loc[mask, "row_key"].to_numpy()), errors="coerce")
        keep[mask] = ((at >= month_start(month)) & (at < month_end(month))).fillna(False)
    return keep


RAW_KEYS = {"customers": "customer_id", "tickets": "ticket_id", "orders": "order_id",
            "visits": "visit_id", "agents": "agent_id"}  # the tables RawRows reads, by key


class RawRows:
    """The snapshot's own rows (before the gate) of the keys the quality counts name: the
    department each belongs to, and its stamps. RawRows.read reads only those rows (a filter
    on the key), never a whole table: quarantined rows are few, the CRM is not. A row without
    a key (a visit whose customer_id is empty) belongs to no department: it is counted under
    ALL only (a lookup over the whole table used to match it to a customer row without an id,
    itself quarantined)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        """From frames of (some of) the RAW_KEYS tables: the first row of each key, as a
        lookup over the whole table keeps it."""
        self.rows = {name: _first_rows(frames[name], key) if name in frames
                     else _first_rows(empty_table(name), key)
                     for name, key in RAW_KEYS.items()}

    @classmethod
    def read(cls, snapshot: Path, *keyed: pd.DataFrame) -> RawRows:
        """The snapshot rows of every (table, row_key) in the `keyed` frames, and the
        customers of those orders and visits."""
        rows = pd.concat([f.loc[:, ["table", "row_key"]] for f in keyed], ignore_index=True)
        frames = {name: _read_keys(snapshot, name, rows.loc[rows["table"] == name, "row_key"])
                  for name in RAW_KEYS}
        owners = [frames[n]["customer_id"] for n in ("orders", "visits")]
        frames["customers"] = _read_keys(snapshot, "customers", pd.concat(
            [frames["customers"]["customer_id"], *owners], ignore_index=True))
        return cls(frames)

    def column(self, name: str, column: str) -> pd.Series:
        return self.rows[name][column]

    def departments_of(self, tables: pd.Series, keys: pd.Series) -> pd.Series:
        """The department of each (table, key): its own, its ticket's, or its customer's."""
        of_customer = self.rows["customers"]["department_id"]
        lookups = {"customers": of_customer,
                   "tickets": self.rows["tickets"]["department_id"],
                   "agents": self.rows["agents"]["department_id"],
                   "orders": self.rows["orders"]["customer_id"].map(of_customer),
                   "visits": self.rows["visits"]["customer_id"].map(of_customer)}
        dept = pd.Series(pd.NA, index=keys.index, dtype="string")
        for name, lookup in lookups.items():
            mask = (tables == name).fillna(False).to_numpy(bool)
            dept[mask] = keys[mask].map(lookup).astype("string")
        return dept


def _read_keys(snapshot: Path, name: str, values: pd.Series) -> pd.DataFrame:
    """The rows of snapshot table `name` whose key is one of `values` (none: no rows)."""
    wanted = sorted(set(values.dropna().astype(str)))
    path = snapshot / f"{name}.parquet"
    if not wanted:
        return (pq.read_schema(path).empty_table().to_pandas() if path.exists()
                else empty_table(name))
    return pd.read_parquet(path, filters=[(RAW_KEYS[name], "in", wanted)])


def _first_rows(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.drop_duplicates(key).set_index(key, drop=False)


KPI_SHARES = "kpi_shares"  # handoff/M/kpi_shares/<period>/<shard>/: one shard's KpiShare
SHARE_FILE = "share.json"  # beside the share's frames: its period and its counts
# What no KPI reads (free text): at a million customers most of the visits' bytes.
KPI_UNREAD = {"visits": ("method", "notes"), "tickets": ("description",)}


def share_folder(parts: MonthPartitions, period: str, shard: str) -> Path:
    return parts.handoff / KPI_SHARES / period / shard


def run_kpis_shard(parts: MonthPartitions, policy: Policy, shard: str) -> dict[str, Any]:
    """One shard's share of M's KPIs, and of its quarter's when M ends one
    (revisit.rules.kpi_shares), from the shard's clean rows, for the kpis task to merge."""
    from revisit.rules.calendar import BusinessCalendar
    from revisit.rules.kpi_shares import kpi_share
    from revisit.stages.company import company_periods
    from revisit.stages.daily import _shard_customers, read_clean, read_shard_rows
    from revisit.stages.shard_rows import ROUTED

    ids = _shard_customers(parts, shard).dropna().astype(str).tolist()
    whole = tuple(t for t in TABLES if t not in ROUTED and t != "customers")
    frames = {**read_clean(parts, ("customers",), {"customers": ("customer_id", ids)},
                           unread=KPI_UNREAD),
              **read_clean(parts, whole, unread=KPI_UNREAD),
              **read_shard_rows(parts, shard, tuple(ROUTED), unread=KPI_UNREAD)}
    calendar = BusinessCalendar(policy.calendar)
    for period in company_periods(parts.month):
        write_share(share_folder(parts, period, shard),
                    kpi_share(frames, policy, calendar, period))
    return {"shard": shard, "customers": len(ids)}


def _listings(results_url: str, period: str) -> pd.DataFrame | None:
    from revisit.io.results import call_list_history

    listings = call_list_history(results_url, month_start(period).date(),
                                 month_end(period).date())
    if listings is None:
        log.info("no call-list history in the results database: due visits of %s are credited "
                 "by the assignment rules", period)
    return listings


def write_share(folder: Path, share) -> None:
    """A KpiShare as one Parquet file per frame and SHARE_FILE (atomic, the folder whole)."""
    from revisit.io.files import atomic_dir
    from revisit.rules.kpi_shares import SHARE_DICTS

    with atomic_dir(folder) as tmp:
        for name, frame in share.frames().items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / SHARE_FILE).write_text(json.dumps(
            {"period": share.period, **{n: getattr(share, n) for n in SHARE_DICTS}},
            ensure_ascii=False), encoding="utf-8")


def read_share(folder: Path):
    """The KpiShare write_share wrote."""
    from revisit.rules.kpi_shares import KpiShare

    if not (folder / SHARE_FILE).exists():
        raise FileNotFoundError(f"no KPI share at {folder} (run the kpis_shard task first)")
    meta = json.loads((folder / SHARE_FILE).read_text(encoding="utf-8"))
    frames = {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}
    return KpiShare(**meta, **frames)


def merged_kpis(parts: MonthPartitions, policy: Policy, period: str, shards: list[str],
                results_url: str):
    """The MonthlyKpis of `period` from every shard's share, with the clean departments and
    agents, the customers of the visits due and the results database's call-list history of
    the period, which says who had each due visit (revisit.rules.kpi_shares.merge_shares)."""
    from revisit.rules.calllist import RULE_CUSTOMER_COLUMNS
    from revisit.rules.kpi_shares import merge_shares
    from revisit.stages.daily import read_clean

    shares = [read_share(share_folder(parts, period, shard)) for shard in shards]
    due = pd.concat([s.due["customer_id"] for s in shares], ignore_index=True)
    ids = due.dropna().astype(str).unique().tolist()
    # the due customers are read for the credit rule's pool only: its columns only (their
    # whole rows were the merge's peak, memray at 1 M customers)
    frames = {**read_clean(parts, ("departments", "agents"), unread=KPI_UNREAD),
              **read_clean(parts, ("customers",), {"customers": ("customer_id", ids)},
                           {"customers": RULE_CUSTOMER_COLUMNS}, unread=KPI_UNREAD)}
    return merge_shares(shares, frames, policy, _listings(results_url, period))


def compute_kpis(parts: MonthPartitions, policy: Policy, results_url: str,
                 shards: list[str] | None = None) -> dict[str, Any]:
    """KPIs of M: reports/M/kpis.csv, reports/M/agents.csv, report_data/M/<department>.json,
    and M's rows of the results tables kpis and agent_kpis (replaced by month; a replay
    publishes nothing), merged from `shards`' shares (run_kpis_shard).

    Without `shards`, the whole month in this one call: the quality gate over M's snapshot
    (the daily run's gate, revisit.stages.daily.run_quality: KPIs are computed from rows that
    passed it, so a rating of 11/10 or an orphan visit does not move a head's numbers;
    quality/M/ says what was left out; a stop raises revisit.quality.gate.QualityStop), then
    every shard's share."""
    from revisit.io.files import atomic_dir, safe_name
    from revisit.io.runinfo import run_info
    from revisit.quality.summary import OUTPUT_FILES
    from revisit.stages.daily import shard_plan

    if shards is None:
        gate_month(parts, policy)
        shards = shard_plan(parts).shard_ids
        for shard in shards:
            run_kpis_shard(parts, policy, shard)
    info = run_info(policy, parts.snapshot, parts.period)  # run.json: what made M's outputs
    kpis = merged_kpis(parts, policy, parts.month, shards, results_url)
    quarantine = pd.read_parquet(parts.quality / OUTPUT_FILES["quarantine_typed"],
                                 columns=QUARANTINE_READS)
    issues = _quality_issues(results_url, parts.month)
    raw = RawRows.read(parts.snapshot, quarantine, *([] if issues is None else [issues]))
    quarantined = quarantined_by_department(issues, raw)
    departments = kpis.departments["department_id"].astype(str).tolist()
    unsafe = [d for d in departments if not safe_name(d)]
    if unsafe:  # its files would land outside reports/M/ (the daily gate quarantines it too)
        log.warning("no report for departments whose id cannot name a file: %s", unsafe)
        departments = [d for d in departments if safe_name(d)]
    left_out = left_out_by_gate(quarantine, raw, parts.month)
    with atomic_dir(parts.data) as tmp:
        for department_id in departments:
            _write_report_data(tmp / f"{department_id}.json", kpis, department_id, quarantined,
                               left_out, info["snapshot"]["extracted_at"])
    files = write_period_files(parts.reports, kpis, info)
    published = None if parts.replay else publish_kpis(results_url, kpis)
    _log_company_kpis(kpis, parts.month, len(departments))
    return {"month": parts.month, **files, "departments": departments, "data": str(parts.data),
            "published": published, "shards": len(shards)}


def _quality_issues(url: str, month: str) -> pd.DataFrame | None:
    """The daily gates' quarantined (table, row_key) of M, as RawRows reads them."""
    from revisit.io.results import quality_issue_keys

    issues = quality_issue_keys(url, month_start(month).date(), month_end(month).date())
    return None if issues is None else issues.rename(columns={"table_name": "table"})


def write_period_files(folder, kpis, info: dict[str, Any]) -> dict[str, str]:
    """reports/<period>/: kpis.csv, agents.csv, sla_status.csv (the verdicts the SLA KPIs
    count) and run.json (what made them)."""
    from revisit.io.runinfo import write_run_info
    from revisit.rules.kpis import write_agents_csv, write_kpis_csv
    from revisit.rules.sla import write_status_csv

    files = {"kpis_csv": write_kpis_csv(kpis, folder / "kpis.csv"),
             "agents_csv": write_agents_csv(kpis, folder / "agents.csv"),
             "sla_csv": write_status_csv(kpis.verdicts, folder / "sla_status.csv")}
    write_run_info(folder, info)
    return {name: str(path) for name, path in files.items()}


def publish_kpis(results_url: str, kpis) -> dict[str, int]:
    """M's kpis.csv and agents.csv rows into the results tables kpis and agent_kpis, replacing
    M's previous rows of both in one transaction (a rerun never duplicates)."""
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema, replace_months
    from revisit.rules.kpis import KPI_COLUMNS, agent_rows

    engine = make_engine(results_url)
    try:
        ensure_schema(engine)
        return replace_months(engine, kpis.month, {
            "kpis": kpis.of_month().loc[:, list(KPI_COLUMNS)], "agent_kpis": agent_rows(kpis)})
    finally:
        engine.dispose()


def _write_report_data(path, kpis, department_id: str, quarantined: dict | None,
                       left_out: dict[str, dict[str, int]], extracted_at: str | None) -> None:
    """report_data/M/<department_id>.json; `extracted_at`: when M's snapshot was read."""
    from revisit.delivery.report import report_data

    count = None if quarantined is None else quarantined.get(department_id, 0)
    counts = {kind: left_out.get(department_id, {}).get(kind, 0) for kind in LEFT_OUT}
    data = report_data(kpis, department_id, quarantined=count, left_out=counts,
                       extracted_at=extracted_at)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _log_company_kpis(kpis, month: str, departments: int) -> None:
    """The company's numbers in the task log (aggregates only: no customer data)."""
    from revisit.rules.kpis import COMPANY

    company = kpis.of_month()
    company = company[company["department_id"] == COMPANY].set_index("metric")["value"]
    log.info("KPIs of %s for %d departments: %s", month, departments,
             {k: round(float(v), 3) for k, v in company.dropna().items()})


# ================================================================= per department
def _load_data(parts: MonthPartitions, department_id: str) -> dict[str, Any]:
    path = parts.data_file(department_id)
    if not path.exists():
        raise FileNotFoundError(f"no report data for {department_id} in {parts.month}: {path} "
                                "(run the kpis task first)")
    return json.loads(path.read_text(encoding="utf-8"))


def render_department(parts: MonthPartitions, policy: Policy,
                      department_id: str) -> dict[str, Any]:
    """reports/M/<department_id>.pdf and <department_id>_agents.xlsx (the full per-agent table
    the PDF leaves out) from the department's report data, each written atomically.

    Here, not in compute_kpis: the XLSX is in the report's locale, like the PDF it travels
    with, and is made from the same report data, so a rerun of one department's render remakes
    both (the send task attaches both)."""
    from revisit.delivery.report import agents_workbook, render_report

    started = time.perf_counter()
    data = _load_data(parts, department_id)
    target = render_report(data, policy, parts.pdf(department_id))
    xlsx = agents_workbook(data, policy, parts.agents_xlsx(department_id))
    seconds = round(time.perf_counter() - started, 2)
    log.info("rendered %s and %s in %.2f s", target, xlsx.name, seconds)
    return {"department_id": department_id, "pdf": str(target), "xlsx": str(xlsx),
            "seconds": seconds}


def _ledger(policy: Policy, results_url: str, kind: str | None = None):
    """The delivery ledger of the heads' reports, or of another mail `kind`."""
    from revisit.delivery.mail import REPORT, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    engine = make_engine(results_url)
    ensure_schema(engine)
    return DeliveryLedger(engine, policy.calendar.timezone, kind or REPORT)


def send_department(parts: MonthPartitions, policy: Policy, department_id: str,
                    results_url: str, transport) -> dict[str, Any]:
    """E-mail the department's PDF and its per-agent XLSX to its head, unless the delivery
    ledger says it was already sent (or may have been). Raises
    revisit.delivery.mail.DeliveryError when this attempt did not deliver; its `retryable`
    says whether another try may."""
    from revisit.delivery.mail import deliver

    data = _load_data(parts, department_id)
    pdf, xlsx = parts.pdf(department_id), parts.agents_xlsx(department_id)
    for path in (pdf, xlsx):  # the PDF promises the XLSX: never one without the other
        if not path.exists():
            raise FileNotFoundError(f"no {path} (run the render task first)")
    ledger = _ledger(policy, results_url)
    try:
        return deliver(ledger, data, pdf, policy, transport, xlsx_path=xlsx)
    finally:
        ledger.engine.dispose()


# ================================================================= summary
def summarize(parts: MonthPartitions, policy: Policy, results_url: str, *,
              sending: bool) -> dict[str, Any]:
    """The delivery state of every department of M, and of the company report to each
    leadership address (`leadership`, revisit.stages.company), in reports/M/delivery.json;
    raises ReportsNotDelivered when a report was not delivered (and sending was on), so the
    run shows it."""
    from revisit.delivery.mail import SENT
    from revisit.io.files import write_text
    from revisit.stages.company import leadership_deliveries

    deliveries = _deliveries(parts, policy, results_url)
    leadership = leadership_deliveries(parts, policy, results_url)
    counts: dict[str, int] = {}
    for item in deliveries:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    summary = {"month": parts.month, "counts": counts, "deliveries": deliveries,
               "leadership": leadership}
    target = parts.reports / "delivery.json"
    write_text(target, json.dumps(summary, ensure_ascii=False, indent=1))
    undelivered = [d for d in deliveries if d["state"] != SENT]
    for item in undelivered:
        log.error("report %s for %s not delivered: %s (%s)", parts.month, item["department_id"],
                  item["state"], item["error"] or "no attempt recorded")
    unsent = [d for d in leadership if d["state"] != SENT]
    for item in unsent:
        log.error("company report %s to %s not delivered: %s (%s)", item["period"],
                  item["recipient"], item["state"], item["error"] or "no attempt recorded")
    if (undelivered or unsent) and sending:
        raise ReportsNotDelivered(
            f"{len(undelivered)} of {len(deliveries)} monthly reports and {len(unsent)} of "
            f"{len(leadership)} company reports for {parts.month} were not delivered: "
            + ", ".join([f"{d['department_id']} ({d['state']})" for d in undelivered]
                        + [f"company report {d['period']} to {d['recipient']} ({d['state']})"
                           for d in unsent]))
    return {"month": parts.month, "counts": counts, "summary": str(target)}


# Why a department without a PDF was not sent: its render task failed or timed out
# (revisit.delivery.pdf.RenderTimeout), and the send task never ran.
NO_PDF = "no PDF: the render failed or timed out (see the department's render task log)"


def departments_with_data(parts: MonthPartitions) -> list[str]:
    """The departments the kpis task wrote report data of M for (report_data/M/*.json)."""
    return sorted(p.stem for p in parts.data.glob("*.json"))


def _deliveries(parts: MonthPartitions, policy: Policy, results_url: str) -> list[dict]:
    """One entry per department with report data: its PDF and what the ledger says."""
    departments = departments_with_data(parts)
    ledger = _ledger(policy, results_url)
    try:
        rows = {r["department_id"]: r for r in ledger.rows(parts.month)}
    finally:
        ledger.engine.dispose()
    return [{"department_id": department_id,
             **delivery_state(rows.get(department_id), parts.pdf(department_id), parts.root,
                              policy)}
            for department_id in departments]


def delivery_state(row: dict | None, pdf: Path, root: Path, policy: Policy) -> dict[str, Any]:
    """One delivery of delivery.json: its PDF (its path under the output root `root`, the
    same wherever the root is) and what the ledger row (None: no attempt) says."""
    row = row or {}
    return {
        "pdf": pdf.relative_to(root).as_posix() if pdf.exists() else None,
        "state": row.get("state", "not_attempted"),
        "attempts": row.get("attempts", 0),
        "sent_at": _iso(row.get("sent_at"), policy.calendar.timezone),
        "error": row.get("last_error") or (None if pdf.exists() else NO_PDF),
    }


def _iso(value: Any, tz: str) -> str | None:
    """A naive business-local ledger timestamp as ISO 8601 with the zone's offset."""
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=ZoneInfo(tz)).isoformat(timespec="seconds")


__all__ = [
    "LEFT_OUT",
    "ReportsNotDelivered",
    "compute_kpis",
    "delivery_state",
    "departments_with_data",
    "gate_month",
    "left_out_by_gate",
    "merged_kpis",
    "publish_kpis",
    "quarantined_by_department",
    "read_share",
    "render_department",
    "reused_gate",
    "run_kpis_shard",
    "send_department",
    "summarize",
    "write_period_files",
]
