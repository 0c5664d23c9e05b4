"""The daily stages over files: snapshot -> quality gate -> call lists / SLA -> results database.

Each stage reads the previous stage's partition for call date D and writes its own partition
atomically (temp folder + rename), so every stage is idempotent and safe to retry. Nothing
here imports Airflow: revisit.bridge.tasks calls these with values taken from the task context.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pyarrow.parquet as pq

from revisit.config.policy import Policy
from revisit.core.errors import RevisitError
from revisit.io.extract import Cutoff, SnapshotTables
from revisit.io.files import atomic_dir
from revisit.rules.calendar import BusinessCalendar
from revisit.stages.partitions import DayPartitions

log = logging.getLogger(__name__)


def cutoff_of(day: dt.date, policy: Policy) -> pd.Timestamp:
    """D 00:00, naive business-local: the instant the run sees the CRM at."""
    return Cutoff.for_date(day, policy.calendar.timezone, policy.source_tz).business


# Columns no daily rule reads (free text, the visits' own ids): at a million customers these
# are ~1 GB of the 11.7 M visits.
UNREAD_COLUMNS = {"visits": ("visit_id", "agent_id", "method", "notes"),
                  "tickets": ("description",)}


def read_clean(parts: DayPartitions, tables: tuple[str, ...] | None = None
               ) -> dict[str, pd.DataFrame]:
    """The clean tables of D (all of them, or `tables`), without the UNREAD_COLUMNS:
    each task holds only what its rules read."""
    if not parts.clean.exists():
        raise FileNotFoundError(f"no clean data for {parts.day}: {parts.clean} is missing "
                                "(run the quality gate first)")
    frames = {}
    for path in sorted(parts.clean.glob("*.parquet")):
        if tables is not None and path.stem not in tables:
            continue
        skip = UNREAD_COLUMNS.get(path.stem, ())
        names = [n for n in pq.read_schema(path).names if n not in skip]
        frames[path.stem] = pd.read_parquet(path, columns=names)
    return frames


def run_quality(parts: DayPartitions, policy: Policy) -> dict:
    """Quality gate over D's snapshot: quality/D/ report, clean/D/ frames, or a stop
    (revisit.quality.gate.QualityStop: no lists go out)."""
    from revisit.quality.gate import gate_or_stop

    result = gate_or_stop(SnapshotTables(parts.snapshot), policy, parts.quality, parts.day)
    with atomic_dir(parts.clean) as tmp:
        for name, frame in result.clean.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
    summary = {
        "quarantined_rows": int(result.quarantine[["table", "row_key"]].drop_duplicates().shape[0])
        if len(result.quarantine) else 0,
        "clean_rows": {name: len(frame) for name, frame in result.clean.items()},
        "report": str(parts.quality),
    }
    return summary


def run_call_lists(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar) -> dict:
    """Per-agent call lists (XLSX + CSV), SMS pre-notice, carried-over and not-listed reports."""
    from revisit.io.spreadsheet import csv_ready, write_csv, write_xlsx
    from revisit.rules.calllist import build_call_list
    from revisit.rules.visits import visit_obligations

    frames = read_clean(parts)
    obligations = visit_obligations(frames, policy, calendar, parts.day)
    result = build_call_list(obligations, frames, policy, calendar, parts.day)
    lists = result.lists
    # Cells are prepared once for all agents, then split: per-agent preparation cost more
    # than the writing with a thousand agents.
    lists = lists.reset_index(drop=True)
    as_csv, as_xlsx = csv_ready(lists), _xlsx_ready(lists)
    with atomic_dir(parts.call_lists) as tmp:
        for agent_id, rows in sorted(lists.groupby("agent_id").indices.items()):
            write_csv(as_csv.iloc[rows], tmp / f"{agent_id}.csv", ready=True)
            write_xlsx(as_xlsx.iloc[rows].reset_index(drop=True), tmp / f"{agent_id}.xlsx")
        write_csv(result.sms_notice, tmp / "sms_notice.csv")
        write_csv(result.carried_over, tmp / "carried_over.csv")
        write_csv(result.not_listed, tmp / "not_listed.csv")
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


def _xlsx_ready(rows: pd.DataFrame) -> pd.DataFrame:
    """Dates as real dates in the spreadsheet (the CSV keeps ISO text)."""
    out = rows.astype(object).where(rows.notna(), None)
    for name in ("call_date", "window_end"):
        out[name] = [dt.date.fromisoformat(v) if isinstance(v, str) else None for v in out[name]]
    return out


def run_sla(parts: DayPartitions, policy: Policy, calendar: BusinessCalendar) -> dict:
    """SLA status of every ticket metric as of D 00:00, and the per-department digests."""
    from revisit.delivery.digest import DIGEST_PREFIX
    from revisit.io.spreadsheet import write_csv
    from revisit.rules.sla import breach_digest, sla_status

    frames = read_clean(parts, ("tickets", "ticket_pauses", "customers"))
    cutoff = cutoff_of(parts.day, policy)
    status = sla_status(frames["tickets"], frames.get("ticket_pauses"), policy, calendar, cutoff)
    previous = cutoff_of(parts.day - dt.timedelta(days=1), policy)
    digests = breach_digest(status, frames["tickets"], frames["customers"], cutoff, previous)
    with atomic_dir(parts.sla) as tmp:
        write_csv(status, tmp / "sla_status.csv")
        for department_id, rows in sorted(digests.items()):
            write_csv(rows, tmp / f"{DIGEST_PREFIX}{department_id}.csv")
    write_handoff(parts, "sla_status", status)
    counts = status["status"].value_counts().to_dict()
    return {"path": str(parts.sla), "rows": len(status),
            "by_status": {str(k): int(v) for k, v in sorted(counts.items())},
            "digest_departments": sorted(digests)}


class DigestNotSent(RevisitError):
    """Some department's digest was not delivered; `retryable` says whether a retry may."""


