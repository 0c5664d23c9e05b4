"""E-mail to department heads, each message sent at most once: the monthly report and the
daily SLA breach digest.

Why a ledger: Airflow retries tasks and users rerun dates, but a head must never get the same
message twice. Every (kind, period, department) — e.g. (report, 2026-10, D01) or
(sla_digest, 2026-11-20, D01) — has one row in the results database table `mail_delivery`
(include/sql/results/schema.sql) that moves

    (none) / failed --claim--> pending --> sent | failed | unknown

- `claim` is one conditional write, so only one attempt can own a delivery;
- a `pending` row found by a later attempt means that attempt died while talking to the
  server: the message may have gone out, so it becomes `unknown` and is not resent;
- `failed` (the server refused the message, or could not be reached before anything was sent)
  is safe to retry: the next Airflow try claims it again;
- `sent` is final: later attempts return without sending.

Sending goes through the Airflow SMTP provider's connection `smtp_default` (`SmtpHook`): the
hook opens and authenticates the session; the message is then sent once per attempt with
`send_message`. The hook's `send_email_smtp` is not used on purpose: it retries `sendmail`
internally up to the connection's `retry_limit`, which after a lost reply sends duplicates, and
it cannot carry a plain-text alternative.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import column, insert, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
LEDGER = table("mail_delivery", column("mail_kind"), column("period"), column("department_id"),
               column("recipient"), column("state"), column("attempts"), column("message_id"),
               column("content_sha256"), column("last_error"), column("updated_at"),
               column("sent_at"))
REPORT, SLA_DIGEST = "report", "sla_digest"  # mail kinds
PENDING, SENT, FAILED, UNKNOWN = "pending", "sent", "failed", "unknown"
STATES = (PENDING, SENT, FAILED, UNKNOWN)
DEFAULT_SENDER = "revisit@localhost"
# Plain ASCII addresses only: an internationalised one needs SMTPUTF8, which many servers lack.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
                      r"\.[A-Za-z]{2,}$")


class DeliveryError(RuntimeError):
    """A send that did not happen; `retryable` says whether another try may send it."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class DeliveryRefused(DeliveryError):
    """Definitely not delivered (no connection, login refused, message or recipient refused)."""


