"""The monthly stages the revisit_monthly DAG calls: Airflow context -> domain functions.

    extract (runtime.extract_monthly) -> kpis -> per department: render -> send -> summary

- `compute_kpis`: the snapshot of month M -> reports/M/kpis.csv and one JSON of report data per
  department in report_data/M/ (so each render task reads a small file, not the snapshot);
- `render_department`: report_data/M/<department_id>.json -> reports/M/<department_id>.pdf;
- `send_department`: the PDF to the department head, at most once (revisit.delivery.mail ledger);
- `summarize`: the delivery ledger of M -> reports/M/delivery.json; fails the run when a
  department's report was not delivered, naming it.

Everything returned is small (paths, ids, counts): XCom never carries customer rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from revisit.bridge.tasks import report_month, results_url, sending
from revisit.config.paths import output_root
from revisit.config.policy import Policy, load_policy

log = logging.getLogger(__name__)


def reports_dir(root: Path, month: str) -> Path:
    """reports/M: the PDFs, kpis.csv and delivery.json of month M."""
    return root / "reports" / month


def data_dir(root: Path, month: str) -> Path:
    """report_data/M: one JSON of report data per department (masked, no raw phones)."""
    return root / "report_data" / month


def _month(context: dict[str, Any]) -> tuple[str, Policy]:
    policy = load_policy()
    return report_month(context, policy), policy


# ================================================================= kpis
def quarantined_by_department(url: str, month: str, frames: dict) -> dict[str, int] | None:
    """Rows the daily quality gate quarantined during M, per department (key "ALL": all),
    from the results database; None when the database has no quality history."""
    import pandas as pd
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from revisit.io.db import make_engine
    from revisit.rules.kpis import COMPANY, month_end, month_start

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT DISTINCT table_name, row_key FROM quality_issues "
                "WHERE run_date >= :start AND run_date < :end"),
                {"start": month_start(month).date(), "end": month_end(month).date()}).all()
        issues = pd.DataFrame([tuple(r) for r in rows], columns=["table_name", "row_key"],
                              dtype="string")
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    customers = frames["customers"].drop_duplicates("customer_id").set_index("customer_id")
    dept_of_customer = customers["department_id"]
    lookups = {
        "customers": dept_of_customer,
        "tickets": frames["tickets"].drop_duplicates("ticket_id")
        .set_index("ticket_id")["department_id"],
        "orders": frames["orders"].drop_duplicates("order_id").set_index("order_id")
        ["customer_id"].map(dept_of_customer),
        "visits": frames["visits"].drop_duplicates("visit_id").set_index("visit_id")
        ["customer_id"].map(dept_of_customer),
        "agents": frames["agents"].drop_duplicates("agent_id").set_index("agent_id")
        ["department_id"],
    }
    dept = pd.Series(pd.NA, index=issues.index, dtype="string")
    for name, lookup in lookups.items():
        rows = (issues["table_name"] == name).to_numpy(bool)
        dept[rows] = issues.loc[rows, "row_key"].map(lookup).astype("string")
    counts = {str(k): int(v) for k, v in dept.value_counts().items()}
    counts[COMPANY] = len(issues)
    return counts


def compute_kpis(context: dict[str, Any]) -> dict[str, Any]:
    """KPIs of M from snapshots/M: reports/M/kpis.csv and report_data/M/<department>.json."""
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.delivery.report import report_data
    from revisit.io.extract import read_snapshot, snapshot_dir
    from revisit.io.files import atomic_dir, safe_name
    from revisit.quality.gate import QualityStop, gate_or_stop
    from revisit.rules.calendar import BusinessCalendar
    from revisit.rules.kpis import COMPANY, compute_monthly, write_kpis_csv

    month, policy = _month(context)
    root = output_root()
    frames = read_snapshot(snapshot_dir(root, month))
    # The same gate as the daily run: KPIs are computed from rows that passed it (a rating of
    # 11/10 or an orphan visit does not move a head's numbers); quality/M/ says what was left out.
    try:
        gate = gate_or_stop(frames, policy, root / "quality" / month, month)
    except QualityStop as stop:  # the data will not change: no retries
        raise AirflowFailException(str(stop)) from None
    kpis = compute_monthly(gate.clean, policy, BusinessCalendar(policy.calendar), month)
    quarantined = quarantined_by_department(results_url(), month, frames)
    departments = kpis.departments["department_id"].astype(str).tolist()
    unsafe = [d for d in departments if not safe_name(d)]
    if unsafe:  # its files would land outside reports/M/ (the daily gate quarantines it too)
        log.warning("no report for departments whose id cannot name a file: %s", unsafe)
        departments = [d for d in departments if safe_name(d)]
    with atomic_dir(data_dir(root, month)) as tmp:
        for department_id in departments:
            count = None if quarantined is None else quarantined.get(department_id, 0)
            data = report_data(kpis, department_id, quarantined=count)
            (tmp / f"{department_id}.json").write_text(
                json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    csv = write_kpis_csv(kpis, reports_dir(root, month) / "kpis.csv")
    company = kpis.of_month()
    company = company[company["department_id"] == COMPANY].set_index("metric")["value"]
    log.info("KPIs of %s for %d departments: %s", month, len(departments),
             {k: round(float(v), 3) for k, v in company.dropna().items()})
    return {"month": month, "kpis_csv": str(csv), "departments": departments,
            "data": str(data_dir(root, month))}


# ================================================================= per department
def _load_data(root: Path, month: str, department_id: str) -> dict[str, Any]:
    path = data_dir(root, month) / f"{department_id}.json"
    if not path.exists():
        raise FileNotFoundError(f"no report data for {department_id} in {month}: {path} "
                                "(run the kpis task first)")
    return json.loads(path.read_text(encoding="utf-8"))


def pdf_path(root: Path, month: str, department_id: str) -> Path:
    return reports_dir(root, month) / f"{department_id}.pdf"


def render_department(context: dict[str, Any], department_id: str) -> dict[str, Any]:
    """reports/M/<department_id>.pdf from the department's report data (atomic write)."""
    from revisit.delivery.report import render_report

    month, policy = _month(context)
    root = output_root()
    started = time.perf_counter()
    target = render_report(_load_data(root, month, department_id), policy,
                           pdf_path(root, month, department_id))
    seconds = round(time.perf_counter() - started, 2)
    log.info("rendered %s in %.2f s", target, seconds)
    return {"department_id": department_id, "pdf": str(target), "seconds": seconds}


