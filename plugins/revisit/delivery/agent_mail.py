"""The daily call-list e-mail: every agent with a non-empty list for call date D gets one
message at `agents.email` with exactly their own `call_lists/D/<agent_id>.xlsx` attached.

The body only summarises the list (how many customers, how many overdue, how many per reason,
counted from `call_lists/D/<agent_id>.csv`): phone numbers and customer names travel in the
attachment only. Subject and bodies are in the policy's locale (include/templates/report/
agent_email.*.j2, phrases `agent_mail`; the reason labels are the call list's own
`call_list.reasons` without their ids). Sending goes through revisit.delivery.mail.send_once,
so the delivery ledger (`mail_delivery`, kind call_list, period D, the agent id in the key
column) guarantees at most one message per agent and day.

`send_agent_lists` reports each failed agent with its DeliveryError (the caller decides from
`error.retryable` whether a retry may deliver it), and, apart from them, the agents without a
valid address: those are reported, not failed, since no retry can fix the CRM.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd

from revisit.config.policy import Policy
from revisit.config.translations import load_translations
from revisit.core.addresses import valid_address
from revisit.delivery.mail import (
    CALL_LIST,
    FAILED,
    SENT,
    UNKNOWN,
    DeliveryError,
    DeliveryLedger,
    DeliveryRefused,
    DeliveryUncertain,
    Transport,
    header_text,
    new_message,
    send_once,
)
from revisit.delivery.templating import render
from revisit.rules.calllist import REASON_ORDER, REASON_SEPARATOR

log = logging.getLogger(__name__)

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
# The bracketed part of a reason phrase that names an id: "（订单 {order_id}）", "(ticket {id})".
_ID_PART = re.compile(r"\s*[(（][^()（）]*\{[^{}]*\}[^()（）]*[)）]")


# ================================================================= the lists of D
def read_agent_lists(folder: Path) -> dict[str, Path]:
    """call_lists/D/<agent_id>.xlsx -> {agent_id: path}, for every agent whose CSV of the same
    name has at least one row (the run's other files, e.g. sms_notice.csv, have no XLSX)."""
    lists = {}
    for path in sorted(Path(folder).glob("*.xlsx")):
        csv = path.with_suffix(".csv")
        if csv.exists() and len(_read_csv(csv)):
            lists[path.stem] = path
    return lists


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@dataclass(frozen=True)
class ListSummary:
    """What the e-mail says about one agent's list."""

    customers: int
    overdue: int  # rows with overdue_days > 0
    reasons: dict[str, int]  # reason code -> rows carrying it, in REASON_ORDER (unknown last)


def summarise(rows: pd.DataFrame) -> ListSummary:
    """Counts of a call list (as its CSV holds it): a customer with several reasons counts
    once under each."""
    overdue = pd.to_numeric(rows["overdue_days"], errors="coerce").fillna(0)
    codes = [code for cell in rows["reasons"] for code in str(cell).split(REASON_SEPARATOR)
             if code]
    counted = pd.Series(codes, dtype=object).value_counts().to_dict()
    order = [c for c in REASON_ORDER if c in counted] + sorted(set(counted) - set(REASON_ORDER))
    return ListSummary(customers=len(rows), overdue=int((overdue > 0).sum()),
                       reasons={code: int(counted[code]) for code in order})


def reason_label(code: str, tr: dict[str, Any]) -> str:
    """The call list's own phrase for `code` without the ids it names (the code itself when the
    locale has none): "稳定期回访（订单 {order_id}）" -> "稳定期回访"."""
    phrase = (tr.get("call_list", {}).get("reasons") or {}).get(code)
    if not phrase:
        return code
    label = _ID_PART.sub("", phrase)
    label = re.sub(r"\{[^{}]*\}", "", label)  # an id outside brackets: drop it too
    return " ".join(label.split()) or code


# ================================================================= the message
def attachment_name(day: dt.date, agent_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", agent_id)
    return f"revisit-call-list-{day.isoformat()}-{safe}.xlsx"


def email_content(summary: ListSummary, agent: dict[str, Any], day: dt.date, policy: Policy,
                  locale: str | None = None) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an agent's call-list message: counts only."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    subject = header_text(tr["agent_mail"]["subject"].format(
        date=day.isoformat(), customers=summary.customers, overdue=summary.overdue))
    context = {
        "tr": tr, "lang": locale.replace("_", "-"), "subject": subject, "agent": agent,
        "date": day.isoformat(), "attachment": attachment_name(day, str(agent["agent_id"])),
        "customers": summary.customers, "overdue": summary.overdue,
        "reasons": [{"code": code, "label": reason_label(code, tr), "count": count}
                    for code, count in summary.reasons.items()],
    }
    return subject, render("agent_email.txt.j2", context), render("agent_email.html.j2", context)


