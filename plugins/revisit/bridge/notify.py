"""Airflow notifiers that e-mail the data team (policy `notify.data_team`) about the pipeline.

`DataTeamNotifier` is a `BaseNotifier` (airflow.sdk.bases.notifier), so Airflow runs it the way
it runs any notifier: called with the task context as an `on_failure_callback` in the worker
(`notify`), or awaited in the triggerer as a Deadline Alert's `AsyncCallback` (`async_notify`;
the triggerer builds it with `context=` and awaits it). A subclass only says what the alert is
(`compose`: an `Alert`, or a text saying why there is nothing to tell); revisit.bridge.alerts
has the two.

Why not the SMTP provider's SmtpNotifier as it is: it renders Jinja over its fields (an error
text with braces would be rendered, not shown), sends HTML only, and its hook retries
`sendmail` up to the connection's `retry_limit` — after a lost reply that is the same alert
several times. Here each alert is one message in one SMTP session of the provider's SmtpHook
(connection `smtp_default`), with a stable Message-ID per alert, and no retry: a failure is
raised (and logged by Airflow), never repeated.

This module is imported when a DAG file is parsed (the DAGs name the notifiers), so it imports
nothing heavy at module level: the policy, the hook and the transport load when an alert is
sent.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from enum import Enum
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
ALERT_HEADER = "X-Revisit-Alert"  # what kind of alert a message is (task_failed, ...)


@dataclass(frozen=True)
class Alert:
    """What the data team is told: ids, states, times and counts only, never customer data."""

    kind: str  # the X-Revisit-Alert header: task_failed, quality_stop, call_lists_late
    key: str  # what the alert is about, once (e.g. dag/run/task/map/try): the Message-ID
    subject: str
    facts: Sequence[tuple[str, str]]  # label, value
    text: Sequence[str] = ()  # paragraphs
    table: Sequence[Sequence[str]] = field(default_factory=tuple)  # header row, then rows


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line of at most `limit` characters (headers, table cells)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _plain(alert: Alert) -> str:
    width = max((len(label) for label, _ in alert.facts), default=0) + 1
    lines = [f"{label + ':':<{width}} {value}" for label, value in alert.facts]
    for paragraph in alert.text:
        lines += ["", paragraph]
    if alert.table:
        widths = [max(len(str(row[i])) for row in alert.table)
                  for i in range(len(alert.table[0]))]
        lines.append("")
        for row in alert.table:
            cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
    lines += ["", "-- Revisit (notify.data_team in policy.yaml)"]
    return "\n".join(lines) + "\n"


def _html(alert: Alert) -> str:
    esc = html.escape
    facts = "".join(f"<tr><th align=\"left\">{esc(label)}</th><td>{_html_value(value)}</td></tr>"
                    for label, value in alert.facts)
    parts = [f"<table>{facts}</table>"]
    parts += [f"<p>{esc(paragraph)}</p>" for paragraph in alert.text]
    if alert.table:
        head, *rows = alert.table
        parts.append("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr>"
                     + "".join(f"<th>{esc(str(c))}</th>" for c in head) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row)
                               + "</tr>" for row in rows) + "</table>")
    parts.append("<p><small>Revisit (notify.data_team in policy.yaml)</small></p>")
    return "<html><body>" + "".join(parts) + "</body></html>\n"


def _html_value(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return f"<a href=\"{html.escape(value)}\">{html.escape(value)}</a>"
    return html.escape(value)


def build_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The alert as a plain-text + HTML message to `recipients`."""
    message = EmailMessage()
    message["Subject"] = one_line(alert.subject, 200)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    digest = hashlib.sha256(f"{alert.kind}|{alert.key}".encode()).hexdigest()[:24]
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "revisit.localhost"
    message["Message-ID"] = f"<revisit-alert.{alert.kind}.{digest}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message[ALERT_HEADER] = alert.kind
    message.set_content(_plain(alert))
    message.add_alternative(_html(alert), subtype="html")
    return message


