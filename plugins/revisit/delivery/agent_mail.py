"""The daily call-list e-mail: every agent with a non-empty list for call date D gets one
message at `agents.email` with exactly their own `call_lists/D/<agent_id>.xlsx` attached.

The body only summarises the list (how many customers, how many overdue, how many per reason,
counted from `call_lists/D/<agent_id>.csv`): phone numbers and customer names travel in the
attachment only. Subject and bodies are in the policy's locale (include/templates/report/
agent_email.*.j2, phrases `agent_mail`; the reason labels are the call list's own
`call_list.reasons` without their ids). Sending goes through revisit.delivery.mail.send_once,
so the delivery ledger (`mail_delivery`, kind call_list, period D, the agent id in the key
column) guarantees at most one message per agent and day.

The message also lists the agent's own SLA warnings: the tickets they handle
(`tickets.handler_agent_id`) that are due today or at risk, as the heads' digest has them
(`sla/D/digest_<department_id>.csv`, sections due_today and at_risk; read_handler_tickets),
ordered by deadline — ticket id, masked phone, priority, metric, deadline, section; never a
customer name or a full phone. A handler with such tickets but no call list for D (an active
agent with a valid address) still gets the message, then without attachment; an inactive or
unknown handler without a list is skipped (logged), not failed. Either way it is one message
per (agent, D) under the same ledger key (kind call_list).

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
from revisit.core.flags import is_true
from revisit.delivery.digest import display_rows, read_digests, with_sections
from revisit.delivery.mail import (
    CALL_LIST,
    FAILED,
    SENT,
    UNKNOWN,
    XLSX_TYPE,
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


# The agent's SLA table: no customer name, the phone masked.
TICKET_COLUMNS = ("ticket_id", "phone_masked", "priority", "metric", "deadline", "section")
TICKET_SECTIONS = ("due_today", "at_risk")


def handler_tickets(digests: dict[str, pd.DataFrame] | pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{agent_id: rows} of the digest rows (all departments) in the sections due_today and
    at_risk, by handler, each ordered by deadline (then ticket, metric)."""
    frames = list(digests.values()) if isinstance(digests, dict) else [digests]
    frames = [with_sections(f) for f in frames if len(f)]
    if not frames:
        return {}
    rows = pd.concat(frames, ignore_index=True)
    handler = rows["handler_agent_id"].astype("string").str.strip().fillna("")
    chosen = rows["section"].isin(TICKET_SECTIONS) & (handler != "")
    rows = rows[chosen.to_numpy(bool)].assign(handler_agent_id=handler[chosen.to_numpy(bool)])
    rows = rows.sort_values(["deadline", "ticket_id", "metric"], kind="stable")
    return {str(agent_id): frame.reset_index(drop=True)
            for agent_id, frame in rows.groupby("handler_agent_id", sort=True)}


def read_handler_tickets(sla_folder: Path) -> dict[str, pd.DataFrame]:
    """handler_tickets of the digests the sla task wrote in sla/D/."""
    return handler_tickets(read_digests(Path(sla_folder)))


