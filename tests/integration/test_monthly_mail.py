"""The monthly stages end to end against a real SMTP server (aiosmtpd, tooling.mailsink):
one message per department head with the PDF and the per-agent XLSX attached, never a second
one, a refused send retried, an uncertain one held back."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from revisit.io.extract import snapshot_dir
from tests.monthly_fixtures import hand_built_frames, write_snapshot
from tooling.mailsink import MailSink, free_port

MONTH = "2026-10"
CONTEXT = {"params": {"month": MONTH}}


def smtp_connection(port: int) -> str:
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                       "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5,
                                 "from_email": "revisit@example.com", "retry_limit": 0}})


@pytest.fixture
def sink(tmp_path):
    with MailSink(tmp_path / "maildir") as server:
        yield server


@pytest.fixture
def env(tmp_path, monkeypatch, sink):
    """An output root holding the hand-built snapshot of M, SMTP pointed at the sink."""
    root = tmp_path / "out"
    frames = hand_built_frames()
    frames["departments"].loc[:, "head_email"] = ["head.d1@example.com", "head.d2@example.com"]
    write_snapshot(snapshot_dir(root, MONTH), frames)
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(root))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(sink.port))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    return root


def run_month(departments=None, context=CONTEXT) -> dict:
    """kpis -> render + send per department, and data + render + send of the company report
    per period, as the DAG's tasks call them."""
    from revisit.bridge import tasks

    result = tasks.monthly_kpis(context)
    sent = {}
    for department_id in departments or result["departments"]:
        tasks.render(context, department_id)
        sent[department_id] = tasks.send(context, department_id)
    company = {}
    for period in tasks.company_periods(context):
        tasks.company_data(context, period)
        tasks.company_render(context, period)
        company[period] = tasks.company_send(context, period)
    return {"kpis": result, "sent": sent, "company": company}


def heads_messages(sink) -> list:
    return [m for m in sink.messages() if m["X-Revisit-Report"]]


def leadership_messages(sink) -> list:
    return [m for m in sink.messages() if m["X-Revisit-Company-Report"]]


def ledger_states(root) -> dict[str, str]:
    from revisit.delivery.mail import DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import default_results_url

    engine = make_engine(default_results_url(root))
    try:
        return {r["department_id"]: r["state"]
                for r in DeliveryLedger(engine, "Asia/Shanghai").rows(MONTH)}
    finally:
        engine.dispose()


def test_one_message_per_head_with_the_pdf_and_never_twice(env, sink):
    from revisit.bridge import tasks

    first = run_month()
    assert first["kpis"]["departments"] == ["D1", "D2"]
    assert all(r["sent"] for r in first["sent"].values())
    messages = heads_messages(sink)
    assert sorted(m["To"] for m in messages) == ["head.d1@example.com", "head.d2@example.com"]
    for message in messages:
        department = "D1" if message["To"] == "head.d1@example.com" else "D2"
        assert message["X-Envelope-To"] == message["To"]
        assert "客户服务月度报告" in message["Subject"]  # policy locale zh_CN
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "回访及时率" in text and "回访及时率" in html
        attachments = list(message.iter_attachments())
        assert len(attachments) == 2  # the PDF, and beside it every agent as an XLSX
        attachment, sheet = attachments
        assert sheet.get_content_type() == ("application/vnd.openxmlformats-officedocument"
                                            ".spreadsheetml.sheet")
        assert sheet.get_filename() == f"revisit-agents-{MONTH}-{department}.xlsx"
        assert sheet.get_content() == (env / "reports" / MONTH
                                       / f"{department}_agents.xlsx").read_bytes()
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == f"revisit-report-{MONTH}-{department}.pdf"
        pdf = attachment.get_content()
        assert pdf == (env / "reports" / MONTH / f"{department}.pdf").read_bytes()
        reader = PdfReader(io.BytesIO(pdf))
        body = "".join(page.extract_text() for page in reader.pages)
        assert "2026年10月" in body
        # phones masked everywhere the report goes
        assert "13812345678" not in body and "13812345678" not in text + html
        if department == "D1":
            assert "138****5678" in body
    assert ledger_states(env) == {"D1": "sent", "D2": "sent"}

    # A retry or a rerun of the whole month sends nothing more.
    second = run_month()
    assert [r["sent"] for r in second["sent"].values()] == [False, False]
    assert [r["state"] for r in second["sent"].values()] == ["sent", "sent"]
    assert len(heads_messages(sink)) == 2

    summary = tasks.summary(CONTEXT)
    assert summary["counts"] == {"sent": 2}
    delivery = json.loads((env / "reports" / MONTH / "delivery.json").read_text("utf-8"))
    assert [d["state"] for d in delivery["deliveries"]] == ["sent", "sent"]
    kpis_csv = (env / "reports" / MONTH / "kpis.csv").read_text("utf-8")
    assert kpis_csv.startswith("month,department_id,metric,value\n")
    assert f"{MONTH},ALL,visits_due,7\n" in kpis_csv


