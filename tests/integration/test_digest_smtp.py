"""Warn before the breach, and escalation, against a real SMTP server (aiosmtpd,
tooling.mailsink), on a small demo CRM with a few tickets added that are due on D: the head's
digest with its due-today section as received, each handler's own due-today / at-risk tickets
in their agent e-mail (also for a handler without a call list, then without attachment), the
department supervisor's escalation of the urgent at-risk / breached rows, and none of them a
second time on a retry of the tasks or a rerun of the day."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from tests.integration.mail_env import CONTEXT, D, run_daily

HEAD_D01 = "yibin.qin@revisit.example.com"
SUPERVISOR = ("A0001", "ziping.xu@revisit.example.com")  # D01's only active supervisor
LISTED_HANDLER = ("A0002", "linchao.sun@revisit.example.com")  # has a call list of D
UNLISTED_HANDLER = ("A0019", "yili.wu@revisit.example.com")  # no call list of D

# (ticket_id, priority, handler, customer, created_at, first_response_at); department D01.
TICKETS = [
    # urgent, no response: first_response breached Thu 11:00 (new), plan due Fri 09:00,
    # verification due Fri 18:00 (both pending)
    ("T900000001", "urgent", "A0002", "C0000002", "2026-11-19 09:00:00", None),
    # urgent, responded: plan due Fri 06:00 with 18 of 24 h used (at risk), verification
    # due Fri 18:00
    ("T900000002", "urgent", "A0002", "C0000003", "2026-11-19 06:00:00", "2026-11-19 09:30:00"),
    # general: first_response due Fri 12:00, verification Fri 18:00 (pending); its handler has
    # no call list
    ("T900000003", "general", "A0019", "C0000004", "2026-11-19 13:00:00", None),
    # important, no response: first_response breached Thu 14:00 (new; not escalated)
    ("T900000004", "important", "A0004", "C0000008", "2026-11-19 10:00:00", None),
]


@pytest.fixture(scope="module")
def demo_crm(tmp_path_factory) -> Path:
    from tooling.demo_crm import build_demo_crm

    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    build_demo_crm(f"sqlite:///{path}", customers=200, as_of=D)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO tickets (ticket_id, customer_id, order_id, department_id, "
            "handler_agent_id, type, channel, priority, category, description, created_at, "
            "first_response_at, status) VALUES (?, ?, NULL, 'D01', ?, 'complaint', 'phone', ?, "
            "'other', '测试工单', ?, ?, 'in_progress')",
            [(t, customer, handler, priority, created, responded)
             for t, priority, handler, customer, created, responded in TICKETS])
    return path


def phones(crm: Path) -> dict[str, str]:
    with sqlite3.connect(crm) as conn:
        return dict(conn.execute("SELECT customer_id, phone FROM customers").fetchall())


def names(crm: Path) -> dict[str, str]:
    with sqlite3.connect(crm) as conn:
        return dict(conn.execute("SELECT customer_id, name FROM customers").fetchall())


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def lines_of(text: str, prefix: str = "- T9") -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def section_of(text: str, title: str) -> list[str]:
    """The `- ` lines of the plain-text section headed `title (n)`."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("- "):
            if inside:
                out.append(line)
        elif line.strip():
            inside = line.startswith(f"{title} (")
    return out


def by_header(messages, header: str, key: str):
    found = [m for m in messages if m[header] == f"{D.isoformat()}/{key}"]
    assert len(found) == 1, (header, key, [m[header] for m in messages])
    return found[0]