class DeliveryUncertain(DeliveryError):
    """The attempt broke off mid-conversation: the message may have been delivered."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    @property
    def sender(self) -> str: ...


# ================================================================= the SMTP transport
class SmtpHookTransport:
    """One SMTP session per message through Airflow's SmtpHook (connection `smtp_default`).

    Failures are classified so the ledger knows what may be retried: anything before the
    message is handed over (connect, TLS, login) and an explicit refusal by the server is
    DeliveryRefused; a connection lost while the message is in flight is DeliveryUncertain."""

    def __init__(self, conn_id: str = SMTP_CONN_ID) -> None:
        self.conn_id = conn_id
        self._sender: str | None = None

    @property
    def sender(self) -> str:
        if self._sender is None:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(self.conn_id)
            extra = conn.extra_dejson
            login = conn.login if conn.login and "@" in conn.login else None
            self._sender = extra.get("from_email") or login or DEFAULT_SENDER
        return self._sender

    def send(self, message: EmailMessage) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        hook = SmtpHook(smtp_conn_id=self.conn_id)
        try:
            hook.get_conn()
        except Exception as error:
            raise DeliveryRefused(f"SMTP connection {self.conn_id!r} failed: {error}",
                                  retryable=True) from error
        client = hook._smtp_client  # the hook's authenticated session (no public accessor)
        try:
            client.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                smtplib.SMTPDataError, smtplib.SMTPHeloError,
                smtplib.SMTPNotSupportedError) as error:
            # The server answered "no" (before or instead of accepting the message).
            permanent = _reply_code(error) >= 500 or isinstance(
                error, smtplib.SMTPNotSupportedError)
            raise DeliveryRefused(f"the SMTP server refused the message: {error}",
                                  retryable=not permanent) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryUncertain(f"SMTP session broke off while sending: {error!r}",
                                    retryable=False) from error
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()


def _reply_code(error: smtplib.SMTPException) -> int:
    """The server's reply code of a refusal (the lowest over refused recipients)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        return min(int(code) for code, _ in error.recipients.values())
    return int(getattr(error, "smtp_code", 0) or 0)


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
    """The `mail_delivery` rows of one kind of mail; `month` arguments are the period (a
    report month or a call date)."""

    def __init__(self, engine: Engine, tz: str, kind: str = REPORT) -> None:
        self.engine, self.tz, self.kind = engine, tz, kind

    def _where(self, month: str, department_id: str):
        return ((LEDGER.c.mail_kind == self.kind) & (LEDGER.c.period == month)
                & (LEDGER.c.department_id == department_id))

    def get(self, month: str, department_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(LEDGER).where(self._where(month, department_id))).first()
        return dict(row._mapping) if row else None

    def month(self, month: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(LEDGER).where((LEDGER.c.mail_kind == self.kind)
                                                     & (LEDGER.c.period == month))
                                .order_by(LEDGER.c.department_id)).all()
        return [dict(r._mapping) for r in rows]

    def claim(self, month: str, department_id: str, recipient: str) -> Claim:
        """Take the delivery for this attempt when nobody sent (or is sending) it."""
        now = now_local(self.tz)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(LEDGER).values(
                    mail_kind=self.kind, period=month, department_id=department_id,
                    recipient=recipient,
                    state=PENDING, attempts=1, updated_at=now))
            return Claim(True, PENDING, 1)
        except IntegrityError:
            pass  # a row exists: decide from its state
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(LEDGER).where(self._where(month, department_id) & (LEDGER.c.state == FAILED))
                .values(state=PENDING, attempts=LEDGER.c.attempts + 1, recipient=recipient,
                        updated_at=now))
            row = conn.execute(select(LEDGER).where(self._where(month, department_id))).first()
        if taken.rowcount == 1:
            return Claim(True, PENDING, int(row.attempts))
        if row.state == PENDING:
            # An earlier attempt claimed it and never recorded the outcome (killed mid-send).
            self.mark(month, department_id, UNKNOWN,
                      error="an earlier attempt stopped while sending; it may have been "
                            "delivered, so it is not resent automatically")
            return Claim(False, UNKNOWN, int(row.attempts))
        return Claim(False, str(row.state), int(row.attempts))

    def mark(self, month: str, department_id: str, state: str, *, message_id: str | None = None,
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
            conn.execute(update(LEDGER).where(self._where(month, department_id)).values(**values))

    def reset(self, month: str, department_id: str) -> None:
        """Allow one more send of a delivery (an operator's decision after checking with the
        head that an `unknown` or `sent` message did not arrive)."""
        self.mark(month, department_id, FAILED, error="reset for resending by an operator")


# ================================================================= the message
def valid_address(address: object) -> bool:
    return isinstance(address, str) and bool(_ADDRESS.fullmatch(address.strip()))


def message_id(month: str, department_id: str, recipient: str, sender: str,
               kind: str = REPORT) -> str:
    """Stable per (kind, period, department, recipient): a receiving server may drop a
    duplicate."""
    key = f"{month}|{department_id}|{recipient}" if kind == REPORT else \
        f"{kind}|{month}|{department_id}|{recipient}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "revisit.localhost"
    return f"<revisit.{month}.{digest}@{domain}>"


def new_message(subject: str, sender: str, head_email: object, period: str,
                department_id: str, kind: str = REPORT) -> EmailMessage:
    """A message to a department head with the headers every Revisit e-mail carries: the
    stable Message-ID (a receiving server may drop a duplicate), Auto-Submitted, and an
    X-Revisit-Report / X-Revisit-Digest tag naming the period and the department."""
    recipient = str(head_email).strip()
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id(period, department_id, recipient, sender, kind=kind)
    msg["Auto-Submitted"] = "auto-generated"
    tag = "X-Revisit-Digest" if kind == SLA_DIGEST else "X-Revisit-Report"
    msg[tag] = f"{period}/{department_id}"
    return msg


def build_message(data: dict[str, Any], policy, pdf: bytes, sender: str,
                  locale: str | None = None) -> EmailMessage:
    """The head's message: short text + HTML alternative, the PDF attached."""
    from revisit.delivery.report import email_content

    dept = data["department"]
    subject, text, html = email_content(data, policy, locale)
    msg = new_message(subject, sender, dept["head_email"], data["month"], dept["department_id"])
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(pdf, maintype="application", subtype="pdf",
                       filename=attachment_name(data["month"], dept["department_id"]))
    return msg


def attachment_name(month: str, department_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", department_id)
    return f"revisit-report-{month}-{safe}.pdf"


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
            transport: Transport) -> dict[str, Any]:
    """Send one department's monthly report (see send_once)."""
    dept = data["department"]

    def compose(sender: str) -> EmailMessage:
        return build_message(data, policy, Path(pdf_path).read_bytes(), sender)

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
    "FAILED",
    "PENDING",
    "REPORT",
    "SENT",
    "SLA_DIGEST",
    "SMTP_CONN_ID",
    "STATES",
    "UNKNOWN",
    "Claim",
    "DeliveryError",
    "DeliveryLedger",
    "DeliveryRefused",
    "DeliveryUncertain",
    "SmtpHookTransport",
    "attachment_name",
    "build_message",
    "deliver",
    "message_id",
    "new_message",
    "send_once",
    "valid_address",
]