def send_sla_digests(parts: DayPartitions, policy: Policy, url: str, transport) -> dict:
    """E-mail each department head D's digest once (ledger in the results database)."""
    from revisit.delivery.digest import send_digests
    from revisit.delivery.mail import SLA_DIGEST, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    departments = read_clean(parts, ("departments",))["departments"]
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        ledger = DeliveryLedger(engine, policy.calendar.timezone, kind=SLA_DIGEST)
        outcome = send_digests(parts.sla, departments, parts.day, policy, ledger, transport)
    finally:
        engine.dispose()
    if outcome["failed"]:  # a retry may help when one of the refused sends may be retried
        raise DigestNotSent(
            f"SLA digest of {parts.day} not delivered to " + "; ".join(
                f"{d}: {error}" for d, error in sorted(outcome["failed"].items())),
            retryable=any(error.retryable for error in outcome["failed"].values()))
    counts: dict[str, int] = {}
    for state in outcome["states"].values():
        counts[state] = counts.get(state, 0) + 1
    return {"departments": sorted(outcome["states"]), "states": counts}


CALL_LIST_RESULT_COLUMNS = {  # call-list column -> results table column
    "agent_id": "agent_id", "rank": "list_rank", "customer_id": "customer_id", "tier": "tier",
    "reasons": "reasons", "window_end": "window_end", "overdue_days": "overdue_days",
    "ticket_id": "ticket_id", "order_id": "order_id", "suggested_window": "suggested_window"}


def write_handoff(parts: DayPartitions, name: str, frame: pd.DataFrame) -> None:
    """A typed table for a later task of D (handoff/D/<name>.parquet, atomic): publish reads
    what the stage computed, not the user's CSV files parsed back."""
    from revisit.io.files import atomic_path

    with atomic_path(parts.handoff / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def read_handoff(parts: DayPartitions, name: str) -> pd.DataFrame:
    path = parts.handoff / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no {name} for {parts.day}: {path} is missing "
                                f"(run the task that writes it first)")
    return pd.read_parquet(path)


def publish_results(parts: DayPartitions, url: str) -> dict:
    """Replace D's rows in the results database with D's call lists, SLA status, quality issues."""
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema, replace_partition

    calls = read_handoff(parts, "call_list")
    sla = read_handoff(parts, "sla_status")
    for name in ("started_at", "deadline", "achieved_at"):
        sla[name] = sla[name].dt.tz_localize(None)  # naive business-local, as the table holds
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
    """quality/D/quarantine.csv as results rows: one per (table, row, check, column)."""
    quality = pd.read_csv(parts.quality / "quarantine.csv", dtype=str, keep_default_na=False,
                          na_values=[""])
    return pd.DataFrame({
        "table_name": quality.get("table"), "row_key": quality.get("row_key"),
        "check_name": quality.get("check"), "column_name": quality.get("column").fillna("")
        if "column" in quality else None, "reason": quality.get("reason"),
    }).drop_duplicates(["table_name", "row_key", "check_name", "column_name"])