def test_head_handler_and_supervisor_are_warned_once(crm, env, sink, policy, calendar):
    from revisit.bridge import tasks

    run_daily(crm, env, policy, calendar)
    digest = tasks.sla_digest(CONTEXT)
    assert "D01" in digest["departments"] and digest["states"]["sent"] >= 1
    assert digest["escalations"] == {"sent": 1}
    mail = tasks.agent_mail(CONTEXT)
    assert mail["states"].get("failed") is None
    messages = sink.messages()
    phone, name = phones(crm), names(crm)

    # ---- the head's digest: its due-today section, by deadline, phones masked
    head = by_header(messages, "X-Revisit-Digest", "D01")
    assert head["To"] == HEAD_D01
    assert "新超时 2 项" in head["Subject"] and "今日到期" in head["Subject"]
    text = head.get_body(("plain",)).get_content()
    breached = section_of(text, "新超时")
    assert [line.split(" | ")[0] for line in breached if "T9" in line] == [
        "- T900000001", "- T900000004"]  # urgent first
    due = section_of(text, "今日到期")
    deadlines = [line.split(" | ")[6] for line in due]
    assert deadlines == sorted(deadlines) and deadlines[-1] <= f"{D.isoformat()} 23:59"
    mine = [(line.split(" | ")[0], line.split(" | ")[5], line.split(" | ")[6])
            for line in due if "T9" in line]
    assert mine[0] == ("- T900000002", "处理方案", f"{D.isoformat()} 06:00")
    assert ("- T900000001", "处理方案", f"{D.isoformat()} 09:00") in mine
    assert ("- T900000003", "首次响应", f"{D.isoformat()} 12:00") in mine
    assert len(mine) == 7  # 3 plans / first responses + 4 verifications, each once
    for customer in ("C0000002", "C0000003", "C0000004", "C0000008"):
        assert masked(phone[customer]) in text
        for part in head.walk():
            if not part.is_multipart():
                assert phone[customer] not in part.get_payload(decode=True).decode("utf-8-sig")
    # The attachment carries the section's rows, a first column naming the section.
    (attached,) = head.iter_attachments()
    table = list(csv.reader(io.StringIO(attached.get_payload(decode=True).decode("utf-8-sig"))))
    assert table[0][:2] == ["分类", "工单"]
    assert [r[1] for r in table[1:] if r[0] == "今日到期"] == [
        line.split(" | ")[0].removeprefix("- ") for line in due]

    # ---- the supervisor's escalation: the urgent at-risk / breached rows only
    escalation = by_header(messages, "X-Revisit-Escalation", SUPERVISOR[0])
    assert escalation["To"] == SUPERVISOR[1]
    assert escalation["Subject"].startswith("【升级】")
    esc_text = escalation.get_body(("plain",)).get_content()
    assert sorted((line.split(" | ")[0], line.split(" | ")[5]) for line in lines_of(esc_text)) \
        == [("- T900000001", "首次响应"), ("- T900000002", "处理方案")]
    assert "T900000003" not in esc_text and "T900000004" not in esc_text

    # ---- the handlers: their own due-today tickets, masked, no customer name
    listed = by_header(messages, "X-Revisit-Call-List", LISTED_HANDLER[0])
    assert listed["To"] == LISTED_HANDLER[1]
    assert len(list(listed.iter_attachments())) == 1  # their call list
    listed_text = listed.get_body(("plain",)).get_content()
    rows = lines_of(listed_text)
    assert sorted(line.split(" | ")[0] for line in rows) == [
        "- T900000001", "- T900000001", "- T900000002", "- T900000002"]  # no breach row
    assert [line.split(" | ")[4] for line in rows] == sorted(line.split(" | ")[4]
                                                           for line in rows)
    assert rows[0] == (f"- T900000002 | {masked(phone['C0000003'])} | 紧急 | 处理方案 | "
                       f"{D.isoformat()} 06:00 | 今日到期")
    unlisted = by_header(messages, "X-Revisit-Call-List", UNLISTED_HANDLER[0])
    assert unlisted["To"] == UNLISTED_HANDLER[1]
    assert list(unlisted.iter_attachments()) == []  # no call list: no attachment
    unlisted_text = unlisted.get_body(("plain",)).get_content()
    assert "没有回访清单" in unlisted_text
    assert [line.split(" | ")[0] for line in lines_of(unlisted_text)] == [
        "- T900000003", "- T900000003"]
    for message in (listed, unlisted):
        for part in (message.get_body(("plain",)), message.get_body(("html",))):
            body = part.get_content()
            for customer in ("C0000002", "C0000003", "C0000004"):
                assert name[customer] not in body and phone[customer] not in body

    # ---- none twice: a retry of the tasks, then a rerun of the whole day
    count = len(messages)
    assert tasks.sla_digest(CONTEXT)["escalations"] == {"sent": 1}
    tasks.agent_mail(CONTEXT)
    run_daily(crm, env, policy, calendar)
    tasks.sla_digest(CONTEXT)
    tasks.agent_mail(CONTEXT)
    assert len(sink.messages()) == count


def test_escalation_switched_off_sends_the_digest_to_the_head_only(crm, env, sink, policy,
                                                                   calendar, tmp_path,
                                                                   monkeypatch):
    from revisit.config.policy import DEFAULT_POLICY_PATH

    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    assert "escalate_priorities: [urgent]" in text
    off = tmp_path / "policy.yaml"
    off.write_text(text.replace("escalate_priorities: [urgent]", "escalate_priorities: []"),
                   encoding="utf-8")
    monkeypatch.setenv("REVISIT_POLICY", str(off))
    from revisit.bridge import tasks

    run_daily(crm, env, policy, calendar)
    assert tasks.sla_digest(CONTEXT)["escalations"] == {}
    messages = sink.messages()
    assert not [m for m in messages if m["X-Revisit-Escalation"]]
    assert HEAD_D01 in [m["To"] for m in messages]
