"""E-mail, each message sent at most once: the monthly report and the daily SLA breach digest
to department heads, and the daily call list to each agent (revisit.delivery.agent_mail).

Why a ledger: Airflow retries tasks and users rerun dates, but a head must never get the same
message twice. Every (kind, period, department) — e.g. (report, 2026-10, D01),
(sla_digest, 2026-11-20, D01), or (call_list, 2026-11-20, A0001) for an agent, whose id goes in
the same key column `department_id` — has one row in the results database table
`mail_delivery` (include/sql/results/schema.sql) that moves

    (none) / failed --claim--> pending --> sent | failed | unknown

- `claim` is one conditional write, so only one attempt can own a delivery;
- a `pending` row found by a later attempt means that attempt died while talking to the
  server: the message may have gone out, so it becomes `unknown` and is not resent;
- `failed` (the server refused the message, or could not be reached before anything was sent)
  is safe to retry: the next Airflow try claims it again;
- `sent` is final: later attempts return without sending.

Sending goes through a Transport; the deployed one is revisit.bridge.smtp.SmtpHookTransport
(the Airflow SMTP provider's connection `smtp_default`), which sends each message once per
attempt and classifies its failures as refused (retry is safe) or uncertain (never resent).

The report e-mail's subject and bodies (`email_content`) come from the report's own context
(revisit.delivery.report.build_context) and the shared Jinja environment
(revisit.delivery.templating); the PDF itself is report.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import column, insert, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from revisit.core.addresses import valid_address
from revisit.core.errors import RevisitError
from revisit.delivery.templating import render

log = logging.getLogger(__name__)

LEDGER = table("mail_delivery", column("mail_kind"), column("period"), column("department_id"),
               column("recipient"), column("state"), column("attempts"), column("message_id"),
               column("content_sha256"), column("last_error"), column("updated_at"),
               column("sent_at"))
REPORT, SLA_DIGEST, CALL_LIST = "report", "sla_digest", "call_list"  # mail kinds
ALERT = "alert"  # the data team's notices sent at most once per period (revisit.bridge.alerts)
ESCALATION = "escalation"  # a supervisor's copy of the digest's escalated rows (agent id as key)
# The company report to each notify.leadership address, once per period (a month '2026-09' or
# a quarter '2026-Q3'); key: revisit.delivery.company.recipient_key(address)
COMPANY_REPORT = "company_report"
PENDING, SENT, FAILED, UNKNOWN = "pending", "sent", "failed", "unknown"
STATES = (PENDING, SENT, FAILED, UNKNOWN)


class DeliveryError(RevisitError):
    """A send that did not happen; `retryable` says whether another try may send it."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)


class DeliveryRefused(DeliveryError):
    """Definitely not delivered (no connection, login refused, message or recipient refused)."""


class DeliveryUncertain(DeliveryError):
    """The attempt broke off mid-conversation: the message may have been delivered."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    @property
    def sender(self) -> str: ...


# ================================================================= the ledger
def now_local(tz: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a delivery: send now, or why not."""

    send: bool
    state: str  # the state found (or PENDING when claimed)
    attempts: int