def test_a_refused_send_is_retried_then_delivered_once(env, sink, monkeypatch):
    from revisit.bridge import tasks
    from revisit.delivery.mail import DeliveryRefused

    tasks.monthly_kpis(CONTEXT)
    tasks.render(CONTEXT, "D1")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))  # nobody
    with pytest.raises(DeliveryRefused):  # retryable: Airflow's next try sends it
        tasks.send(CONTEXT, "D1")
    assert ledger_states(env) == {"D1": "failed"}
    assert sink.messages() == []

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(sink.port))
    result = tasks.send(CONTEXT, "D1")
    assert result["sent"] and result["attempts"] == 2
    assert ledger_states(env) == {"D1": "sent"}
    assert len(sink.messages()) == 1


def test_an_uncertain_send_is_never_repeated_and_is_reported(env, sink):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks
    from revisit.delivery.mail import DeliveryUncertain

    class BrokenOff:
        sender = "revisit@example.com"

        def send(self, message):
            raise DeliveryUncertain("connection lost after DATA", retryable=False)

    tasks.monthly_kpis(CONTEXT)
    for department_id in ("D1", "D2"):
        tasks.render(CONTEXT, department_id)
    with pytest.raises(AirflowFailException):
        tasks.send(CONTEXT, "D1", transport=BrokenOff())
    assert tasks.send(CONTEXT, "D2")["sent"]  # the other head still gets theirs
    assert ledger_states(env) == {"D1": "unknown", "D2": "sent"}
    with pytest.raises(AirflowFailException, match="may have delivered"):
        tasks.send(CONTEXT, "D1")  # a rerun does not resend
    assert [m["To"] for m in sink.messages()] == ["head.d2@example.com"]
    with pytest.raises(AirflowFailException, match=r"D1 \(unknown\)"):
        tasks.summary(CONTEXT)


def test_an_attempt_that_died_mid_send_is_not_repeated(env, sink):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks
    from revisit.delivery.mail import DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import default_results_url, ensure_schema

    tasks.monthly_kpis(CONTEXT)
    tasks.render(CONTEXT, "D1")
    engine = make_engine(default_results_url(env))
    ensure_schema(engine)
    # What a killed worker leaves behind: claimed (pending), outcome never recorded.
    assert DeliveryLedger(engine, "Asia/Shanghai").claim(MONTH, "D1", "head.d1@example.com").send
    engine.dispose()
    with pytest.raises(AirflowFailException):
        tasks.send(CONTEXT, "D1")
    assert ledger_states(env) == {"D1": "unknown"}
    assert sink.messages() == []