def agent_message(rows: pd.DataFrame, xlsx: bytes, agent: dict[str, Any], day: dt.date,
                  policy: Policy, sender: str, locale: str | None = None) -> EmailMessage:
    """One agent's message: text + HTML summary of `rows`, the agent's XLSX attached."""
    agent_id = str(agent["agent_id"])
    subject, text, html = email_content(summarise(rows), agent, day, policy, locale)
    msg = new_message(subject, sender, agent["email"], day.isoformat(), agent_id,
                      kind=CALL_LIST)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1],
                       filename=attachment_name(day, agent_id))
    return msg


# ================================================================= every agent, once
def send_agent_lists(folder: Path, agents: pd.DataFrame, day: dt.date, policy: Policy,
                     ledger: DeliveryLedger, transport: Transport) -> dict[str, Any]:
    """E-mail every agent with a non-empty list in `folder` (call_lists/D/) their list, once.

    Returns {"states": {agent_id: ledger state}, "failed": {agent_id: DeliveryError},
    "no_address": [agent_id, ...]}: an agent without a valid `email` gets nothing and is only
    listed there (the others still get theirs); an inactive agent, or one missing from the
    CRM's agents, is a non-retryable DeliveryRefused (the rules never list them)."""
    staff = agents.drop_duplicates("agent_id").set_index("agent_id")
    states: dict[str, str] = {}
    failed: dict[str, DeliveryError] = {}
    no_address: list[str] = []
    for agent_id, xlsx in read_agent_lists(folder).items():
        if agent_id not in staff.index:
            failed[agent_id] = DeliveryRefused("agent not in the CRM", retryable=False)
            continue
        agent = {"agent_id": agent_id, **staff.loc[agent_id].to_dict()}
        if not _active(agent.get("active")):
            failed[agent_id] = DeliveryRefused("agent is inactive", retryable=False)
            continue
        if not valid_address(agent.get("email")):
            found = ledger.get(day.isoformat(), agent_id)
            if found and found["state"] == SENT:  # delivered before the address went bad
                states[agent_id] = SENT
            else:
                no_address.append(agent_id)
            continue

        def compose(sender: str, agent=agent, xlsx=xlsx) -> EmailMessage:
            rows = _read_csv(xlsx.with_suffix(".csv"))
            return agent_message(rows, xlsx.read_bytes(), agent, day, policy, sender)

        try:
            result = send_once(ledger, day.isoformat(), agent_id, agent["email"], compose,
                               transport)
            states[agent_id] = result["state"]
        except DeliveryError as error:
            states[agent_id] = UNKNOWN if isinstance(error, DeliveryUncertain) else FAILED
            failed[agent_id] = error
    return {"states": states, "failed": failed, "no_address": no_address}


def _active(value: object) -> bool:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes", "y")
    return bool(value)


__all__ = [
    "ListSummary", "agent_message", "attachment_name", "email_content", "read_agent_lists",
    "reason_label", "send_agent_lists", "summarise",
]