class DeliveryLedger:
    """The `mail_delivery` rows of one kind of mail. A `period` is what the kind is sent once
    per: the report month (`2026-10`) of a report, the call date (`2026-11-20`) of a digest."""

    def __init__(self, engine: Engine, tz: str, kind: str = REPORT) -> None:
        self.engine, self.tz, self.kind = engine, tz, kind

    def _where(self, period: str, department_id: str):
        return ((LEDGER.c.mail_kind == self.kind) & (LEDGER.c.period == period)
                & (LEDGER.c.department_id == department_id))

    def get(self, period: str, department_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(LEDGER).where(self._where(period, department_id))).first()
        return dict(row._mapping) if row else None

    def rows(self, period: str) -> list[dict[str, Any]]:
        """Every department's row of `period`, by department_id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(LEDGER).where((LEDGER.c.mail_kind == self.kind)
                                                     & (LEDGER.c.period == period))
                                .order_by(LEDGER.c.department_id)).all()
        return [dict(r._mapping) for r in rows]

    def claim(self, period: str, department_id: str, recipient: str) -> Claim:
        """Take the delivery for this attempt when nobody sent (or is sending) it."""
        now = now_local(self.tz)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(LEDGER).values(
                    mail_kind=self.kind, period=period, department_id=department_id,
                    recipient=recipient,
                    state=PENDING, attempts=1, updated_at=now))
            return Claim(True, PENDING, 1)
        except IntegrityError:
            pass  # a row exists: decide from its state
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(LEDGER)
                .where(self._where(period, department_id) & (LEDGER.c.state == FAILED))
                .values(state=PENDING, attempts=LEDGER.c.attempts + 1, recipient=recipient,
                        updated_at=now))
            row = conn.execute(select(LEDGER).where(self._where(period, department_id))).first()
        if taken.rowcount == 1:
            return Claim(True, PENDING, int(row.attempts))
        if row.state == PENDING:
            # An earlier attempt claimed it and never recorded the outcome (killed mid-send).
            self.mark(period, department_id, UNKNOWN,
                      error="an earlier attempt stopped while sending; it may have been "
                            "delivered, so it is not resent automatically")
            return Claim(False, UNKNOWN, int(row.attempts))
        return Claim(False, str(row.state), int(row.attempts))

    def mark(self, period: str, department_id: str, state: str, *, message_id: str | None = None,
             sha256: str | None = None, error: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        now = now_local(self.tz)
        values: dict[str, Any] = {"state": state, "updated_at": now,
                                  "last_error": error[:1000] if error else None}
        if message_id:
            values["message_id"] = message_id
        if sha256:
            values["content_sha256"] = sha256
        if state == SENT:
            values["sent_at"] = now
        with self.engine.begin() as conn:
            conn.execute(update(LEDGER).where(self._where(period, department_id)).values(**values))

    def reset(self, period: str, department_id: str) -> None:
        """Allow one more send of a delivery (an operator's decision after checking with the
        head that an `unknown` or `sent` message did not arrive)."""
        self.mark(period, department_id, FAILED, error="reset for resending by an operator")


# ================================================================= the message
def message_id(period: str, department_id: str, recipient: str, sender: str,
               kind: str = REPORT) -> str:
    """Stable per (kind, period, department, recipient): a receiving server may drop a
    duplicate."""
    key = f"{period}|{department_id}|{recipient}" if kind == REPORT else \
        f"{kind}|{period}|{department_id}|{recipient}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "revisit.localhost"
    return f"<revisit.{period}.{digest}@{domain}>"


TAGS = {REPORT: "X-Revisit-Report", SLA_DIGEST: "X-Revisit-Digest",
        CALL_LIST: "X-Revisit-Call-List",
        ESCALATION: "X-Revisit-Escalation",
        COMPANY_REPORT: "X-Revisit-Company-Report"}  # the tag header of each mail kind


def new_message(subject: str, sender: str, head_email: object, period: str,
                department_id: str, kind: str = REPORT) -> EmailMessage:
    """A message to a department head (or, kind CALL_LIST, an agent: `department_id` is then
    the agent id) with the headers every Revisit e-mail carries: the stable Message-ID (a
    receiving server may drop a duplicate), Auto-Submitted, and an X-Revisit-Report /
    X-Revisit-Digest / X-Revisit-Call-List tag naming the period and the department (agent)."""
    recipient = str(head_email).strip()
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id(period, department_id, recipient, sender, kind=kind)
    msg["Auto-Submitted"] = "auto-generated"
    tag = TAGS.get(kind, "X-Revisit-Report")
    msg[tag] = f"{period}/{department_id}"
    return msg


def header_text(text: str) -> str:
    """`text` on one line: a CR / LF from CRM text must never reach a mail header."""
    return " ".join(text.split())


def email_content(data: dict[str, Any], policy, locale: str | None = None
                  ) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the monthly report's message to the department head,
    from the report's own context, so the e-mail shows the PDF's period and highlights."""
    from revisit.delivery.report import build_context

    context = build_context(data, policy, locale)
    dept = context["department"]  # its texts shortened to report.max_text_chars
    context["subject"] = header_text(context["tr"]["email"]["subject"].format(
        department=dept.get("name") or dept["department_id"], month=context["period"]))
    return (context["subject"], render("email.txt.j2", context),
            render("email.html.j2", context))


def build_message(data: dict[str, Any], policy, pdf: bytes, sender: str,
                  locale: str | None = None, xlsx: bytes | None = None) -> EmailMessage:
    """The head's message: short text + HTML alternative, the PDF attached, and beside it the
    full per-agent table `xlsx` (the PDF shows only the strongest and weakest agents)."""
    dept = data["department"]
    subject, text, html = email_content(data, policy, locale)
    msg = new_message(subject, sender, dept["head_email"], data["month"], dept["department_id"])
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(pdf, maintype="application", subtype="pdf",
                       filename=attachment_name(data["month"], dept["department_id"]))
    if xlsx is not None:
        msg.add_attachment(xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1],
                           filename=agents_attachment_name(data["month"], dept["department_id"]))
    return msg


