"""The daily call-list e-mail to each agent: their own XLSX attached, a summary of the list in
the policy's locale (date, customers, overdue, by reason) without a phone number or a customer
name, and never twice for the same day (delivery ledger)."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
import pytest

from revisit.delivery.agent_mail import (
    agent_message,
    read_agent_lists,
    reason_label,
    send_agent_lists,
    summarise,
)
from revisit.delivery.mail import (
    CALL_LIST,
    SLA_DIGEST,
    DeliveryLedger,
    DeliveryRefused,
    DeliveryUncertain,
    message_id,
)
from revisit.io.db import make_engine
from revisit.io.results import ensure_schema
from revisit.io.spreadsheet import write_csv, write_xlsx
from revisit.rules.calllist import CALL_LIST_COLUMNS

D = dt.date(2026, 11, 20)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# (agent_id, customer_id, customer_name, contact_name, phone, reasons, overdue_days)
LISTS = [
    ("A1", "C1", "上海同祥物流有限公司", "梁文晨", "16605767014", "post_resolution;key_account", 2),
    ("A1", "C2", "合肥维创医疗器械有限公司", "刘博伟", "18851656952", "welcome", 0),
    ("A1", "C3", "Acme <b>Trading</b> Ltd", "John Smith", "13912345678", "key_account", 5),
    ("A2", "C4", "杭州百川科技有限公司", "王小明", "13800001111", "periodic", 0),
    ("A3", "C5", "南京远航贸易有限公司", "陈静", "13700002222", "stable_use", 1),
]
AGENTS = pd.DataFrame({
    "agent_id": ["A1", "A2", "A3", "A4", "A9"],
    "name": ["徐子平", "孙琳超", "杨世秀", "方伟宇", "郑春明"],
    "email": ["ziping.xu@example.com", "linchao.sun@example.com", "not an address",
              "weiyu.fang@example.com", "chunming.zheng@example.com"],
    "department_id": ["D1", "D1", "D2", "D2", "D2"],
    "role": ["agent", "agent", "agent", "agent", "agent"],
    "active": [1, 1, 1, 1, 0],
    "daily_capacity": [None, None, None, None, None],
})


def call_list(agent_id: str) -> pd.DataFrame:
    """An agent's rows as run_call_lists writes them (empty frame for nobody)."""
    rows = [{
        "call_date": D.isoformat(), "rank": rank, "agent_id": agent, "customer_id": customer,
        "customer_name": name, "contact_name": contact, "phone": phone, "tier": "normal",
        "reasons": reasons, "window_end": "2026-11-18", "overdue_days": overdue,
        "ticket_id": "T77" if "post_resolution" in reasons else None, "order_id": "O000000361",
        "suggested_window": "09:00-12:00", "note": f"{name} {phone}",
    } for rank, (agent, customer, name, contact, phone, reasons, overdue)
        in enumerate((r for r in LISTS if r[0] == agent_id), start=1)]
    return pd.DataFrame(rows, columns=list(CALL_LIST_COLUMNS))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """call_lists/D/ with A1, A2, A3 (no address) and A4 (an empty list), plus the run's
    other files."""
    out = tmp_path / "call_lists" / D.isoformat()
    out.mkdir(parents=True)
    for agent_id in ("A1", "A2", "A3", "A4"):
        rows = call_list(agent_id)
        write_csv(rows, out / f"{agent_id}.csv")
        write_xlsx(rows, out / f"{agent_id}.xlsx")
    write_csv(pd.DataFrame({"customer_id": ["C1"], "phone": ["16605767014"],
                            "planned_call_date": ["2026-11-23"], "agent_id": ["A1"]}),
              out / "sms_notice.csv")
    return out


