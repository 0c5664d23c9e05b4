"""The leadership's company report, in the monthly run of M (after its kpis task): per period
— M itself, and after a quarter's last month (03, 06, 09, 12) also that quarter — data ->
render -> send. Nothing here imports Airflow (revisit.bridge.tasks calls these).

Where it writes (a subfolder `company/`, because a file name beside the departments' could
collide with a department id: reports/M/<department_id>.pdf, and 'company' is a valid id,
whereas no department file is a folder):

- month M: report_data/M/company/company.json (from the departments' report data the kpis
  task wrote: department ids, names and KPIs only) and reports/M/company/company.pdf;
- quarter Q ('2026-Q3'), computed from M's snapshot (the CRM at the end of M = the end of the
  quarter; every rule looks only at stamps before the end of the period it measures) with the
  quarter as the period (revisit.rules.kpis.compute_monthly over a quarter label: the rates
  from the quarter's own numerators and denominators, the median over the quarter's tickets,
  not means of months): reports/Q/kpis.csv and reports/Q/agents.csv (the `month` column holds
  the period label, '2026-Q3'), report_data/Q/company/company.json and
  reports/Q/company/company.pdf.

Each period's PDF is e-mailed once to every `notify.leadership` address through the send-once
ledger (revisit.delivery.mail, kind COMPANY_REPORT, period = M or Q): a rerun of M never sends
either twice. Everything returned is small (paths, periods, counts).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from revisit.config.policy import Policy
from revisit.core.errors import RevisitError
from revisit.core.periods import ends_quarter, quarter_of
from revisit.stages.partitions import MonthPartitions

log = logging.getLogger(__name__)

COMPANY_FOLDER = "company"  # under report_data/<period>/ and reports/<period>/


class NoDepartments(RevisitError):
    """No department has report data for the period: there is nothing to compare (the same
    data gives the same answer on a retry)."""

    retryable = False


# ================================================================= periods and paths
def company_periods(month: str) -> list[str]:
    """What the monthly run of M reports to leadership: M, and its quarter when M ends one."""
    return [month, quarter_of(month)] if ends_quarter(month) else [month]


def period_parts(parts: MonthPartitions, period: str) -> MonthPartitions:
    """The partitions of `period` (M or its quarter) beside M's, under the same root. Its
    `snapshot` is not read: a quarter's KPIs come from M's snapshot."""
    if period not in company_periods(parts.month):
        raise ValueError(f"{period!r} is not reported by the monthly run of {parts.month}")
    return dataclasses.replace(parts, month=period)


def company_json(parts: MonthPartitions) -> Path:
    return parts.data / COMPANY_FOLDER / "company.json"


def company_pdf(parts: MonthPartitions) -> Path:
    return parts.reports / COMPANY_FOLDER / "company.pdf"


# ================================================================= data
def write_company_data(parts: MonthPartitions, policy: Policy, period: str,
                       results_url: str) -> dict[str, Any]:
    """report_data/<period>/company/company.json; for a quarter also its kpis.csv and
    agents.csv (computed over the quarter from M's snapshot; `results_url`: the results
    database, whose call-list history of the quarter credits the due visits)."""
    from revisit.delivery.company import company_data
    from revisit.io.files import write_text

    target = period_parts(parts, period)
    departments = (_month_departments(parts) if period == parts.month
                   else _quarter_departments(parts, policy, period, results_url))
    if not departments:
        raise NoDepartments(f"no department report data for {period}: no company report")
    data = company_data(departments)
    path = write_text(company_json(target), json.dumps(data, ensure_ascii=False, indent=1))
    log.info("company report data of %s: %d departments", period, len(departments))
    return {"period": period, "data": str(path), "departments": len(departments)}


def _month_departments(parts: MonthPartitions) -> list[dict[str, Any]]:
    """The departments' report data of M, as the kpis task wrote it (report_data/M/*.json)."""
    if not parts.data.is_dir():
        raise FileNotFoundError(f"no report data for {parts.month}: {parts.data} "
                                "(run the kpis task first)")
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.data.glob("*.json"))]