def attachment_name(month: str, department_id: str, what: str = "report",
                    suffix: str = ".pdf") -> str:
    """An attachment's file name in the head's e-mail: ASCII, the department id made safe
    (`what` = report for the PDF, agents for the per-agent XLSX)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", department_id)
    return f"revisit-{what}-{month}-{safe}{suffix}"


XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def agents_attachment_name(month: str, department_id: str) -> str:
    """The per-agent XLSX's file name in the head's e-mail."""
    return attachment_name(month, department_id, "agents", ".xlsx")


# ================================================================= one message, once
def send_once(ledger: DeliveryLedger, period: str, department_id: str, recipient: object,
              compose: Callable[[str], EmailMessage], transport: Transport) -> dict[str, Any]:
    """Send the message `compose(sender)` to `recipient` unless the ledger says this
    (kind, period, department) was sent, or may have been.

    Returns {"department_id", "state", "sent": bool, "attempts"}; raises DeliveryError when
    this attempt did not deliver (`retryable` tells the caller whether to try again)."""
    if not valid_address(recipient):
        claim = ledger.claim(period, department_id, str(recipient or "")[:320])
        if claim.send:
            ledger.mark(period, department_id, FAILED,
                        error=f"department has no valid head_email ({recipient!r})")
            raise DeliveryRefused(f"{department_id}: no valid head_email in the CRM "
                                  f"({recipient!r})", retryable=False)
        return _skipped(department_id, claim)
    recipient = str(recipient).strip()
    claim = ledger.claim(period, department_id, recipient)
    if not claim.send:
        return _skipped(department_id, claim)
    try:
        msg = compose(transport.sender)
    except Exception as error:
        ledger.mark(period, department_id, FAILED, error=f"could not build the message: {error}")
        raise
    sha = hashlib.sha256(msg.as_bytes()).hexdigest()
    try:
        transport.send(msg)
    except DeliveryUncertain as error:
        ledger.mark(period, department_id, UNKNOWN, message_id=msg["Message-ID"], sha256=sha,
                    error=str(error))
        raise
    except DeliveryRefused as error:
        ledger.mark(period, department_id, FAILED, message_id=msg["Message-ID"], sha256=sha,
                    error=str(error))
        raise
    except Exception as error:
        # Not classified by the transport: assume the worst (it may have gone out).
        ledger.mark(period, department_id, UNKNOWN, message_id=msg["Message-ID"], sha256=sha,
                    error=repr(error))
        raise DeliveryUncertain(f"{department_id}: {error!r}", retryable=False) from error
    ledger.mark(period, department_id, SENT, message_id=msg["Message-ID"], sha256=sha)
    log.info("%s %s for %s sent (%s)", ledger.kind, period, department_id, msg["Message-ID"])
    return {"department_id": department_id, "state": SENT, "sent": True,
            "attempts": claim.attempts}


def deliver(ledger: DeliveryLedger, data: dict[str, Any], pdf_path: Path, policy,
            transport: Transport, xlsx_path: Path | None = None) -> dict[str, Any]:
    """Send one department's monthly report (see send_once), with the per-agent XLSX at
    `xlsx_path` attached beside the PDF."""
    dept = data["department"]

    def compose(sender: str) -> EmailMessage:
        xlsx = None if xlsx_path is None else Path(xlsx_path).read_bytes()
        return build_message(data, policy, Path(pdf_path).read_bytes(), sender, xlsx=xlsx)

    return send_once(ledger, data["month"], str(dept["department_id"]), dept.get("head_email"),
                     compose, transport)


def _skipped(department_id: str, claim: Claim) -> dict[str, Any]:
    log.info("mail for %s not sent: delivery is already %s", department_id, claim.state)
    if claim.state == UNKNOWN:
        raise DeliveryUncertain(
            f"{department_id}: an earlier attempt may have delivered the message; not resending "
            "(check with the head, then DeliveryLedger.reset to allow a resend)",
            retryable=False)
    return {"department_id": department_id, "state": claim.state, "sent": False,
            "attempts": claim.attempts}


__all__ = [
    "ALERT",
    "CALL_LIST",
    "COMPANY_REPORT",
    "ESCALATION",
    "FAILED",
    "PENDING",
    "REPORT",
    "SENT",
    "SLA_DIGEST",
    "STATES",
    "TAGS",
    "UNKNOWN",
    "XLSX_TYPE",
    "Claim",
    "DeliveryError",
    "DeliveryLedger",
    "DeliveryRefused",
    "DeliveryUncertain",
    "agents_attachment_name",
    "attachment_name",
    "build_message",
    "deliver",
    "email_content",
    "header_text",
    "message_id",
    "new_message",
    "send_once",
    "valid_address",
]