def test_a_department_without_a_head_email_fails_alone(env, sink):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks

    folder = snapshot_dir(env, MONTH)
    frames = hand_built_frames()
    frames["departments"].loc[:, "head_email"] = ["not an address\nBcc: x@evil.example",
                                                  "head.d2@example.com"]
    frames["departments"].to_parquet(folder / "departments.parquet", index=False)
    tasks.monthly_kpis(CONTEXT)
    for department_id in ("D1", "D2"):
        tasks.render(CONTEXT, department_id)
    with pytest.raises(AirflowFailException, match="no valid head_email"):
        tasks.send(CONTEXT, "D1")
    assert tasks.send(CONTEXT, "D2")["sent"]
    assert ledger_states(env) == {"D1": "failed", "D2": "sent"}
    assert [m["To"] for m in sink.messages()] == ["head.d2@example.com"]


def test_send_email_param_off_renders_without_sending(env, sink):
    from revisit.bridge import tasks

    context = {"params": {"month": MONTH, "send_email": False}}
    tasks.monthly_kpis(context)
    tasks.render(context, "D1")
    assert tasks.send(context, "D1")["state"] == "not_sent"
    assert sink.messages() == []
    assert (env / "reports" / MONTH / "D1.pdf").exists()


# ================================================================= the leadership's company report
LEADERSHIP = "leadership@revisit.example.com"  # notify.leadership of include/config/policy.yaml


def company_states(root, period: str) -> dict[str, str]:
    from revisit.delivery.company import recipient_key
    from revisit.delivery.mail import COMPANY_REPORT, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import default_results_url

    engine = make_engine(default_results_url(root))
    try:
        rows = DeliveryLedger(engine, "Asia/Shanghai", kind=COMPANY_REPORT).rows(period)
    finally:
        engine.dispose()
    assert all(r["department_id"] == recipient_key(r["recipient"]) for r in rows)
    return {r["recipient"]: r["state"] for r in rows}


def test_the_company_report_reaches_leadership_once_and_a_rerun_sends_nothing(env, sink):
    from revisit.bridge import tasks

    first = run_month()
    assert first["company"] == {MONTH: {"period": MONTH, "sent": 1, "recipients": 1}}
    [message] = leadership_messages(sink)
    assert message["To"] == LEADERSHIP
    assert message["X-Revisit-Company-Report"].startswith(f"{MONTH}/L")
    assert "公司客户服务总结报告" in message["Subject"] and "2026年10月" in message["Subject"]
    assert "华东" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"revisit-company-report-{MONTH}.pdf"
    pdf = env / "reports" / MONTH / "company" / "company.pdf"
    assert attachment.get_content() == pdf.read_bytes()
    assert company_states(env, MONTH) == {LEADERSHIP: "sent"}

    second = run_month()  # a retry or a rerun of the whole month
    assert second["company"][MONTH]["sent"] == 0
    assert len(leadership_messages(sink)) == 1 and len(heads_messages(sink)) == 2

    tasks.summary(CONTEXT)  # everything delivered: no failure
    delivery = json.loads((env / "reports" / MONTH / "delivery.json").read_text("utf-8"))
    assert [(d["period"], d["recipient"], d["state"], d["pdf"]) for d in delivery["leadership"]] \
        == [(MONTH, LEADERSHIP, "sent", f"reports/{MONTH}/company/company.pdf")]


def test_after_a_quarter_s_last_month_leadership_also_gets_the_quarter_once(env, sink):
    from revisit.bridge import tasks

    month, quarter = "2026-09", "2026-Q3"
    write_snapshot(snapshot_dir(env, month))  # the hand-built CRM, as September's run sees it
    context = {"params": {"month": month}}
    assert tasks.company_periods(context) == [month, quarter]
    run_month(context=context)
    run_month(context=context)  # the rerun sends neither again
    messages = leadership_messages(sink)
    assert sorted(m["X-Revisit-Company-Report"].split("/")[0] for m in messages) == \
        [month, quarter]
    quarterly = next(m for m in messages if m["X-Revisit-Company-Report"].startswith(quarter))
    assert "2026年第3季度" in quarterly["Subject"]
    [attachment] = list(quarterly.iter_attachments())
    assert attachment.get_filename() == f"revisit-company-report-{quarter}.pdf"
    for name in ("kpis.csv", "agents.csv", "company/company.pdf"):
        assert (env / "reports" / quarter / name).exists(), name
    assert company_states(env, quarter) == {LEADERSHIP: "sent"}
    summary = tasks.summary(context)
    assert summary["counts"] == {"sent": 2}
    delivery = json.loads((env / "reports" / month / "delivery.json").read_text("utf-8"))
    assert [(d["period"], d["state"]) for d in delivery["leadership"]] == [
        (month, "sent"), (quarter, "sent")]


