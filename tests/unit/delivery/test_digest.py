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
    """The cells of the HTML body's tables (one per section), row by row (header rows too);
    `headings` the sections' headings."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.header: list[bool] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._heading = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.header.append(False)
        elif tag in ("td", "th"):
            self._cell = []
            self.header[-1] = tag == "th"
        elif tag == "h3":
            self._heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "h3":
            self._heading = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._heading:
            self.headings[-1] += data.strip()


def html_parsed(msg: EmailMessage) -> _Table:
    parser = _Table()
    parser.feed(msg.get_body(("html",)).get_content())
    return parser


def html_table(msg: EmailMessage) -> list[list[str]]:
    """The first header row, then every section's data rows in the body's order."""
    parser = html_parsed(msg)
    headers = [r for r, h in zip(parser.rows, parser.header, strict=True) if h]
    return headers[:1] + [r for r, h in zip(parser.rows, parser.header, strict=True) if not h]


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
    # The CSV's first column names the section; then the body's cells, in the body's order.
    assert [r[1:] for r in table] == body
    assert table[0] == ["分类", "工单", "客户", "电话", "处理人", "优先级", "考核项", "时限",
                        "状态", "超时（分钟）"]
    assert [r[1] for r in table[1:]] == ["T1", "T3", "T2"]  # new breaches, then at risk
    assert [r[0] for r in table[1:]] == ["新超时", "新超时", "临近超时"]
    assert table[1] == ["新超时", "T1", HOSTILE, "138****5678", "A1", "紧急", "首次响应",
                        "2026-11-19 11:00", "已超时", "90"]
    assert table[3][-1] == ""  # not overdue: empty, as in the body
    assert html_parsed(msg).headings == ["新超时 (2)", "临近超时 (1)"]
    # The plain-text body has the same rows, one line each, in the same order.
    lines = [line for line in msg.get_body(("plain",)).get_content().splitlines()
             if line.startswith("- ")]
    assert lines == ["- " + " | ".join(r[1:-1] + ([f"{r[-1]} min"] if r[-1] else []))
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
    assert [r[3] for r in table[1:]] == ["138****5678", "139****4321"]
    assert [r[2] for r in html_table(msg)[1:]] == ["138****5678", "139****4321"]
    assert "138****5678" in msg.get_body(("plain",)).get_content()


def test_a_formula_in_crm_text_is_neutralised_in_body_and_attachment_alike(policy):
    hostile = rows(("T1", "breached", "90"))
    hostile["customer_name"] = ['=HYPERLINK("http://evil.example","点我")']
    msg = digest_message(hostile, DEPARTMENTS.iloc[0].to_dict(), D, policy,
                         "revisit@example.com")
    _, payload = attachment(msg)
    table = list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert table[1][2] == '\'=HYPERLINK("http://evil.example","点我")'
    assert html_table(msg)[1][1] == table[1][2]


def test_english_digest_attachment_has_english_headers(policy):
    msg = digest_message(rows(("T1", "breached", "90")), DEPARTMENTS.iloc[0].to_dict(), D,
                         policy, "revisit@example.com", locale="en")
    _, payload = attachment(msg)
    header = next(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert header == ["Section", "Ticket", "Customer", "Phone", "Handler", "Priority", "Target",
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


# ================================================================= due today, escalation
CUT = pd.Timestamp("2026-11-20 00:00")  # D 00:00
PREV = pd.Timestamp("2026-11-19 00:00")


def status_frame(*items: tuple[str, str, str, str, str]) -> pd.DataFrame:
    """(ticket_id, department_id, priority, status, deadline) -> sla_status rows (the contract's
    columns before due_today exists); customer C-<ticket>, metric first_response."""
    return pd.DataFrame({
        "ticket_id": [i[0] for i in items], "customer_id": [f"C-{i[0]}" for i in items],
        "department_id": [i[1] for i in items], "priority": [i[2] for i in items],
        "metric": ["first_response"] * len(items),
        "started_at": pd.to_datetime(["2026-11-18 09:00"] * len(items)).tz_localize(
            "Asia/Shanghai"),
        "deadline": pd.to_datetime([i[4] for i in items]).tz_localize("Asia/Shanghai"),
        "achieved_at": pd.Series([pd.NaT] * len(items)).dt.tz_localize("Asia/Shanghai"),
        "status": [i[3] for i in items],
        "overdue_minutes": [60 if i[3] == "breached" else 0 for i in items],
    })


def crm_for(status: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = pd.DataFrame({"ticket_id": status["ticket_id"],
                            "handler_agent_id": ["A1"] * len(status)})
    customers = pd.DataFrame({"customer_id": status["customer_id"],
                              "name": [f"客户{t}" for t in status["ticket_id"]],
                              "phone": [f"1381234{i:04d}" for i in range(len(status))]})
    return tickets, customers


def digests_of(status: pd.DataFrame) -> dict[str, pd.DataFrame]:
    from revisit.rules.sla import breach_digest

    tickets, customers = crm_for(status)
    return breach_digest(status, tickets, customers, CUT, PREV)


MIXED = status_frame(
    ("B1", "D1", "general", "breached", "2026-11-19 15:00"),      # new breach
    ("OLD", "D1", "urgent", "breached", "2026-11-10 15:00"),      # old breach: not listed
    ("DUE-G", "D1", "general", "pending", "2026-11-20 10:00"),    # due today, earliest
    ("DUE-U", "D1", "urgent", "at_risk", "2026-11-20 16:00"),     # due today (at risk)
    ("DUE-I", "D1", "important", "pending", "2026-11-20 23:59"),  # due today, last minute
    ("LATER", "D1", "urgent", "at_risk", "2026-11-21 00:00"),     # at risk, due tomorrow
    ("CALM", "D1", "urgent", "pending", "2026-11-23 10:00"),      # pending, not due: no
    ("UNK", "D1", "urgent", "unknown", "2026-11-20 09:00"),       # unknown: never listed
    ("MET", "D1", "urgent", "met", "2026-11-20 09:00"),           # met: never listed
)


def test_due_today_section_is_ordered_by_deadline_and_never_lists_unknown_rows(policy):
    d1 = digests_of(MIXED)["D1"]
    assert list(zip(d1["section"], d1["ticket_id"], strict=True)) == [
        ("breached", "B1"),
        ("due_today", "DUE-G"), ("due_today", "DUE-U"), ("due_today", "DUE-I"),  # by deadline
        ("at_risk", "LATER")]
    msg = digest_message(d1, DEPARTMENTS.iloc[0].to_dict(), D, policy, "revisit@example.com")
    assert "新超时 1 项，临近超时 1 项，今日到期 3 项" in msg["Subject"]
    parsed = html_parsed(msg)
    assert parsed.headings == ["新超时 (1)", "今日到期 (3)", "临近超时 (1)"]
    text = msg.get_body(("plain",)).get_content()
    assert text.index("今日到期 (3)") < text.index("- DUE-G") < text.index("- DUE-U") \
        < text.index("- DUE-I") < text.index("临近超时 (1)") < text.index("- LATER")
    for absent in ("UNK", "MET", "CALM", "OLD"):
        assert absent not in text and absent not in msg.get_body(("html",)).get_content()
    # The attachment carries the section's rows too, its first column naming the section.
    _, payload = attachment(msg)
    table = list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert [(r[0], r[1]) for r in table[1:]] == [
        ("新超时", "B1"), ("今日到期", "DUE-G"), ("今日到期", "DUE-U"), ("今日到期", "DUE-I"),
        ("临近超时", "LATER")]


def test_the_status_frames_due_today_column_is_read_when_present():
    status = MIXED.assign(due_today=False)
    status.loc[status["ticket_id"] == "CALM", "due_today"] = True  # the engine says so
    status.loc[status["ticket_id"] == "UNK", "due_today"] = True   # never for unknown
    d1 = digests_of(status)["D1"]
    assert list(d1.loc[d1["section"] == "due_today", "ticket_id"]) == ["CALM"]
    assert "UNK" not in set(d1["ticket_id"])


def test_a_digest_goes_out_with_only_rows_due_today_phones_masked(tmp_path, policy, ledger):
    status = status_frame(("DUE-2", "D2", "general", "pending", "2026-11-20 17:00"),
                          ("DUE-1", "D2", "important", "pending", "2026-11-20 11:00"),
                          ("CALM", "D1", "general", "pending", "2026-11-24 11:00"))
    digests = digests_of(status)
    assert sorted(digests) == ["D2"]  # D1 has nothing due today: no digest
    for department, frame in digests.items():
        write_csv(frame, tmp_path / f"digest_{department}.csv")
    transport = FakeTransport()
    outcome = send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, transport)
    assert outcome == {"states": {"D2": "sent"}, "failed": {}}
    (msg,) = transport.sent
    assert msg["To"] == "li@example.com"
    assert "新超时 0 项，临近超时 0 项，今日到期 2 项" in msg["Subject"]
    seen = every_part_text(msg)
    assert "13812340000" not in seen and "13812340001" not in seen
    assert [r[2] for r in html_table(msg)[1:]] == ["138****0001", "138****0000"]
    assert [r[0] for r in html_table(msg)[1:]] == ["DUE-1", "DUE-2"]
    assert send_digests(tmp_path, DEPARTMENTS, D, policy, ledger, transport)["states"] == {
        "D2": "sent"}
    assert len(transport.sent) == 1


STAFF = pd.DataFrame({
    "agent_id": ["S1", "S2", "S3", "S4", "A1", "S9"],
    "name": ["主管一", "主管二", "停用主管", "无邮箱主管", "坐席", "二部主管"],
    "email": ["s1@example.com", "s2@example.com", "s3@example.com", "nope", "a1@example.com",
              "s9@example.com"],
    "department_id": ["D1", "D1", "D1", "D1", "D1", "D2"],
    "role": ["supervisor", "supervisor", "supervisor", "supervisor", "agent", "supervisor"],
    "active": [1, 1, 0, 1, 1, 1],
})


@pytest.fixture
def escalation_ledger(tmp_path: Path):
    from revisit.delivery.mail import ESCALATION

    engine = make_engine(f"sqlite:///{tmp_path / 'escalation.sqlite'}")
    ensure_schema(engine)
    yield DeliveryLedger(engine, "Asia/Shanghai", kind=ESCALATION)
    engine.dispose()


def test_escalated_rows_are_the_urgent_at_risk_and_breached_ones_only():
    from revisit.delivery.digest import escalated_rows

    status = status_frame(
        ("U-B", "D1", "urgent", "breached", "2026-11-19 15:00"),
        ("U-DUE", "D1", "urgent", "pending", "2026-11-20 10:00"),   # due today, pending: no
        ("U-RISK", "D1", "urgent", "at_risk", "2026-11-20 16:00"),
        ("U-LATER", "D1", "urgent", "at_risk", "2026-11-22 16:00"),
        ("I-B", "D1", "important", "breached", "2026-11-19 12:00"),  # not urgent: no
        ("G-RISK", "D1", "general", "at_risk", "2026-11-20 12:00"),  # not urgent: no
    )
    d1 = digests_of(status)["D1"]
    assert set(d1["ticket_id"]) == {"U-B", "U-DUE", "U-RISK", "U-LATER", "I-B", "G-RISK"}
    escalated = escalated_rows(d1, ("urgent",))
    assert list(zip(escalated["section"], escalated["ticket_id"], strict=True)) == [
        ("breached", "U-B"), ("due_today", "U-RISK"), ("at_risk", "U-LATER")]
    assert set(escalated_rows(d1, ("urgent", "important"))["ticket_id"]) == {
        "U-B", "U-RISK", "U-LATER", "I-B"}
    assert escalated_rows(d1, ()).empty


def test_active_supervisors_get_the_escalation_once(tmp_path, policy, escalation_ledger):
    from revisit.delivery.digest import send_escalations

    status = status_frame(("U-B", "D1", "urgent", "breached", "2026-11-19 15:00"),
                          ("G-RISK", "D1", "general", "at_risk", "2026-11-20 12:00"),
                          ("G-B", "D2", "general", "breached", "2026-11-19 12:00"))
    for department, frame in digests_of(status).items():
        write_csv(frame, tmp_path / f"digest_{department}.csv")
    transport = FakeTransport()
    outcome = send_escalations(tmp_path, DEPARTMENTS, STAFF, D, policy, escalation_ledger,
                               transport)
    # S3 inactive, A1 not a supervisor, S9's department has nothing urgent: nothing to them.
    assert outcome == {"states": {"S1": "sent", "S2": "sent"}, "failed": {},
                       "no_address": ["S4"]}
    assert sorted(m["To"] for m in transport.sent) == ["s1@example.com", "s2@example.com"]
    msg = transport.sent[0]
    assert msg["X-Revisit-Escalation"] == "2026-11-20/S1"
    assert msg["X-Revisit-Digest"] is None
    assert msg["Subject"].startswith("【升级】售后一部")
    assert "已超时 1 项，临近超时 0 项" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert "主管一，您好" in text and "紧急工单" in text
    assert "- U-B" in text and "G-RISK" not in text
    assert "13812340000" not in every_part_text(msg) and "138****0000" in text
    name, _ = attachment(msg)
    assert name == "sla-escalation-2026-11-20-D1.csv"
    assert {r["department_id"]: r["state"] for r in escalation_ledger.rows(D.isoformat())} == {
        "S1": "sent", "S2": "sent"}
    again = send_escalations(tmp_path, DEPARTMENTS, STAFF, D, policy, escalation_ledger,
                             transport)
    assert again["states"] == {"S1": "sent", "S2": "sent"} and len(transport.sent) == 2


def test_escalation_switched_off_sends_none(tmp_path, policy, escalation_ledger):
    from revisit.delivery.digest import send_escalations

    off = policy.model_copy(update={"sla": policy.sla.model_copy(
        update={"escalate_priorities": ()})})
    status = status_frame(("U-B", "D1", "urgent", "breached", "2026-11-19 15:00"))
    for department, frame in digests_of(status).items():
        write_csv(frame, tmp_path / f"digest_{department}.csv")
    transport = FakeTransport()
    outcome = send_escalations(tmp_path, DEPARTMENTS, STAFF, D, off, escalation_ledger,
                               transport)
    assert outcome == {"states": {}, "failed": {}, "no_address": []}
    assert transport.sent == [] and escalation_ledger.rows(D.isoformat()) == []


def test_escalate_priorities_default_and_validation(policy):
    from pydantic import ValidationError

    from revisit.config.policy import SlaPolicy

    assert policy.sla.escalate_priorities == ("urgent",)
    base = policy.sla.model_dump()
    assert SlaPolicy(**{**base, "escalate_priorities": []}).escalate_priorities == ()
    with pytest.raises(ValidationError, match="unknown priorities 'critical'"):
        SlaPolicy(**{**base, "escalate_priorities": ["urgent", "critical"]})
