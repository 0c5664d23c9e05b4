"""The daily SLA breach digest e-mail: each department head gets the department's new breaches
and at-risk tickets once per call date.

The rows come from `sla/D/digest_<department_id>.csv` (revisit.rules.sla.breach_digest: phones
already masked); the message is rendered from include/templates/report/digest_email.*.j2 in
the policy's locale and sent through revisit.delivery.mail.send_once, so the delivery ledger
(`mail_delivery`, kind sla_digest, period D) guarantees at most one message per head and day.
A department with nothing to report gets no e-mail.

The message carries what it reports (DESIGN.md "Delivery"): the rows in the body and the same
rows as an attached CSV, never a path on the server (a head cannot open `sla/D/...`). The CSV
(`digest_csv`) is for a person with Excel, not for a program (the machine-readable file is
sla/D/sla_status.csv, for the data team): the body's table exactly — headers and codes in the
locale, deadlines to the minute —, UTF-8 with a BOM (without one, Excel on a Chinese Windows
reads UTF-8 as GBK and shows mojibake), CRLF line ends (RFC 4180), cells that a spreadsheet
would run as a formula neutralised (revisit.io.spreadsheet.neutralise).

`send_digests` reports each failed department with its DeliveryError, so the caller decides
from `error.retryable` (not from the wording) whether a retry of the task may deliver it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd

from revisit.config.policy import Policy
from revisit.config.translations import load_translations
from revisit.core.phones import MASK, mask_phone
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
from revisit.io.spreadsheet import neutralise
from revisit.rules.sla import BREACHED, DIGEST_COLUMNS

DIGEST_PREFIX = "digest_"
SHOWN_COLUMNS = tuple(c for c in DIGEST_COLUMNS)
# What a masked phone looks like (revisit.core.phones.mask_phone); anything else in the phone
# column is masked again before it is shown (a digest file from elsewhere must not leak one).
_MASKED = r"(?:[0-9]{3})?" + re.escape(MASK) + r"(?:[0-9]{4})?"


def read_digests(folder: Path) -> dict[str, pd.DataFrame]:
    """sla/D/digest_<department_id>.csv -> {department_id: rows}, as written by the sla task."""
    return {
        path.stem.removeprefix(DIGEST_PREFIX): pd.read_csv(path, dtype=str,
                                                           keep_default_na=False)
        for path in sorted(folder.glob(f"{DIGEST_PREFIX}*.csv"))
    }


def _display_rows(rows: pd.DataFrame, tr: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as the body and the attachment show them: translated codes, deadline to the
    minute, phones masked, formula-like cells neutralised (the CSV is opened in Excel; the
    sla task's files already are, so this changes nothing there)."""
    shown = rows.loc[:, list(SHOWN_COLUMNS)].astype("string").fillna("")
    phones = shown["phone_masked"]
    masked = phones.str.fullmatch(_MASKED).fillna(False).astype(bool)
    shown["phone_masked"] = phones.where(masked, mask_phone(phones))
    shown = neutralise(shown)
    breached = (shown["status"] == BREACHED).fillna(False).astype(bool).tolist()
    shown["deadline"] = shown["deadline"].str.slice(0, 16).str.replace("T", " ", regex=False)
    shown["priority"] = shown["priority"].map(lambda v: tr["priorities"].get(v, v))
    shown["metric"] = shown["metric"].map(lambda v: tr["metrics"].get(v, v))
    shown["status"] = shown["status"].map(lambda v: tr["digest"]["statuses"].get(v, v))
    shown["overdue_minutes"] = shown["overdue_minutes"].replace("0", "")
    records = shown.to_dict("records")
    for record, is_breached in zip(records, breached, strict=True):
        record["breached"] = is_breached
    return records


def digest_csv(records: list[dict[str, Any]], tr: dict[str, Any]) -> bytes:
    """The attachment: exactly the body's rows (`_display_rows`), headers in the locale;
    UTF-8 with BOM, CRLF (see the module's docstring)."""
    frame = pd.DataFrame(records, columns=list(SHOWN_COLUMNS)).rename(
        columns=tr["digest"]["columns"])
    out = io.StringIO()
    frame.to_csv(out, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    return out.getvalue().encode("utf-8-sig")


def digest_filename(day: dt.date, department_id: str) -> str:
    """ASCII only (every mail client shows it the same): sla-digest-2026-11-20-D01.csv."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(department_id))
    return f"sla-digest-{day.isoformat()}-{safe}.csv"


def digest_message(rows: pd.DataFrame, department: dict[str, Any], day: dt.date,
                   policy: Policy, sender: str, locale: str | None = None) -> EmailMessage:
    """One head's digest: text and HTML (autoescaped) with the rows, the same rows attached as
    CSV (when there are any); no full phone number, no server path."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    name = department.get("name") or department["department_id"]
    breached = int((rows["status"] == BREACHED).sum())
    subject = header_text(tr["digest"]["subject"].format(
        department=name, date=day.isoformat(), breached=breached, at_risk=len(rows) - breached))
    records = _display_rows(rows, tr)
    filename = digest_filename(day, department["department_id"])
    context = {
        "tr": tr, "lang": locale.replace("_", "-"), "subject": subject,
        "department": department, "date": day.isoformat(),
        "cutoff": f"{day.isoformat()} 00:00", "columns": SHOWN_COLUMNS,
        "rows": records, "attachment": filename if records else None,
    }
    msg = new_message(subject, sender, department["head_email"], day.isoformat(),
                      str(department["department_id"]), kind=SLA_DIGEST)
    msg.set_content(render("digest_email.txt.j2", context))
    msg.add_alternative(render("digest_email.html.j2", context), subtype="html")
    if records:
        msg.add_attachment(digest_csv(records, tr), maintype="text", subtype="csv",
                           filename=filename)
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


__all__ = ["DIGEST_PREFIX", "digest_csv", "digest_filename", "digest_message", "read_digests",
           "send_digests"]
