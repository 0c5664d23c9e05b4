"""The company report for leadership: every department side by side for a month or a quarter.

Policy 004 (客服回访行为规范制度) asks that the review reach the leadership regularly
("回访总结报告应定期提交给上级领导") and that appraisal run monthly or quarterly ("定期考核每月
或每季度进行一次"): the heads get their own department's PDF (revisit.delivery.report), the
addresses of `notify.leadership` this one — each department's KPIs of the period beside the
company's (`ALL`), a rank per KPI and the trends over `report.trend_months` periods.

Three steps, like the department report:

1. `company_data(departments)`: from the departments' own report data (report_data/M/*.json,
   revisit.delivery.report.report_data) the KPIs, ranks and trends as plain JSON-able data —
   department ids, names and numbers only: no customer, no phone, no head's address;
2. `render_company_html(data, policy)`: company.html.j2 in the project's one Jinja2
   environment (revisit.delivery.templating: autoescape on), in `policy.report.locale`;
3. `render_company_report(data, policy, target)`: the report's own PDF path
   (revisit.delivery.pdf `render_pdf`: the template-only URL fetcher, a child process killed
   after report.render_timeout_seconds).

Ranks: 1 is the best department for that KPI; ties share the better rank (1, 1, 3); a
department without a value is not ranked. Which way is better (RANK_DIRECTIONS): the rates and
satisfaction scores higher, SLA breaches, unknown SLA verdicts and the median handling time
lower. Volumes (visits due and on time, tickets raised and resolved) measure a department's
size, not its service, and are not ranked.

The e-mail (`deliver_company`) goes to each leadership address once per period through the
send-once ledger of revisit.delivery.mail (kind COMPANY_REPORT, key `recipient_key`).
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from revisit.config.translations import load_translations
from revisit.core.periods import QUARTER, month_cutoff_date, period_unit
from revisit.core.templating import DEFAULT_MAX_TEXT_CHARS, shorten
from revisit.delivery.mail import (
    COMPANY_REPORT,
    DeliveryError,
    DeliveryLedger,
    Transport,
    header_text,
    new_message,
    send_once,
)
from revisit.delivery.pdf import render_pdf
from revisit.delivery.report import (
    APPENDIX_KPIS,
    TARGET_KPIS,
    Formats,
    extracted_minute,
)
from revisit.delivery.templating import render

HIGHER, LOWER = "higher", "lower"  # which way a KPI is better
RANK_DIRECTIONS = {
    "visit_timeliness_rate": HIGHER, "problem_resolution_rate": HIGHER,
    "avg_satisfaction": HIGHER, "complaint_satisfaction": HIGHER,
    "sla_compliance_rate": HIGHER,
    "sla_breaches": LOWER, "median_handling_hours": LOWER, "sla_unknown": LOWER,
}
COMPANY = "ALL"  # = revisit.rules.kpis.COMPANY (the delivery layer reads the data, not the rules)
# Trend tables: the KPIs with a target, then the breaches (the department report's charts).
TREND_KPIS = (*TARGET_KPIS, "sla_breaches")


# ================================================================= data (JSON-able)
def company_data(departments: list[dict[str, Any]]) -> dict[str, Any]:
    """The company report's data from the departments' report data (one dict each, as
    revisit.delivery.report.report_data makes it, all of the same period): per KPI the
    period's value of every department and of the company, the ranks and the direction, and
    every trend. Raises ValueError without a department (nothing to compare)."""
    if not departments:
        raise ValueError("no department report data: nothing to compare")
    first = departments[0]
    departments = sorted(departments, key=lambda d: str(d["department"]["department_id"]))
    ids = [str(d["department"]["department_id"]) for d in departments]
    kpis = {}
    for name in APPENDIX_KPIS:
        values = {i: d["series"][name][-1] for i, d in zip(ids, departments, strict=True)}
        direction = RANK_DIRECTIONS.get(name)
        kpis[name] = {"direction": direction,
                      "values": {**values, COMPANY: first["company_series"][name][-1]},
                      "ranks": ranks(values, direction)}
    return {
        "kind": "company",
        "period": first["month"],
        "extracted_at": first.get("extracted_at"),  # the snapshot's, as each department's
        "periods": list(first["months"]),
        "departments": [{"department_id": i, "name": d["department"].get("name")}
                        for i, d in zip(ids, departments, strict=True)],
        "kpis": kpis,
        "trends": {name: {**{i: list(d["series"][name]) for i, d in
                             zip(ids, departments, strict=True)},
                          COMPANY: list(first["company_series"][name])}
                   for name in TREND_KPIS},
    }


def ranks(values: dict[str, float | None], direction: str | None) -> dict[str, int | None]:
    """Rank of each department (1 = best in `direction`; ties share the better rank; None:
    no value, or a KPI that is not ranked)."""
    known = {k: v for k, v in values.items() if v is not None}
    if direction is None:
        return dict.fromkeys(values)
    better = (lambda a, b: a > b) if direction == HIGHER else (lambda a, b: a < b)
    return {k: (1 + sum(better(o, known[k]) for o in known.values()) if k in known else None)
            for k in values}


# ================================================================= the HTML
def period_name(label: str, fmt: Formats) -> str:
    """'2026-09' -> 2026年9月 / September 2026; '2026-Q3' -> 2026年第3季度 / Q3 2026."""
    if period_unit(label) == QUARTER:
        return fmt.tr["company_report"]["quarter"].format(year=label[:4], quarter=label[-1])
    return fmt.month(label)


def period_short(label: str, fmt: Formats) -> str:
    """A trend column's heading: the month's short name (Sep / 9月), or '2026 Q3'."""
    if period_unit(label) == QUARTER:
        return fmt.tr["company_report"]["quarter_short"].format(year=label[:4],
                                                                quarter=label[-1])
    return fmt.month_short(label)


def build_company_context(data: dict[str, Any], policy, locale: str | None = None
                          ) -> dict[str, Any]:
    """What company.html.j2 and the e-mail bodies show: the side-by-side rows, the trend
    tables, the period and cut-off, in the locale."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    fmt = Formats(tr, locale)
    tz = policy.calendar.timezone
    columns = [*[d["department_id"] for d in data["departments"]], COMPANY]
    return {
        "tr": tr, "fmt": fmt, "locale": locale, "lang": locale.replace("_", "-"),
        "max_text_chars": policy.report.max_text_chars,
        "data": data, "departments": data["departments"],
        "period": period_name(data["period"], fmt),
        "quarterly": period_unit(data["period"]) == QUARTER,
        "cutoff": tr["cut_off"].format(
            cutoff=f"{month_cutoff_date(data['period']).isoformat()} 00:00 ({tz})"),
        "extracted": extracted_minute(data.get("extracted_at"), tz),
        "rows": side_by_side(data, fmt, columns),
        "trends": trend_tables(data, fmt, columns),
        "leaders": leaders(data, fmt, policy.report.max_text_chars),
        "policy_version": policy.version,  # in the footer, as on the department reports
    }


