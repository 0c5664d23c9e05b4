"""The daily SLA digest: one e-mail per department head with rows, escaped, phones masked, and
never twice for the same day (delivery ledger)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
import pytest

from revisit.delivery.digest import digest_message, send_digests
from revisit.delivery.mail import SLA_DIGEST, DeliveryLedger, DeliveryRefused
from revisit.io.db import make_engine
from revisit.io.results import ensure_schema
from revisit.io.spreadsheet import write_csv

D = dt.date(2026, 11, 20)
HOSTILE = '<img src="file:///etc/passwd">华东公司'


def rows(*items: tuple[str, str, str]) -> pd.DataFrame:
    """(ticket_id, status, overdue_minutes) -> digest rows as the sla task writes them."""
    return pd.DataFrame([{
        "ticket_id": ticket, "customer_name": HOSTILE, "phone_masked": "138****5678",
        "handler_agent_id": "A1", "priority": "urgent", "metric": "first_response",
        "deadline": "2026-11-19T11:00:00+08:00", "status": status, "overdue_minutes": overdue,
    } for ticket, status, overdue in items])


DEPARTMENTS = pd.DataFrame({
    "department_id": ["D1", "D2", "D3"], "name": ["售后一部", "售后二部", "售后三部"],
    "head_name": ["王芳", "李强", "赵敏"],
    "head_email": ["wang@example.com", "li@example.com", "not-an-address"],
})


class FakeTransport:
    sender = "revisit@example.com"

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.refuse = refuse or set()

    def send(self, message: EmailMessage) -> None:
        if message["To"] in self.refuse:
            raise DeliveryRefused("451 try later", retryable=True)
        self.sent.append(message)


@pytest.fixture
def ledger(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    yield DeliveryLedger(engine, "Asia/Shanghai", kind=SLA_DIGEST)
    engine.dispose()


def test_digest_message_escapes_crm_text_and_shows_only_masked_phones(policy):
    msg = digest_message(rows(("T1", "breached", "90"), ("T2", "at_risk", "0")),
                         DEPARTMENTS.iloc[0].to_dict(), D, policy, "revisit@example.com")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert '<img src="file:///etc/passwd">' not in html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;华东公司" in html
    assert "138****5678" in html and "138****5678" in text
    assert "新超时 1 项，临近超时 1 项" in msg["Subject"]
    assert "2026-11-19 11:00" in text and "首次响应" in text and "已超时" in text
    assert msg["To"] == "wang@example.com"


def test_each_department_with_rows_gets_one_digest_and_a_rerun_sends_none(tmp_path, policy,
                                                                           ledger):
    write_csv(rows(("T1", "breached", "90")), tmp_path / "digest_D1.csv")
    write_csv(rows(("T2", "at_risk", "0")), tmp_path / "digest_D2.csv")
    transport = FakeTransport()
    first = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, transport)
    assert first == {"states": {"D1": "sent", "D2": "sent"}, "failed": {}}
    assert sorted(m["To"] for m in transport.sent) == ["li@example.com", "wang@example.com"]
    again = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, transport)
    assert again["states"] == {"D1": "sent", "D2": "sent"}
    assert len(transport.sent) == 2
    # The next day is another digest.
    send_digests(tmp_path, DEPARTMENTS, D + dt.timedelta(days=1), policy, ledger, transport)
    assert len(transport.sent) == 4


def test_refused_digest_is_retried_on_the_next_attempt_without_resending_the_others(
        tmp_path, policy, ledger):
    write_csv(rows(("T1", "breached", "90")), tmp_path / "digest_D1.csv")
    write_csv(rows(("T2", "breached", "30")), tmp_path / "digest_D2.csv")
    flaky = FakeTransport(refuse={"li@example.com"})
    outcome = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, flaky)
    assert outcome["states"] == {"D1": "sent", "D2": "failed"}
    error = outcome["failed"]["D2"]
    assert isinstance(error, DeliveryRefused) and error.retryable and "451" in str(error)
    healthy = FakeTransport()
    retry = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, healthy)
    assert retry == {"states": {"D1": "sent", "D2": "sent"}, "failed": {}}
    assert [m["To"] for m in healthy.sent] == ["li@example.com"]


def test_department_without_a_valid_head_email_fails_alone(tmp_path, policy, ledger):
    write_csv(rows(("T1", "breached", "90")), tmp_path / "digest_D1.csv")
    write_csv(rows(("T3", "breached", "5")), tmp_path / "digest_D3.csv")
    transport = FakeTransport()
    outcome = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, transport)
    assert outcome["states"]["D1"] == "sent"
    error = outcome["failed"]["D3"]
    assert isinstance(error, DeliveryRefused) and not error.retryable
    assert "no valid head_email" in str(error)
    assert [m["To"] for m in transport.sent] == ["wang@example.com"]
    assert {r["department_id"]: r["state"] for r in ledger.rows(D.isoformat())} == {
        "D1": "sent", "D3": "failed"}


def test_department_missing_from_the_crm_is_refused_for_good(tmp_path, policy, ledger):
    write_csv(rows(("T9", "breached", "5")), tmp_path / "digest_D9.csv")
    outcome = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, FakeTransport())
    assert outcome["states"] == {}
    error = outcome["failed"]["D9"]
    assert isinstance(error, DeliveryRefused) and not error.retryable
    assert str(error) == "department not in the CRM"
    assert ledger.rows(D.isoformat()) == []