@pytest.fixture
def ledger(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    yield DeliveryLedger(engine, "Asia/Shanghai", kind=CALL_LIST)
    engine.dispose()


class FakeTransport:
    sender = "revisit@example.com"

    def __init__(self, refuse: dict[str, Exception] | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.refuse = refuse or {}

    def send(self, message: EmailMessage) -> None:
        if message["To"] in self.refuse:
            raise self.refuse[message["To"]]
        self.sent.append(message)


def a1_message(folder: Path, policy, locale: str) -> EmailMessage:
    agent = AGENTS.iloc[0].to_dict()
    return agent_message(call_list("A1"), (folder / "A1.xlsx").read_bytes(), agent, D, policy,
                         "revisit@example.com", locale)


def bodies(msg: EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_summary_counts_customers_overdue_and_each_reason_of_a_customer():
    summary = summarise(call_list("A1"))
    assert (summary.customers, summary.overdue) == (3, 2)
    assert summary.reasons == {"post_resolution": 1, "welcome": 1, "key_account": 2}
    assert list(summary.reasons) == ["post_resolution", "welcome", "key_account"]  # rule order


def test_zh_cn_message_names_the_date_and_counts_the_list_by_reason(folder, policy):
    assert policy.report.locale == "zh_CN"
    msg = a1_message(folder, policy, "zh_CN")
    assert msg["Subject"] == "2026-11-20 回访清单：客户 3 位，其中逾期 2 位"
    assert msg["To"] == "ziping.xu@example.com"
    for body in bodies(msg):
        assert "徐子平，您好" in body and "2026-11-20" in body
        assert "待回访客户：3 位" in body and "已逾期：2 位" in body
        assert "投诉处理后回访：1 位" in body and "新客户首单回访：1 位" in body
        assert "重点客户专项维护：2 位" in body
        assert "{" not in body and "O000000361" not in body and "T77" not in body


def test_en_message_names_the_date_and_counts_the_list_by_reason(folder, policy):
    english = policy.model_copy(
        update={"report": policy.report.model_copy(update={"locale": "en"})})
    msg = agent_message(call_list("A1"), (folder / "A1.xlsx").read_bytes(),
                        AGENTS.iloc[0].to_dict(), D, english, "revisit@example.com")
    assert msg["Subject"] == "Your call list for 2026-11-20: 3 customers, 2 overdue"
    text, html = bodies(msg)
    assert '<html lang="en">' in html
    for body in (text, html):
        assert "Customers to call: 3" in body and "Overdue: 2" in body
        assert "Post-resolution visit: 1" in body and "Welcome visit: 1" in body
        assert "Key-account care visit: 2" in body


def test_the_attachment_is_exactly_the_agents_own_xlsx(folder, policy):
    msg = a1_message(folder, policy, "zh_CN")
    attachments = list(msg.iter_attachments())
    assert len(attachments) == 1
    (attachment,) = attachments
    assert attachment.get_content_type() == XLSX
    assert attachment.get_filename() == "revisit-call-list-2026-11-20-A1.xlsx"
    assert attachment.get_content() == (folder / "A1.xlsx").read_bytes()


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_no_phone_number_or_customer_name_in_the_bodies(folder, policy, locale):
    msg = a1_message(folder, policy, locale)
    rows = call_list("A1")
    for body in (*bodies(msg), msg["Subject"]):
        for value in (*rows["phone"], *rows["customer_name"], *rows["contact_name"]):
            assert value not in body
        assert "Acme" not in body and "&lt;b&gt;" not in body
        assert not re.search(r"\d{7,}", body)  # no phone digits, masked or not
        assert "****" not in body


def test_headers_tag_the_call_list_of_the_agent_and_the_day(folder, policy):
    msg = a1_message(folder, policy, "zh_CN")
    assert msg["X-Revisit-Call-List"] == "2026-11-20/A1"
    assert msg["X-Revisit-Digest"] is None and msg["X-Revisit-Report"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == message_id(D.isoformat(), "A1", "ziping.xu@example.com",
                                           "revisit@example.com", kind=CALL_LIST)
    assert msg["Message-ID"] != message_id(D.isoformat(), "A1", "ziping.xu@example.com",
                                           "revisit@example.com", kind=SLA_DIGEST)


def test_agent_name_from_the_crm_is_escaped_in_html(folder, policy):
    agent = {**AGENTS.iloc[0].to_dict(), "name": '<img src="x">徐子平'}
    msg = agent_message(call_list("A1"), b"xlsx", agent, D, policy, "revisit@example.com")
    text, html = bodies(msg)
    assert '<img src="x">' not in html and "&lt;img src=&#34;x&#34;&gt;徐子平" in html
    assert '<img src="x">徐子平' in text  # plain text is not HTML


def test_reason_labels_are_the_call_list_phrases_without_ids():
    tr = {"call_list": {"reasons": {"welcome": "新客户首单回访（订单 {order_id}）",
                                    "post_resolution": "Post-resolution visit (ticket {ticket_id})",
                                    "periodic": "Periodic visit",
                                    "early_use": "Early visit for order {order_id}"}}}
    assert reason_label("welcome", tr) == "新客户首单回访"
    assert reason_label("post_resolution", tr) == "Post-resolution visit"
    assert reason_label("periodic", tr) == "Periodic visit"
    assert reason_label("early_use", tr) == "Early visit for order"
    assert reason_label("unknown_kind", tr) == "unknown_kind"


def test_only_agents_with_rows_have_lists(folder):
    assert sorted(read_agent_lists(folder)) == ["A1", "A2", "A3"]  # A4's list is empty


def test_each_agent_gets_one_message_with_only_their_file_and_a_rerun_sends_none(
        folder, policy, ledger):
    transport = FakeTransport()
    first = send_agent_lists(folder, AGENTS, D, policy, ledger, transport)
    assert first == {"states": {"A1": "sent", "A2": "sent"}, "failed": {}, "no_address": ["A3"]}
    assert sorted(m["To"] for m in transport.sent) == ["linchao.sun@example.com",
                                                       "ziping.xu@example.com"]
    for msg in transport.sent:
        agent_id = msg["X-Revisit-Call-List"].split("/")[1]
        (attachment,) = msg.iter_attachments()
        assert attachment.get_content() == (folder / f"{agent_id}.xlsx").read_bytes()
    assert {r["department_id"]: r["state"] for r in ledger.rows(D.isoformat())} == {
        "A1": "sent", "A2": "sent"}  # the agent without an address is not in the ledger

    again = send_agent_lists(folder, AGENTS, D, policy, ledger, transport)
    assert again["states"] == {"A1": "sent", "A2": "sent"} and again["failed"] == {}
    assert len(transport.sent) == 2


def test_an_agent_without_an_address_is_reported_and_the_others_get_theirs(folder, policy,
                                                                            ledger):
    agents = AGENTS.copy()
    agents.loc[agents["agent_id"] == "A1", "email"] = None
    transport = FakeTransport()
    outcome = send_agent_lists(folder, agents, D, policy, ledger, transport)
    assert outcome["no_address"] == ["A1", "A3"]
    assert outcome["states"] == {"A2": "sent"} and outcome["failed"] == {}
    assert [m["To"] for m in transport.sent] == ["linchao.sun@example.com"]


def test_refused_list_is_retried_on_the_next_attempt_without_resending_the_others(
        folder, policy, ledger):
    flaky = FakeTransport(refuse={"linchao.sun@example.com":
                                  DeliveryRefused("451 try later", retryable=True)})
    outcome = send_agent_lists(folder, AGENTS, D, policy, ledger, flaky)
    assert outcome["states"] == {"A1": "sent", "A2": "failed"}
    error = outcome["failed"]["A2"]
    assert isinstance(error, DeliveryRefused) and error.retryable
    healthy = FakeTransport()
    retry = send_agent_lists(folder, AGENTS, D, policy, ledger, healthy)
    assert retry["states"] == {"A1": "sent", "A2": "sent"} and retry["failed"] == {}
    assert [m["To"] for m in healthy.sent] == ["linchao.sun@example.com"]


def test_a_broken_off_send_is_never_resent(folder, policy, ledger):
    broken = FakeTransport(refuse={"ziping.xu@example.com":
                                   DeliveryUncertain("lost after DATA", retryable=False)})
    outcome = send_agent_lists(folder, AGENTS, D, policy, ledger, broken)
    assert outcome["states"] == {"A1": "unknown", "A2": "sent"}
    assert not outcome["failed"]["A1"].retryable
    healthy = FakeTransport()
    again = send_agent_lists(folder, AGENTS, D, policy, ledger, healthy)
    assert isinstance(again["failed"]["A1"], DeliveryUncertain)
    assert healthy.sent == []


def test_a_list_of_an_inactive_or_unknown_agent_is_refused_for_good(folder, policy, ledger):
    rows = call_list("A1").assign(agent_id="A9")
    write_csv(rows, folder / "A9.csv")
    write_xlsx(rows, folder / "A9.xlsx")
    write_csv(rows.assign(agent_id="A7"), folder / "A7.csv")
    write_xlsx(rows.assign(agent_id="A7"), folder / "A7.xlsx")
    transport = FakeTransport()
    outcome = send_agent_lists(folder, AGENTS, D, policy, ledger, transport)
    assert str(outcome["failed"]["A9"]) == "agent is inactive"
    assert str(outcome["failed"]["A7"]) == "agent not in the CRM"
    assert not any(e.retryable for e in outcome["failed"].values())
    assert "chunming.zheng@example.com" not in [m["To"] for m in transport.sent]
    assert outcome["states"] == {"A1": "sent", "A2": "sent"}


def test_the_next_day_is_another_delivery(folder, policy, ledger):
    transport = FakeTransport()
    send_agent_lists(folder, AGENTS, D, policy, ledger, transport)
    send_agent_lists(folder, AGENTS, D + dt.timedelta(days=1), policy, ledger, transport)
    assert len(transport.sent) == 4


# ================================================================= the handler's SLA tickets
def digest_rows(*items: tuple[str, str, str, str, str]) -> pd.DataFrame:
    """(section, ticket_id, handler, status, deadline) -> digest rows as the sla task writes."""
    return pd.DataFrame([{
        "section": section, "ticket_id": ticket, "customer_name": "上海同祥物流有限公司",
        "phone_masked": "166****7014", "handler_agent_id": handler, "priority": "urgent",
        "metric": "first_response", "deadline": deadline, "status": status,
        "overdue_minutes": "0",
    } for section, ticket, handler, status, deadline in items])


DIGESTS = {
    "D1": digest_rows(
        ("breached", "T-B", "A1", "breached", "2026-11-19T11:00:00+08:00"),   # not the agent's
        ("due_today", "T-DUE2", "A1", "at_risk", "2026-11-20T16:00:00+08:00"),
        ("due_today", "T-DUE1", "A1", "pending", "2026-11-20T10:00:00+08:00"),
        ("at_risk", "T-RISK", "A1", "at_risk", "2026-11-21T09:00:00+08:00"),
        ("due_today", "T-A2", "A2", "pending", "2026-11-20T12:00:00+08:00"),
    ),
    "D2": digest_rows(
        ("due_today", "T-A4", "A4", "pending", "2026-11-20T09:30:00+08:00"),  # A4: empty list
        ("due_today", "T-A9", "A9", "pending", "2026-11-20T09:30:00+08:00"),  # inactive
        ("due_today", "T-NONE", "", "pending", "2026-11-20T09:30:00+08:00"),  # no handler
    ),
}


def test_handler_tickets_are_their_due_today_and_at_risk_rows_by_deadline():
    from revisit.delivery.agent_mail import handler_tickets

    mine = handler_tickets(DIGESTS)
    assert sorted(mine) == ["A1", "A2", "A4", "A9"]
    assert list(mine["A1"]["ticket_id"]) == ["T-DUE1", "T-DUE2", "T-RISK"]  # no breach


def test_the_agents_message_lists_their_tickets_masked_and_without_customer_names(
        folder, policy):
    from revisit.delivery.agent_mail import handler_tickets

    msg = agent_message(call_list("A1"), (folder / "A1.xlsx").read_bytes(),
                        AGENTS.iloc[0].to_dict(), D, policy, "revisit@example.com",
                        tickets=handler_tickets(DIGESTS)["A1"])
    assert msg["Subject"] == ("2026-11-20 回访清单：客户 3 位，其中逾期 2 位；"
                              "工单今日到期 2 项，临近超时 1 项")
    text, html = bodies(msg)
    lines = [line for line in text.splitlines() if line.startswith("- T-")]
    assert lines == [
        "- T-DUE1 | 166****7014 | 紧急 | 首次响应 | 2026-11-20 10:00 | 今日到期",
        "- T-DUE2 | 166****7014 | 紧急 | 首次响应 | 2026-11-20 16:00 | 今日到期",
        "- T-RISK | 166****7014 | 紧急 | 首次响应 | 2026-11-21 09:00 | 临近超时",
    ]
    for body in (text, html):
        assert "上海同祥物流有限公司" not in body and "16605767014" not in body
        assert "T-B" not in body and "T-A2" not in body
        assert "待回访客户：3 位" in body
    assert "<th" in html and "今日到期" in html
    assert len(list(msg.iter_attachments())) == 1


def test_a_handler_without_a_list_gets_the_tickets_without_attachment_once(folder, policy,
                                                                         ledger):
    from revisit.delivery.agent_mail import handler_tickets

    tickets = handler_tickets(DIGESTS)
    transport = FakeTransport()
    first = send_agent_lists(folder, AGENTS, D, policy, ledger, transport, tickets=tickets)
    # A4 (empty list) gets their tickets; A9 is inactive and has no list: skipped, not failed;
    # A3 has no address.
    assert first == {"states": {"A1": "sent", "A2": "sent", "A4": "sent"}, "failed": {},
                     "no_address": ["A3"]}
    a4 = next(m for m in transport.sent if m["To"] == "weiyu.fang@example.com")
    assert list(a4.iter_attachments()) == []
    assert a4["Subject"] == "2026-11-20 工单提醒：今日到期 1 项，临近超时 0 项"
    assert a4["X-Revisit-Call-List"] == "2026-11-20/A4"
    text, _ = bodies(a4)
    assert "没有回访清单" in text and "- T-A4 | 166****7014" in text
    assert "附件" not in text
    a1 = next(m for m in transport.sent if m["To"] == "ziping.xu@example.com")
    assert len(list(a1.iter_attachments())) == 1 and "T-DUE1" in bodies(a1)[0]
    again = send_agent_lists(folder, AGENTS, D, policy, ledger, transport, tickets=tickets)
    assert again["states"] == {"A1": "sent", "A2": "sent", "A4": "sent"}
    assert len(transport.sent) == 3
    assert "chunming.zheng@example.com" not in [m["To"] for m in transport.sent]


def test_english_message_without_a_list(policy):
    from revisit.delivery.agent_mail import handler_tickets

    english = policy.model_copy(
        update={"report": policy.report.model_copy(update={"locale": "en"})})
    msg = agent_message(None, None, AGENTS.iloc[3].to_dict(), D, english,
                        "revisit@example.com", tickets=handler_tickets(DIGESTS)["A4"])
    assert msg["Subject"] == "Your tickets on 2026-11-20: 1 due today, 0 at risk"
    text, _ = bodies(msg)
    assert "- T-A4 | 166****7014 | Urgent" in text or "- T-A4 | 166****7014 |" in text
    assert "Due today" in text and list(msg.iter_attachments()) == []