def data_team() -> list[str]:
    """The policy's notify.data_team (validated addresses when the policy loaded)."""
    from revisit.config.policy import load_policy

    return list(load_policy().notify.data_team)


def sender_of(conn: Any, default: str) -> str:
    """The From address of an SMTP connection: extra from_email, else a login that is an
    address, else `default` (the same rule as revisit.bridge.smtp.SmtpHookTransport)."""
    extra = conn.extra_dejson
    login = conn.login if conn.login and "@" in conn.login else None
    return extra.get("from_email") or login or default


def base_url() -> str | None:
    """Airflow's `[api] base_url` when it is configured (then links can point at the UI)."""
    from airflow.sdk.configuration import conf

    url = conf.get("api", "base_url", fallback=None)
    return url.rstrip("/") if url else None


def field_of(record: Any, *names: str) -> Any:
    """The first of `names` a record has, whether it is a mapping (the JSON a deadline callback
    gets) or an object (a task context's DagRun / TaskInstance); an enum as its value
    (DagRunType.SCHEDULED -> "scheduled")."""
    for name in names:
        value = record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)
        if value is not None:
            return value.value if isinstance(value, Enum) else value
    return None


class DataTeamNotifier(BaseNotifier):
    """E-mail what `compose` returns to notify.data_team through connection `smtp_default`."""

    # Nothing is rendered by Jinja: the content is built from the context in `compose`.
    template_fields: Sequence[str] = ()

    def __init__(self, smtp_conn_id: str = SMTP_CONN_ID, context: Any = None) -> None:
        super().__init__(context=context)
        self.smtp_conn_id = smtp_conn_id

    def compose(self, context: Mapping[str, Any]) -> Alert | str:
        """The alert for this context, or why there is nothing to tell (a text)."""
        raise NotImplementedError

    def _prepare(self, context: Mapping[str, Any]) -> tuple[Alert, list[str]] | str:
        alert = self.compose(context)
        if isinstance(alert, str):
            log.info("no alert: %s", alert)
            return f"nothing sent: {alert}"
        recipients = data_team()
        if not recipients:
            log.warning("notify.data_team is empty in the policy: nobody is told: %s",
                        alert.subject)
            return "nothing sent: notify.data_team is empty"
        return alert, recipients

    def notify(self, context: Mapping[str, Any]) -> str:
        """Send synchronously (a task callback, in the worker): one session, one message."""
        prepared = self._prepare(context)
        if isinstance(prepared, str):
            return prepared
        alert, recipients = prepared
        from revisit.bridge.smtp import DEFAULT_SENDER, SmtpHookTransport

        transport = SmtpHookTransport(self.smtp_conn_id)
        transport.send(build_message(alert, transport.sender or DEFAULT_SENDER, recipients))
        return _sent(alert, recipients)

    async def async_notify(self, context: Mapping[str, Any]) -> str:
        """Send asynchronously (a Deadline Alert, in the triggerer): the hook's async session,
        so the triggerer's event loop is never blocked on the mail server. The returned text
        is what the triggerer records as the callback's output."""
        prepared = self._prepare(context)
        if isinstance(prepared, str):
            return prepared
        alert, recipients = prepared
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        from revisit.bridge.smtp import DEFAULT_SENDER

        async with SmtpHook(smtp_conn_id=self.smtp_conn_id) as hook:
            message = build_message(alert, sender_of(hook.conn, DEFAULT_SENDER), recipients)
            # The hook's own asend_email_smtp retries sendmail (duplicates): one send instead.
            await hook._smtp_client.send_message(message)
        return _sent(alert, recipients)


def _sent(alert: Alert, recipients: Sequence[str]) -> str:
    done = f"alert {alert.kind} e-mailed to the data team ({len(recipients)} addresses)"
    log.info("%s: %s", done, alert.subject)
    return done


__all__ = ["ALERT_HEADER", "SMTP_CONN_ID", "Alert", "DataTeamNotifier", "base_url",
           "build_message", "data_team", "field_of", "one_line", "sender_of"]
