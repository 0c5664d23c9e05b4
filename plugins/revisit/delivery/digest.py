"""The daily SLA breach digest e-mail: each department head gets the department's new breaches
and at-risk tickets once per call date.

The rows come from `sla/D/digest_<department_id>.csv` (revisit.rules.sla.breach_digest: phones
already masked); the message is rendered from include/templates/report/digest_email.*.j2 in
the policy's locale and sent through revisit.delivery.mail.send_once, so the delivery ledger
(`mail_delivery`, kind sla_digest, period D) guarantees at most one message per head and day.
A department with nothing to report gets no e-mail.

`send_digests` reports each failed department with its DeliveryError, so the caller decides
from `error.retryable` (not from the wording) whether a retry of the task may deliver it.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd

from revisit.config.policy import Policy
from revisit.config.translations import load_translations
from revisit.delivery.mail import (
    SLA_DIGEST,
    DeliveryError,
    DeliveryLedger,
    DeliveryRefused,
    Transport,
    header_text,
    new_message,
    send_once,
)
from revisit.delivery.templating import render
from revisit.rules.sla import BREACHED, DIGEST_COLUMNS

DIGEST_PREFIX = "digest_"
SHOWN_COLUMNS = tuple(c for c in DIGEST_COLUMNS)


def read_digests(folder: Path) -> dict[str, pd.DataFrame]:
    """sla/D/digest_<department_id>.csv -> {department_id: rows}, as written by the sla task."""
    return {
        path.stem.removeprefix(DIGEST_PREFIX): pd.read_csv(path, dtype=str,
                                                           keep_default_na=False)
        for path in sorted(folder.glob(f"{DIGEST_PREFIX}*.csv"))
    }


def _display_rows(rows: pd.DataFrame, tr: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as the template shows them: translated codes, deadline to the minute."""
    shown = rows.loc[:, list(SHOWN_COLUMNS)].copy()
    breached = (shown["status"] == BREACHED).tolist()
    shown["deadline"] = shown["deadline"].str.slice(0, 16).str.replace("T", " ", regex=False)
    shown["priority"] = shown["priority"].map(lambda v: tr["priorities"].get(v, v))
    shown["metric"] = shown["metric"].map(lambda v: tr["metrics"].get(v, v))
    shown["status"] = shown["status"].map(lambda v: tr["digest"]["statuses"].get(v, v))
    shown["overdue_minutes"] = shown["overdue_minutes"].replace("0", "")
    records = shown.to_dict("records")
    for record, is_breached in zip(records, breached, strict=True):
        record["breached"] = is_breached
    return records


def digest_message(rows: pd.DataFrame, department: dict[str, Any], day: dt.date,
                   policy: Policy, sender: str, locale: str | None = None) -> EmailMessage:
    """One head's digest: text and HTML (autoescaped), no attachment, no full phone number."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    name = department.get("name") or department["department_id"]
    breached = int((rows["status"] == BREACHED).sum())
    subject = header_text(tr["digest"]["subject"].format(
        department=name, date=day.isoformat(), breached=breached, at_risk=len(rows) - breached))
    context = {
        "tr": tr, "lang": locale.replace("_", "-"), "subject": subject,
        "department": department, "date": day.isoformat(),
        "cutoff": f"{day.isoformat()} 00:00", "columns": SHOWN_COLUMNS,
        "rows": _display_rows(rows, tr),
    }
    msg = new_message(subject, sender, department["head_email"], day.isoformat(),
                      str(department["department_id"]), kind=SLA_DIGEST)
    msg.set_content(render("digest_email.txt.j2", context))
    msg.add_alternative(render("digest_email.html.j2", context), subtype="html")
    return msg


def send_digests(folder: Path, departments: pd.DataFrame, day: dt.date, policy: Policy,
                 ledger: DeliveryLedger, transport: Transport) -> dict[str, Any]:
    """Send every department's digest of D once.

    Returns {"states": {department_id: ledger state}, "failed": {department_id: DeliveryError}}:
    the caller decides whether a failure fails the task, and whether a retry may help, from
    each error's `retryable` (a department missing from the CRM is a DeliveryRefused that a
    retry cannot fix)."""
    heads = departments.drop_duplicates("department_id").set_index("department_id")
    states: dict[str, str] = {}
    failed: dict[str, DeliveryError] = {}
    for department_id, rows in read_digests(folder).items():
        if department_id not in heads.index:
            failed[department_id] = DeliveryRefused("department not in the CRM",
                                                    retryable=False)
            continue
        department = {"department_id": department_id,
                      **heads.loc[department_id].to_dict()}

        def compose(sender: str, rows=rows, department=department) -> EmailMessage:
            return digest_message(rows, department, day, policy, sender)

        try:
            result = send_once(ledger, day.isoformat(), department_id,
                               department.get("head_email"), compose, transport)
            states[department_id] = result["state"]
        except DeliveryError as error:
            states[department_id] = "failed"
            failed[department_id] = error
    return {"states": states, "failed": failed}


__all__ = ["DIGEST_PREFIX", "digest_message", "read_digests", "send_digests"]
