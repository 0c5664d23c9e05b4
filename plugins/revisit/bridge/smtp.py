"""The SMTP transport: one session per message through Airflow's SmtpHook (`smtp_default`).

It lives in the bridge because it is Airflow's connection and hook; revisit.delivery.mail
decides what to send and records it in the send-once ledger, and only sees the Transport
protocol. The hook's own `send_email_smtp` is not used on purpose: it retries `sendmail`
internally up to the connection's `retry_limit`, which after a lost reply sends duplicates.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from revisit.delivery.mail import DeliveryRefused, DeliveryUncertain

SMTP_CONN_ID = "smtp_default"
DEFAULT_SENDER = "revisit@localhost"


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


__all__ = ["DEFAULT_SENDER", "SMTP_CONN_ID", "SmtpHookTransport"]