def ticket_records(rows: pd.DataFrame, tr: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent's table as shown: the digest's display (codes translated, deadline to the
    minute, phones masked again when not masked, cells neutralised), TICKET_COLUMNS only."""
    return [{key: record[key] for key in (*TICKET_COLUMNS, "section_code")}
            for record in display_rows(rows, tr)]


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


def email_content(summary: ListSummary | None, agent: dict[str, Any], day: dt.date,
                  policy: Policy, locale: str | None = None,
                  tickets: pd.DataFrame | None = None) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an agent's message: the list's counts (none when
    `summary` is None: no call list today) and the agent's due-today / at-risk tickets."""
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    phrases = tr["agent_mail"]
    records = ticket_records(tickets, tr) if tickets is not None and len(tickets) else []
    counts = {code: sum(r["section_code"] == code for r in records) for code in TICKET_SECTIONS}
    if summary is not None:
        subject = phrases["subject"].format(
            date=day.isoformat(), customers=summary.customers, overdue=summary.overdue)
        if records:
            subject += phrases["subject_tickets"].format(**counts)
    else:
        subject = phrases["subject_no_list"].format(date=day.isoformat(), **counts)
    subject = header_text(subject)
    context = {
        "tr": tr, "lang": locale.replace("_", "-"), "subject": subject, "agent": agent,
        "max_text_chars": policy.report.max_text_chars,
        "date": day.isoformat(),
        "attachment": attachment_name(day, str(agent["agent_id"])) if summary else None,
        "customers": summary.customers if summary else 0,
        "overdue": summary.overdue if summary else 0,
        "reasons": [{"code": code, "label": reason_label(code, tr), "count": count}
                    for code, count in (summary.reasons.items() if summary else ())],
        "tickets": records, "ticket_columns": TICKET_COLUMNS,
    }
    return subject, render("agent_email.txt.j2", context), render("agent_email.html.j2", context)


def agent_message(rows: pd.DataFrame | None, xlsx: bytes | None, agent: dict[str, Any],
                  day: dt.date, policy: Policy, sender: str, locale: str | None = None,
                  tickets: pd.DataFrame | None = None) -> EmailMessage:
    """One agent's message: text + HTML summary of `rows` and the agent's `tickets`, the
    agent's XLSX attached (no attachment when there is no list: `rows` / `xlsx` None)."""
    agent_id = str(agent["agent_id"])
    has_list = rows is not None and xlsx is not None
    subject, text, html = email_content(summarise(rows) if has_list else None, agent, day,
                                        policy, locale, tickets)
    msg = new_message(subject, sender, agent["email"], day.isoformat(), agent_id,
                      kind=CALL_LIST)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if has_list:
        msg.add_attachment(xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1],
                           filename=attachment_name(day, agent_id))
    return msg


# ================================================================= every agent, once
def send_agent_lists(folder: Path, agents: pd.DataFrame, day: dt.date, policy: Policy,
                     ledger: DeliveryLedger, transport: Transport,
                     tickets: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """E-mail every agent with a non-empty list in `folder` (call_lists/D/) their list, and
    every handler in `tickets` (handler_tickets: {agent_id: due-today / at-risk rows}) their
    tickets, in one message per agent, once.

    Returns {"states": {agent_id: ledger state}, "failed": {agent_id: DeliveryError},
    "no_address": [agent_id, ...]}: an agent without a valid `email` gets nothing and is only
    listed there (the others still get theirs); an inactive agent with a list, or one missing
    from the CRM's agents, is a non-retryable DeliveryRefused (the rules never list them); an
    inactive or unknown handler without a list is skipped (a ticket keeps its handler)."""
    staff = agents.drop_duplicates("agent_id").set_index("agent_id")
    states: dict[str, str] = {}
    failed: dict[str, DeliveryError] = {}
    no_address: list[str] = []
    lists = read_agent_lists(folder)
    tickets = tickets or {}
    for agent_id in sorted(set(lists) | set(tickets)):
        xlsx = lists.get(agent_id)
        mine = tickets.get(agent_id)
        if agent_id not in staff.index or not is_true(staff.loc[agent_id].get("active")):
            reason = "agent not in the CRM" if agent_id not in staff.index \
                else "agent is inactive"
            if xlsx is None:
                log.info("SLA tickets of handler %s not e-mailed: %s", agent_id, reason)
            else:
                failed[agent_id] = DeliveryRefused(reason, retryable=False)
            continue
        agent = {"agent_id": agent_id, **staff.loc[agent_id].to_dict()}
        if not valid_address(agent.get("email")):
            found = ledger.get(day.isoformat(), agent_id)
            if found and found["state"] == SENT:  # delivered before the address went bad
                states[agent_id] = SENT
            else:
                no_address.append(agent_id)
            continue

        def compose(sender: str, agent=agent, xlsx=xlsx, mine=mine) -> EmailMessage:
            if xlsx is None:
                return agent_message(None, None, agent, day, policy, sender, tickets=mine)
            rows = _read_csv(xlsx.with_suffix(".csv"))
            return agent_message(rows, xlsx.read_bytes(), agent, day, policy, sender,
                                 tickets=mine)

        try:
            result = send_once(ledger, day.isoformat(), agent_id, agent["email"], compose,
                               transport)
            states[agent_id] = result["state"]
        except DeliveryError as error:
            states[agent_id] = UNKNOWN if isinstance(error, DeliveryUncertain) else FAILED
            failed[agent_id] = error
    return {"states": states, "failed": failed, "no_address": no_address}


__all__ = [
    "TICKET_COLUMNS", "ListSummary", "agent_message", "attachment_name", "email_content",
    "handler_tickets", "read_agent_lists", "read_handler_tickets", "reason_label",
    "send_agent_lists", "summarise", "ticket_records",
]
