"""The daily SLA digest: one e-mail per department head with rows, escaped, phones masked, and
never twice for the same day (delivery ledger); it carries its rows (body and an attached CSV
of exactly those rows), never a path on the server."""

from __future__ import annotations

import csv
import datetime as dt
import io
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from revisit.delivery.digest import digest_filename, digest_message, send_digests
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




# ================================================================= the rows travel with it
class _Table(HTMLParser):
    """The cells of the HTML body's table, row by row (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_table(msg: EmailMessage) -> list[list[str]]:
    parser = _Table()
    parser.feed(msg.get_body(("html",)).get_content())
    return parser.rows


def attachment(msg: EmailMessage) -> tuple[str, bytes]:
    (part,) = list(msg.iter_attachments())
    return part.get_filename(), part.get_payload(decode=True)


def every_part_text(msg: EmailMessage) -> str:
    """Headers and every part, decoded (the attachment too): what a reader could see."""
    texts = [f"{k}: {v}" for k, v in msg.items()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        texts += [f"{k}: {v}" for k, v in part.items()]
        texts.append(part.get_payload(decode=True).decode("utf-8-sig"))
    return "\n".join(texts)


def test_digest_carries_its_rows_and_no_server_path(tmp_path, policy, ledger):
    root = tmp_path / "output"
    folder = root / "sla" / D.isoformat()
    write_csv(rows(("T1", "breached", "90"), ("T2", "at_risk", "0")), folder / "digest_D1.csv")
    transport = FakeTransport()
    send_digests(folder, DEPARTMENTS, D, policy, ledger, transport)
    (msg,) = transport.sent
    seen = every_part_text(msg)
    assert "sla/" not in seen and "sla_status" not in seen
    assert str(root) not in seen and str(tmp_path) not in seen
    assert "T1" in msg.get_body(("plain",)).get_content()
    name, _ = attachment(msg)
    assert name == "sla-digest-2026-11-20-D1.csv"
    assert name in msg.get_body(("plain",)).get_content()  # the body says what is attached


def test_the_attached_csv_holds_exactly_the_bodys_rows(policy):
    msg = digest_message(rows(("T1", "breached", "90"), ("T2", "at_risk", "0"),
                              ("T3", "breached", "5")),
                         DEPARTMENTS.iloc[0].to_dict(), D, policy, "revisit@example.com")
    name, payload = attachment(msg)
    assert name == "sla-digest-2026-11-20-D1.csv"
    part = next(msg.iter_attachments())
    assert part.get_content_type() == "text/csv"
    # UTF-8 with a BOM (Excel then reads Chinese correctly), CRLF line ends.
    assert payload.startswith(b"\xef\xbb\xbf")
    text = payload.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    table = list(csv.reader(io.StringIO(text)))
    body = html_table(msg)
    assert table == body  # header row in the locale, then the same cells, in the same order
    assert table[0] == ["工单", "客户", "电话", "处理人", "优先级", "考核项", "时限", "状态",
                        "超时（分钟）"]
    assert [r[0] for r in table[1:]] == ["T1", "T2", "T3"]
    assert table[1] == ["T1", HOSTILE, "138****5678", "A1", "紧急", "首次响应",
                        "2026-11-19 11:00", "已超时", "90"]
    assert table[2][-1] == ""  # not overdue: empty, as in the body
    # The plain-text body has the same rows, one line each, in the same order.
    lines = [line for line in msg.get_body(("plain",)).get_content().splitlines()
             if line.startswith("- ")]
    assert lines == ["- " + " | ".join(r[:-1] + ([f"{r[-1]} min"] if r[-1] else []))
                     for r in table[1:]]


def test_phones_are_masked_in_the_body_and_the_attachment(policy):
    leaked = rows(("T1", "breached", "90"), ("T2", "at_risk", "0"))
    leaked["phone_masked"] = ["13812345678", "+86 139-8765-4321"]  # not masked upstream
    msg = digest_message(leaked, DEPARTMENTS.iloc[0].to_dict(), D, policy,
                         "revisit@example.com")
    seen = every_part_text(msg)
    for raw in ("13812345678", "12345678", "139-8765-4321", "98765", "87654321"):
        assert raw not in seen, raw
    _, payload = attachment(msg)
    table = list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert [r[2] for r in table[1:]] == ["138****5678", "139****4321"]
    assert [r[2] for r in html_table(msg)[1:]] == ["138****5678", "139****4321"]
    assert "138****5678" in msg.get_body(("plain",)).get_content()


def test_a_formula_in_crm_text_is_neutralised_in_body_and_attachment_alike(policy):
    hostile = rows(("T1", "breached", "90"))
    hostile["customer_name"] = ['=HYPERLINK("http://evil.example","点我")']
    msg = digest_message(hostile, DEPARTMENTS.iloc[0].to_dict(), D, policy,
                         "revisit@example.com")
    _, payload = attachment(msg)
    table = list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert table[1][1] == '\'=HYPERLINK("http://evil.example","点我")'
    assert html_table(msg)[1][1] == table[1][1]


def test_english_digest_attachment_has_english_headers(policy):
    msg = digest_message(rows(("T1", "breached", "90")), DEPARTMENTS.iloc[0].to_dict(), D,
                         policy, "revisit@example.com", locale="en")
    _, payload = attachment(msg)
    header = next(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert header == ["Ticket", "Customer", "Phone", "Handler", "Priority", "Target",
                      "Deadline", "Status", "Overdue (min)"]
    assert "sla/" not in msg.get_body(("plain",)).get_content()


def test_digest_without_rows_has_no_attachment(policy):
    msg = digest_message(rows(("T1", "breached", "90")).iloc[0:0],
                         DEPARTMENTS.iloc[0].to_dict(), D, policy, "revisit@example.com")
    assert list(msg.iter_attachments()) == []
    assert "今日无新超时工单" in msg.get_body(("plain",)).get_content()


def test_attachment_name_is_ascii_whatever_the_department_id():
    assert digest_filename(D, "D1") == "sla-digest-2026-11-20-D1.csv"
    assert digest_filename(D, "华东/../x") == "sla-digest-2026-11-20-______x.csv"
