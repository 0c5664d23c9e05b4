"""The daily SLA breach digest e-mail: each department head gets the department's new breaches,
the tickets due today and the other at-risk tickets once per call date; the department's
active supervisors get a copy limited to the escalated rows (escalation).

The rows come from `sla/D/digest_<department_id>.csv` (revisit.rules.sla.breach_digest: phones
already masked); the message is rendered from include/templates/report/digest_email.*.j2 in
the policy's locale and sent through revisit.delivery.mail.send_once, so the delivery ledger
(`mail_delivery`, kind sla_digest, period D) guarantees at most one message per head and day.
A department with nothing to report gets no e-mail; one with only rows due today (no new breach)
gets it.

Sections (the `section` column of the rows, revisit.rules.sla.breach_digest): `breached` (new
breaches), `due_today` (pending or at_risk, deadline before D + 1 day 00:00: the early warning,
ordered by deadline), `at_risk` (the others at risk). Each is a headed table of the body; the
attached CSV has all rows with a first column naming the section. `unknown` rows are never in a
digest.

Escalation (`send_escalations`, policy `sla.escalate_priorities`, default [urgent]; policies 001
"紧急问题需升级至部门负责人协调处理", 003 "紧急问题 … 同步上报主管"): the department's rows of those
priorities whose status is at_risk or breached go, as the same kind of message, to each active
supervisor of the department (`agents.role = supervisor`) with a valid address, once per
(supervisor, D) — ledger kind escalation, the supervisor's agent id in the key column. The head
still gets them in the digest. An empty `escalate_priorities` sends none.

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
from revisit.core.addresses import valid_address
from revisit.core.flags import is_true
from revisit.core.phones import MASK, mask_phone
from revisit.core.templating import shorten
from revisit.delivery.mail import (
    ESCALATION,
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
from revisit.rules.sla import AT_RISK, BREACHED, DIGEST_COLUMNS

DIGEST_PREFIX = "digest_"
SECTIONS = ("breached", "due_today", "at_risk")  # breach_digest's `section`, in the body's order
SHOWN_COLUMNS = tuple(c for c in DIGEST_COLUMNS)  # the attached CSV: `section` first
TABLE_COLUMNS = tuple(c for c in SHOWN_COLUMNS if c != "section")  # a section's table in the body
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


def with_sections(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with a `section` column (a digest file written before there were sections has
    none: breached rows are then new breaches, the others at risk), in SECTIONS order, each
    section keeping its rows' order; rows of an unknown status are dropped."""
    listed = rows["status"].isin([BREACHED, AT_RISK, "pending"])
    if "section" in rows:
        listed &= rows["section"].isin(SECTIONS)
    rows = rows[listed.to_numpy(bool)]
    if "section" not in rows:
        rows = rows.assign(section=rows["status"].where(rows["status"] == BREACHED, AT_RISK))
    order = rows["section"].map({s: i for i, s in enumerate(SECTIONS)})
    return rows.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def escalated_rows(rows: pd.DataFrame, priorities: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The rows a supervisor is told about: priority in `priorities`, status at_risk or
    breached (a pending row due today is not escalated)."""
    rows = with_sections(rows)
    chosen = rows["priority"].isin(list(priorities)) & rows["status"].isin([AT_RISK, BREACHED])
    return rows[chosen.to_numpy(bool)].reset_index(drop=True)


def display_rows(rows: pd.DataFrame, tr: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as the body and the attachment show them: translated codes, deadline to the
    minute, phones masked, formula-like cells neutralised (the CSV is opened in Excel; the
    sla task's files already are, so this changes nothing there). Each record keeps its
    section's code under `section_code`."""
    rows = with_sections(rows)
    shown = rows.loc[:, list(SHOWN_COLUMNS)].astype("string").fillna("")
    codes = shown["section"].tolist()
    phones = shown["phone_masked"]
    masked = phones.str.fullmatch(_MASKED).fillna(False).astype(bool)
    shown["phone_masked"] = phones.where(masked, mask_phone(phones))
    shown = neutralise(shown)
    breached = (shown["status"] == BREACHED).fillna(False).astype(bool).tolist()
    shown["deadline"] = shown["deadline"].str.slice(0, 16).str.replace("T", " ", regex=False)
    shown["priority"] = shown["priority"].map(lambda v: tr["priorities"].get(v, v))
    shown["metric"] = shown["metric"].map(lambda v: tr["metrics"].get(v, v))
    shown["status"] = shown["status"].map(lambda v: tr["digest"]["statuses"].get(v, v))
    shown["section"] = shown["section"].map(lambda v: tr["digest"]["sections"].get(v, v))
    shown["overdue_minutes"] = shown["overdue_minutes"].replace("0", "")
    records = shown.to_dict("records")
    for record, is_breached, code in zip(records, breached, codes, strict=True):
        record["breached"] = is_breached
        record["section_code"] = code
    return records


def _sections(records: list[dict[str, Any]], tr: dict[str, Any]) -> list[dict[str, Any]]:
    """The body's headed tables: the non-empty sections in SECTIONS order."""
    return [{"code": code, "title": tr["digest"]["sections"][code],
             "rows": [r for r in records if r["section_code"] == code]}
            for code in SECTIONS if any(r["section_code"] == code for r in records)]


def digest_csv(records: list[dict[str, Any]], tr: dict[str, Any]) -> bytes:
    """The attachment: exactly the body's rows (`display_rows`), headers in the locale;
    UTF-8 with BOM, CRLF (see the module's docstring)."""
    frame = pd.DataFrame(records, columns=list(SHOWN_COLUMNS)).rename(
        columns=tr["digest"]["columns"])
    out = io.StringIO()
    frame.to_csv(out, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    return out.getvalue().encode("utf-8-sig")


def digest_filename(day: dt.date, department_id: str, kind: str = SLA_DIGEST) -> str:
    """ASCII only (every mail client shows it the same): sla-digest-2026-11-20-D01.csv
    (sla-escalation-… for a supervisor's copy)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(department_id))
    name = "sla-escalation" if kind == ESCALATION else "sla-digest"
    return f"{name}-{day.isoformat()}-{safe}.csv"


def digest_message(rows: pd.DataFrame, department: dict[str, Any], day: dt.date,
                   policy: Policy, sender: str, locale: str | None = None, *,
                   supervisor: dict[str, Any] | None = None) -> EmailMessage:
    """One head's digest: text and HTML (autoescaped) with the rows in their sections, the
    same rows attached as CSV (when there are any); no full phone number, no server path.

    With `supervisor` (agent_id, name, email): that supervisor's escalation copy of `rows`
    (the caller passes escalated_rows), tagged and keyed by the supervisor's id."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    limit = policy.report.max_text_chars  # CRM text never decides how long a message gets
    name = shorten(department.get("name") or department["department_id"], limit)
    records = [{k: shorten(v, limit) for k, v in r.items()} for r in display_rows(rows, tr)]
    counts = {code: sum(r["section_code"] == code for r in records) for code in SECTIONS}
    kind = ESCALATION if supervisor is not None else SLA_DIGEST
    if supervisor is None:
        subject = tr["digest"]["subject"].format(
            department=name, date=day.isoformat(), breached=counts["breached"],
            at_risk=counts["at_risk"], due_today=counts["due_today"])
        greeting = shorten(department.get("head_name") or name, limit)
        recipient, key = department["head_email"], str(department["department_id"])
        intro = tr["digest"]["intro"]
    else:
        breached = sum(r["breached"] for r in records)
        subject = tr["digest"]["escalation_subject"].format(
            department=name, date=day.isoformat(), breached=breached,
            at_risk=len(records) - breached)
        greeting = shorten(supervisor.get("name") or supervisor["agent_id"], limit)
        recipient, key = supervisor["email"], str(supervisor["agent_id"])
        intro = tr["digest"]["escalation_intro"]
    subject = header_text(subject)
    filename = digest_filename(day, department["department_id"], kind)
    priorities = ", ".join(tr["priorities"].get(p, p) for p in policy.sla.escalate_priorities)
    context = {
        "tr": tr, "lang": locale.replace("_", "-"), "subject": subject,
        "max_text_chars": limit, "department": department, "date": day.isoformat(),
        "greeting_name": greeting,
        "intro": intro.format(department=name, cutoff=f"{day.isoformat()} 00:00",
                              priorities=priorities),
        "cutoff": f"{day.isoformat()} 00:00", "columns": TABLE_COLUMNS,
        "rows": records, "sections": _sections(records, tr),
        "attachment": filename if records else None,
    }
    msg = new_message(subject, sender, recipient, day.isoformat(), key, kind=kind)
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


def send_escalations(folder: Path, departments: pd.DataFrame, agents: pd.DataFrame,
                     day: dt.date, policy: Policy, ledger: DeliveryLedger,
                     transport: Transport) -> dict[str, Any]:
    """Send each active supervisor of a department with escalated rows of D (escalated_rows
    under `policy.sla.escalate_priorities`) their copy once (`ledger` of kind escalation,
    key = the supervisor's agent id, period D).

    Returns {"states": {agent_id: ledger state}, "failed": {agent_id: DeliveryError},
    "no_address": [agent_id, ...]}: a supervisor without a valid address is only listed (no
    retry can fix the CRM); a department without an active supervisor sends nothing."""
    states: dict[str, str] = {}
    failed: dict[str, DeliveryError] = {}
    no_address: list[str] = []
    priorities = policy.sla.escalate_priorities
    if not priorities:
        return {"states": states, "failed": failed, "no_address": no_address}
    heads = departments.drop_duplicates("department_id").set_index("department_id")
    staff = agents.drop_duplicates("agent_id")
    supervisors = staff[(staff["role"].astype("string") == "supervisor").fillna(False)
                        & staff["active"].map(is_true)]
    for department_id, rows in read_digests(folder).items():
        escalated = escalated_rows(rows, priorities)
        if escalated.empty:
            continue
        department = {"department_id": department_id,
                      **(heads.loc[department_id].to_dict() if department_id in heads.index
                         else {})}
        mine = supervisors[supervisors["department_id"].astype("string") == department_id]
        for supervisor in mine.sort_values("agent_id").to_dict("records"):
            agent_id = str(supervisor["agent_id"])
            if not valid_address(supervisor.get("email")):
                no_address.append(agent_id)
                continue

            def compose(sender: str, supervisor=supervisor, department=department,
                        escalated=escalated) -> EmailMessage:
                return digest_message(escalated, department, day, policy, sender,
                                      supervisor=supervisor)

            try:
                result = send_once(ledger, day.isoformat(), agent_id, supervisor["email"],
                                   compose, transport)
                states[agent_id] = result["state"]
            except DeliveryError as error:
                states[agent_id] = "failed"
                failed[agent_id] = error
    return {"states": states, "failed": failed, "no_address": sorted(no_address)}


__all__ = ["DIGEST_PREFIX", "SECTIONS", "digest_csv", "digest_filename", "digest_message",
           "display_rows", "escalated_rows", "read_digests", "send_digests", "send_escalations",
           "with_sections"]