def test_send_email_off_sends_no_company_report_and_the_summary_says_so(env, sink):
    from revisit.bridge import tasks

    context = {"params": {"month": MONTH, "send_email": False}}
    result = run_month(context=context)
    assert result["company"][MONTH] == {"period": MONTH, "sent": 0, "state": "not_sent"}
    assert sink.messages() == []
    assert (env / "reports" / MONTH / "company" / "company.pdf").exists()
    tasks.summary(context)  # not sending: no failure
    delivery = json.loads((env / "reports" / MONTH / "delivery.json").read_text("utf-8"))
    assert [d["state"] for d in delivery["leadership"]] == ["not_attempted"]


def test_a_company_report_not_delivered_fails_the_summary_naming_it(env, sink):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks

    result = tasks.monthly_kpis(CONTEXT)
    for department_id in result["departments"]:
        tasks.render(CONTEXT, department_id)
        tasks.send(CONTEXT, department_id)
    with pytest.raises(AirflowFailException,
                       match=f"company report {MONTH} to {LEADERSHIP} \\(not_attempted\\)"):
        tasks.summary(CONTEXT)


def test_rows_quarantined_during_the_month_are_counted_per_department(env):
    import datetime as dt

    import pandas as pd

    from revisit.bridge import tasks
    from revisit.io.db import make_engine
    from revisit.io.results import default_results_url, ensure_schema, replace_partition

    engine = make_engine(default_results_url(env))
    ensure_schema(engine)
    issue = {"check_name": "not_null", "column_name": "phone", "reason": "missing"}
    for day, rows in ((dt.date(2026, 10, 12), [("customers", "C1"), ("tickets", "T3")]),
                      (dt.date(2026, 10, 13), [("customers", "C1")]),  # same row again
                      (dt.date(2026, 11, 2), [("tickets", "T1")])):  # not in October
        frame = pd.DataFrame([{"table_name": t, "row_key": k, **issue} for t, k in rows])
        replace_partition(engine, "quality_issues", day, frame)
    engine.dispose()
    tasks.monthly_kpis(CONTEXT)
    data = {d: json.loads((env / "report_data" / MONTH / f"{d}.json").read_text("utf-8"))
            for d in ("D1", "D2")}
    assert data["D1"]["quality"]["quarantined"] == 1
    assert data["D2"]["quality"]["quarantined"] == 1


class RefusingHandler:
    """An SMTP server that refuses every recipient with `code`."""

    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        return self.code


@pytest.mark.parametrize(("code", "retryable"), [("451 4.3.0 try again later", True),
                                                 ("550 5.1.1 no such user", False)])
def test_a_server_refusal_is_failed_and_retryable_only_when_temporary(env, monkeypatch, code,
                                                                      retryable):
    from aiosmtpd.controller import Controller
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks
    from revisit.delivery.mail import DeliveryRefused

    tasks.monthly_kpis(CONTEXT)
    tasks.render(CONTEXT, "D1")
    controller = Controller(RefusingHandler(code), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(controller.port))
        expected = DeliveryRefused if retryable else AirflowFailException
        with pytest.raises(expected):
            tasks.send(CONTEXT, "D1")
    finally:
        controller.stop()
    assert ledger_states(env) == {"D1": "failed"}  # nothing went out: a rerun may send it