def _ledger(policy: Policy):
    from revisit.delivery.mail import DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    engine = make_engine(results_url())
    ensure_schema(engine)
    return DeliveryLedger(engine, policy.calendar.timezone)


def send_department(context: dict[str, Any], department_id: str,
                    transport=None) -> dict[str, Any]:
    """E-mail the department's PDF to its head through `smtp_default`, unless the delivery
    ledger says it was already sent (or may have been). A refused send fails the try (Airflow
    retries it); one that must not be retried fails without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.delivery.mail import DeliveryError, SmtpHookTransport, deliver

    month, policy = _month(context)
    if not sending(context):
        log.info("params.send_email is off: the report for %s is not sent", department_id)
        return {"department_id": department_id, "state": "not_sent", "sent": False}
    root = output_root()
    data = _load_data(root, month, department_id)
    pdf = pdf_path(root, month, department_id)
    if not pdf.exists():
        raise FileNotFoundError(f"no report {pdf} (run the render task first)")
    ledger = _ledger(policy)
    try:
        return deliver(ledger, data, pdf, policy, transport or SmtpHookTransport())
    except DeliveryError as error:
        if not error.retryable:
            raise AirflowFailException(str(error)) from error
        raise
    finally:
        ledger.engine.dispose()


# ================================================================= summary
def summarize(context: dict[str, Any]) -> dict[str, Any]:
    """The delivery state of every department of M in reports/M/delivery.json; fails (without
    retries) when a department's report was not delivered, so the run shows it."""
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.delivery.mail import SENT
    from revisit.io.files import write_text

    month, policy = _month(context)
    root = output_root()
    departments = sorted(p.stem for p in data_dir(root, month).glob("*.json"))
    ledger = _ledger(policy)
    try:
        rows = {r["department_id"]: r for r in ledger.month(month)}
    finally:
        ledger.engine.dispose()
    deliveries = []
    for department_id in departments:
        row = rows.get(department_id) or {}
        pdf = pdf_path(root, month, department_id)
        deliveries.append({
            "department_id": department_id,
            "pdf": str(pdf) if pdf.exists() else None,
            "state": row.get("state", "not_attempted"),
            "attempts": row.get("attempts", 0),
            "sent_at": _iso(row.get("sent_at"), policy.calendar.timezone),
            "error": row.get("last_error"),
        })
    counts: dict[str, int] = {}
    for item in deliveries:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    summary = {"month": month, "counts": counts, "deliveries": deliveries}
    write_text(reports_dir(root, month) / "delivery.json",
               json.dumps(summary, ensure_ascii=False, indent=1))
    undelivered = [d for d in deliveries if d["state"] != SENT]
    for item in undelivered:
        log.error("report %s for %s not delivered: %s (%s)", month, item["department_id"],
                  item["state"], item["error"] or "no attempt recorded")
    if undelivered and sending(context):
        raise AirflowFailException(
            f"{len(undelivered)} of {len(deliveries)} monthly reports for {month} were not "
            "delivered: " + ", ".join(f"{d['department_id']} ({d['state']})"
                                      for d in undelivered))
    return {"month": month, "counts": counts,
            "summary": str(reports_dir(root, month) / "delivery.json")}


def _iso(value: Any, tz: str) -> str | None:
    """A naive business-local ledger timestamp as ISO 8601 with the zone's offset."""
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=ZoneInfo(tz)).isoformat(timespec="seconds")


__all__ = [
    "compute_kpis", "data_dir", "pdf_path", "quarantined_by_department", "render_department",
    "reports_dir", "send_department", "summarize",
]