def _direction(name: str, tr: dict[str, Any]) -> str:
    return tr["company_report"]["directions"][RANK_DIRECTIONS.get(name) or "none"]


def side_by_side(data: dict[str, Any], fmt: Formats, columns: list[str]
                 ) -> list[dict[str, Any]]:
    """One row per KPI: label, direction, and a cell per department (value, rank, best /
    worst) and the company's."""
    count = len(data["departments"])
    rows = []
    for name in APPENDIX_KPIS:
        kpi = data["kpis"][name]
        ranked = [r for r in kpi["ranks"].values() if r is not None]
        cells = []
        for key in columns:
            rank = kpi["ranks"].get(key)
            cells.append({"value": fmt.kpi(name, kpi["values"].get(key)), "rank": rank,
                          "company": key == COMPANY,
                          "best": rank == 1 and count > 1,
                          "worst": rank is not None and count > 1 and len(ranked) > 1
                          and rank == max(ranked) and rank > 1})
        rows.append({"name": name, "label": fmt.tr["kpi"][name],
                     "direction": _direction(name, fmt.tr), "cells": cells})
    return rows


def trend_tables(data: dict[str, Any], fmt: Formats, columns: list[str]
                 ) -> list[dict[str, Any]]:
    """Per trend KPI: the periods as columns, a row per department and the company's."""
    names = {d["department_id"]: d["name"] or d["department_id"] for d in data["departments"]}
    names[COMPANY] = fmt.tr["company_report"]["company"]
    heads = [period_short(p, fmt) for p in data["periods"]]
    return [{"name": name, "label": fmt.tr["kpi"][name],
             "direction": _direction(name, fmt.tr),
             "definition": fmt.tr["definitions"][name], "periods": heads,
             "rows": [{"name": names[key], "id": key, "company": key == COMPANY,
                       "cells": [fmt.kpi(name, v) for v in data["trends"][name][key]]}
                      for key in columns]}
            for name in TREND_KPIS]


