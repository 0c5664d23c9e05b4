"""The daily stages over files: snapshot -> quality gate -> call lists / SLA -> results database.

Each stage reads the previous stage's partition for call date D and writes its own partition
atomically (temp folder + rename), so every stage is idempotent and safe to retry. Nothing
here imports Airflow: runtime.py calls these with values taken from the task context.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from revisit.config.policy import Policy
from revisit.io.extract import Cutoff, SnapshotTables, snapshot_dir
from revisit.io.files import atomic_dir
from revisit.rules.calendar import BusinessCalendar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partitions:
    """Where each stage of call date D reads and writes, under the output root."""

    root: Path
    day: dt.date

    @property
    def snapshot(self) -> Path:
        return snapshot_dir(self.root, self.day.isoformat())

    @property
    def clean(self) -> Path:
        return self.root / "clean" / self.day.isoformat()

    @property
    def quality(self) -> Path:
        return self.root / "quality" / self.day.isoformat()

    @property
    def call_lists(self) -> Path:
        return self.root / "call_lists" / self.day.isoformat()

    @property
    def sla(self) -> Path:
        return self.root / "sla" / self.day.isoformat()


def cutoff_of(day: dt.date, policy: Policy) -> pd.Timestamp:
    """D 00:00, naive business-local: the instant the run sees the CRM at."""
    return Cutoff.for_date(day, policy.calendar.timezone, policy.source_tz).business


# Columns no daily rule reads (free text, the visits' own ids): at a million customers these
# are ~1 GB of the 11.7 M visits.
UNREAD_COLUMNS = {"visits": ("visit_id", "agent_id", "method", "notes"),
                  "tickets": ("description",)}


def read_clean(parts: Partitions, tables: tuple[str, ...] | None = None
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


def run_quality(parts: Partitions, policy: Policy) -> dict:
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


def run_call_lists(parts: Partitions, policy: Policy, calendar: BusinessCalendar) -> dict:
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


def run_sla(parts: Partitions, policy: Policy, calendar: BusinessCalendar) -> dict:
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
    counts = status["status"].value_counts().to_dict()
    return {"path": str(parts.sla), "rows": len(status),
            "by_status": {str(k): int(v) for k, v in sorted(counts.items())},
            "digest_departments": sorted(digests)}


class DigestNotSent(RuntimeError):
    """Some department's digest was not delivered; `retryable` says whether a retry may."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def send_sla_digests(parts: Partitions, policy: Policy, url: str, transport) -> dict:
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
        rows = {r["department_id"]: r["state"] for r in ledger.month(parts.day.isoformat())}
    finally:
        engine.dispose()
    if outcome["failed"]:
        retryable = any(rows.get(d) == "failed" and "no valid head_email" not in reason
                        for d, reason in outcome["failed"].items())
        raise DigestNotSent(
            f"SLA digest of {parts.day} not delivered to " + "; ".join(
                f"{d}: {reason}" for d, reason in sorted(outcome["failed"].items())),
            retryable=retryable)
    counts: dict[str, int] = {}
    for state in outcome["states"].values():
        counts[state] = counts.get(state, 0) + 1
    return {"departments": sorted(outcome["states"]), "states": counts}


def publish_results(parts: Partitions, url: str) -> dict:
    """Replace D's rows in the results database with D's call lists, SLA status, quality issues."""
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema, replace_partition

    calls = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
         for p in sorted(parts.call_lists.glob("*.csv"))
         if p.stem not in ("sms_notice", "carried_over", "not_listed")] or [pd.DataFrame()],
        ignore_index=True,
    )
    call_rows = pd.DataFrame({
        "agent_id": calls.get("agent_id"), "list_rank": calls.get("rank"),
        "customer_id": calls.get("customer_id"), "tier": calls.get("tier"),
        "reasons": calls.get("reasons"), "window_end": calls.get("window_end"),
        "overdue_days": calls.get("overdue_days"), "ticket_id": calls.get("ticket_id"),
        "order_id": calls.get("order_id"), "suggested_window": calls.get("suggested_window"),
    }) if len(calls) else pd.DataFrame(columns=[
        "agent_id", "list_rank", "customer_id", "tier", "reasons", "window_end",
        "overdue_days", "ticket_id", "order_id", "suggested_window"])
    sla = pd.read_csv(parts.sla / "sla_status.csv", dtype=str, keep_default_na=False,
                      na_values=[""])
    for name in ("started_at", "deadline", "achieved_at"):
        sla[name] = pd.to_datetime(sla[name], format="ISO8601").dt.tz_localize(None) \
            if sla[name].notna().any() else pd.NaT
    quality = pd.read_csv(parts.quality / "quarantine.csv", dtype=str, keep_default_na=False,
                          na_values=[""])
    issues = pd.DataFrame({
        "table_name": quality.get("table"), "row_key": quality.get("row_key"),
        "check_name": quality.get("check"), "column_name": quality.get("column").fillna("")
        if "column" in quality else None, "reason": quality.get("reason"),
    }).drop_duplicates(["table_name", "row_key", "check_name", "column_name"])

    engine = make_engine(url)
    try:
        ensure_schema(engine)
        written = {
            "call_list": replace_partition(engine, "call_list", parts.day, call_rows),
            "sla_status": replace_partition(engine, "sla_status", parts.day, sla),
            "quality_issues": replace_partition(engine, "quality_issues", parts.day, issues),
        }
    finally:
        engine.dispose()
    return written