def _quarter_departments(parts: MonthPartitions, policy: Policy, quarter: str,
                         results_url: str) -> list[dict[str, Any]]:
    """The quarter's KPIs, merged from the shares M's kpis_shard tasks computed over the
    quarter (the rows that passed M's quality gate; its report is quality/M/ already):
    reports/Q/kpis.csv and agents.csv (the same writers as M's, the period label '2026-Q3' in
    their `month` column), and each department's report data for the quarter (in memory
    only: it holds customer rows)."""
    from revisit.delivery.report import report_data
    from revisit.io.files import safe_name
    from revisit.io.runinfo import run_info
    from revisit.stages.daily import shard_plan
    from revisit.stages.monthly import merged_kpis, write_period_files

    kpis = merged_kpis(parts, policy, quarter, shard_plan(parts).shard_ids, results_url)
    info = run_info(policy, parts.snapshot, quarter)
    write_period_files(period_parts(parts, quarter).reports, kpis, info)
    departments = [d for d in kpis.departments["department_id"].astype(str) if safe_name(d)]
    return [report_data(kpis, d, extracted_at=info["snapshot"]["extracted_at"])
            for d in departments]


# ================================================================= render and send
def _load(parts: MonthPartitions) -> dict[str, Any]:
    path = company_json(parts)
    if not path.exists():
        raise FileNotFoundError(f"no company report data for {parts.month}: {path} "
                                "(run the company data task first)")
    return json.loads(path.read_text(encoding="utf-8"))


def render_company(parts: MonthPartitions, policy: Policy, period: str) -> dict[str, Any]:
    """reports/<period>/company/company.pdf from its data (atomic write, bounded render)."""
    from revisit.delivery.company import render_company_report

    target = period_parts(parts, period)
    pdf = render_company_report(_load(target), policy, company_pdf(target))
    log.info("rendered %s", pdf)
    return {"period": period, "pdf": str(pdf)}


def send_company(parts: MonthPartitions, policy: Policy, period: str, results_url: str,
                 transport) -> dict[str, Any]:
    """The period's company PDF to every leadership address, at most once each. Raises
    revisit.delivery.mail.DeliveryError when an address was not delivered this attempt."""
    from revisit.delivery.company import deliver_company
    from revisit.delivery.mail import COMPANY_REPORT
    from revisit.stages.monthly import _ledger

    recipients = list(policy.notify.leadership)
    if not recipients:
        log.info("notify.leadership is empty: the company report of %s is not sent", period)
        return {"period": period, "sent": 0, "recipients": 0}
    target = period_parts(parts, period)
    pdf = company_pdf(target)
    if not pdf.exists():
        raise FileNotFoundError(f"no company report {pdf} (run the render task first)")
    ledger = _ledger(policy, results_url, COMPANY_REPORT)
    try:
        results = deliver_company(ledger, _load(target), pdf, policy, transport, recipients)
    finally:
        ledger.engine.dispose()
    return {"period": period, "sent": sum(r["sent"] for r in results),
            "recipients": len(recipients)}


# ================================================================= summary
def leadership_deliveries(parts: MonthPartitions, policy: Policy, results_url: str
                          ) -> list[dict[str, Any]]:
    """One entry per (period, leadership address) of the run of M: the PDF and what the
    ledger says (reports/M/delivery.json `leadership`)."""
    from revisit.delivery.company import recipient_key
    from revisit.delivery.mail import COMPANY_REPORT
    from revisit.stages.monthly import _ledger, delivery_state

    ledger = _ledger(policy, results_url, COMPANY_REPORT)
    try:
        rows = {period: {r["department_id"]: r for r in ledger.rows(period)}
                for period in company_periods(parts.month)}
    finally:
        ledger.engine.dispose()
    out = []
    for period, by_key in rows.items():
        pdf = company_pdf(period_parts(parts, period))
        out += [{"period": period, "recipient": address,
                 **delivery_state(by_key.get(recipient_key(address)), pdf, parts.root,
                                 policy)}
                for address in policy.notify.leadership]
    return out


__all__ = [
    "COMPANY_FOLDER", "NoDepartments", "company_json", "company_pdf", "company_periods",
    "leadership_deliveries", "period_parts", "render_company", "send_company",
    "write_company_data",
]