def leaders(data: dict[str, Any], fmt: Formats, limit: int = DEFAULT_MAX_TEXT_CHARS
            ) -> list[str]:
    """One sentence per KPI with a target: the company's value and the best department
    (names shortened to `limit`, the policy's report.max_text_chars)."""
    names = {d["department_id"]: shorten(d["name"] or d["department_id"], limit)
             for d in data["departments"]}
    out = []
    for name in TARGET_KPIS:
        kpi = data["kpis"][name]
        best = sorted(k for k, r in kpi["ranks"].items() if r == 1)
        phrase = fmt.tr["company_report"]["leader" if best else "leader_none"]
        out.append(phrase.format(
            kpi=fmt.tr["kpi"][name], company=fmt.kpi(name, kpi["values"][COMPANY]),
            best=fmt.tr["company_report"]["separator"].join(str(names[b]) for b in best),
            value=fmt.kpi(name, kpi["values"][best[0]]) if best else "–"))
    return out


def render_company_html(data: dict[str, Any], policy, locale: str | None = None) -> str:
    return render("company.html.j2", build_company_context(data, policy, locale))


def render_company_report(data: dict[str, Any], policy, target: Path,
                          locale: str | None = None) -> Path:
    """The company PDF to `target` (atomically), through the department report's bounded
    render (revisit.delivery.pdf.render_pdf: template-only fetcher, killable child)."""
    from revisit.io.files import write_bytes

    html = render_company_html(data, policy, locale)
    return write_bytes(target, render_pdf(html, timeout=policy.report.render_timeout_seconds))


# ================================================================= the e-mail
def recipient_key(address: str) -> str:
    """The ledger key of one leadership address (the ledger's key column holds 16
    characters, an address up to 320): 'L' + 15 hex digits of its SHA-256."""
    return "L" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:15]


def attachment_name(period: str) -> str:
    return f"revisit-company-report-{period}.pdf"


def company_email(data: dict[str, Any], policy, locale: str | None = None
                  ) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the leadership's message, from the report's context."""
    context = build_company_context(data, policy, locale)
    context["subject"] = header_text(context["tr"]["company_report"]["subject"].format(
        period=context["period"]))
    return (context["subject"], render("company_email.txt.j2", context),
            render("company_email.html.j2", context))


def company_message(data: dict[str, Any], policy, pdf: bytes, sender: str, address: str,
                    locale: str | None = None) -> EmailMessage:
    subject, text, html = company_email(data, policy, locale)
    msg = new_message(subject, sender, address, data["period"], recipient_key(address),
                      kind=COMPANY_REPORT)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(pdf, maintype="application", subtype="pdf",
                       filename=attachment_name(data["period"]))
    return msg


def deliver_company(ledger: DeliveryLedger, data: dict[str, Any], pdf_path: Path, policy,
                    transport: Transport, recipients: list[str]) -> list[dict[str, Any]]:
    """The company PDF to every address, each at most once per period (revisit.delivery.mail
    .send_once). Every address is tried; then the first failure is raised (DeliveryError,
    its `retryable` from that attempt), so a retry resends only what did not go out."""
    results, errors = [], []
    for address in recipients:
        def compose(sender: str, address: str = address) -> EmailMessage:
            return company_message(data, policy, Path(pdf_path).read_bytes(), sender, address)

        try:
            result = send_once(ledger, data["period"], recipient_key(address), address,
                               compose, transport)
        except DeliveryError as error:
            errors.append(error)
            continue
        results.append({**result, "recipient": address})
    if errors:
        raise errors[0]
    return results


__all__ = [
    "COMPANY", "HIGHER", "LOWER", "RANK_DIRECTIONS", "TREND_KPIS", "attachment_name",
    "build_company_context", "company_data", "company_email", "company_message",
    "deliver_company", "leaders", "period_name", "ranks", "recipient_key",
    "render_company_html", "render_company_report", "side_by_side", "trend_tables",
]
