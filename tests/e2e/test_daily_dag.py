"""`airflow dags test revisit_daily` on the demo CRM: the outputs follow the contract column for
column, a rerun gives byte-identical files and no duplicate rows, nothing personal reaches the
task logs, and a failed quality gate stops the run before any list is written."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from revisit.config.policy import load_policy
from revisit.config.translations import load_translations
from tests.e2e.conftest import Sandbox, smtp_connection

D = "2026-11-20"  # a Friday; the next working day is Monday 2026-11-23
CALL_LIST_COLUMNS = [
    "call_date", "rank", "agent_id", "customer_id", "customer_name", "contact_name", "phone",
    "tier", "reasons", "window_end", "overdue_days", "ticket_id", "order_id", "suggested_window",
    "note",
]
SMS_COLUMNS = ["customer_id", "phone", "planned_call_date", "agent_id"]
SLA_COLUMNS = [
    "ticket_id", "customer_id", "department_id", "priority", "metric", "started_at", "deadline",
    "achieved_at", "status", "overdue_minutes", "due_today", "target", "elapsed_minutes",
    "paused_minutes", "policy_version",
]
REASON_CODES = {"welcome", "early_use", "stable_use", "long_term", "post_resolution", "periodic",
                "key_account", "new_product", "major_complaint", "product_upgrade"}


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "results.sqlite"}


@pytest.fixture(scope="module")
def demo(sandbox_factory, mail_sink) -> Sandbox:
    box = sandbox_factory("daily", customers=600, entry_errors=0.01)
    box.env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mail_sink.host, mail_sink.port)
    run = box.dags_test("revisit_daily", D)
    assert run.state == "success", run.log[-4000:]
    box.first_log = run.log  # type: ignore[attr-defined]
    return box


@pytest.fixture(scope="module")
def crm(demo: Sandbox) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(demo.crm) as conn:
        return {t: pd.read_sql(f"SELECT * FROM {t}", conn)
                for t in ("customers", "agents", "tickets")}


def test_every_agent_file_has_the_contract_columns_and_only_that_agents_rows(demo: Sandbox):
    folder = demo.output / "call_lists" / D
    agent_files = sorted(p for p in folder.glob("*.csv")
                         if p.stem not in ("sms_notice", "carried_over", "not_listed"))
    assert len(agent_files) >= 3
    for path in agent_files:
        rows = _csv(path)
        assert list(rows.columns) == CALL_LIST_COLUMNS, path.name
        assert (rows["agent_id"] == path.stem).all(), path.name
        assert (rows["call_date"] == D).all()
        assert rows["rank"].astype(int).tolist() == list(range(1, len(rows) + 1))
        assert rows["customer_id"].is_unique
        for reasons in rows["reasons"]:
            assert set(reasons.split(";")) <= REASON_CODES, reasons
        window_end = pd.to_datetime(rows["window_end"]).dt.date
        expected_overdue = [max((dt.date.fromisoformat(D) - w).days, 0) for w in window_end]
        assert rows["overdue_days"].astype(int).tolist() == expected_overdue
        assert path.with_suffix(".xlsx").exists()


def test_call_list_rows_carry_the_crm_customer_and_assignment_rules(demo: Sandbox, crm):
    lists = pd.concat([_csv(p) for p in (demo.output / "call_lists" / D).glob("A*.csv")])
    customers = crm["customers"].set_index("customer_id")
    agents = crm["agents"].set_index("agent_id")
    listed = customers.loc[lists["customer_id"]]
    assert (listed["name"].to_numpy() == lists["customer_name"].to_numpy()).all()
    assert (listed["phone"].astype(str).to_numpy() == lists["phone"].to_numpy()).all()
    assert (listed["do_not_call"].astype(int) == 0).all()
    # Every row goes to an active member of the customer's department; key tier to supervisors.
    assigned = agents.loc[lists["agent_id"]]
    assert (assigned["active"].astype(int) == 1).all()
    assert (assigned["department_id"].to_numpy() == listed["department_id"].to_numpy()).all()
    key = (lists["tier"] == "key").to_numpy()
    assert (assigned["role"].to_numpy()[key] == "supervisor").all()


def test_xlsx_is_formatted_and_holds_the_same_rows_as_the_csv(demo: Sandbox):
    folder = demo.output / "call_lists" / D
    path = max((p for p in folder.glob("A*.xlsx")), key=lambda p: len(_csv(p.with_suffix(".csv"))))
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    # The agent reads the policy locale's headers, in the CSV's order, then the three columns
    # they fill in (outcome, satisfaction, notes).
    headers = load_translations(load_policy().report.locale)["call_list"]["sheet"]["columns"]
    shown = [h.replace("\n", "") for h in rows[0]]  # a narrow header may wrap onto two lines
    assert shown[:len(CALL_LIST_COLUMNS)] == [headers[c] for c in CALL_LIST_COLUMNS]
    assert len(rows[0]) == len(CALL_LIST_COLUMNS) + 3
    csv = _csv(path.with_suffix(".csv"))
    assert len(rows) - 1 == len(csv)
    assert [r[3] for r in rows[1:]] == csv["customer_id"].tolist()
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref is not None


def test_sms_notice_and_sla_status_follow_the_contract(demo: Sandbox):
    sms = _csv(demo.output / "call_lists" / D / "sms_notice.csv")
    assert list(sms.columns) == SMS_COLUMNS
    assert len(sms) > 0
    assert (sms["planned_call_date"] == "2026-11-23").all()  # Monday, the next working day

    sla = _csv(demo.output / "sla" / D / "sla_status.csv")
    assert list(sla.columns) == SLA_COLUMNS
    assert set(sla["status"]) <= {"met", "breached", "at_risk", "pending", "unknown"}
    assert {"met", "breached"} <= set(sla["status"])
    assert set(sla["due_today"]) <= {"true", "false"}
    assert sla["deadline"].str.endswith("+08:00").all()
    overdue = sla["overdue_minutes"].astype(int)
    assert (overdue[sla["status"] != "breached"] == 0).all()
    assert (overdue[sla["status"] == "breached"] >= 0).all()
    assert not sla.duplicated(["ticket_id", "metric"]).any()


def test_results_database_holds_the_run_date_rows(demo: Sandbox):
    lists = pd.concat([_csv(p) for p in (demo.output / "call_lists" / D).glob("A*.csv")])
    sla = _csv(demo.output / "sla" / D / "sla_status.csv")
    with sqlite3.connect(demo.output / "results.sqlite") as conn:
        counts = dict(conn.execute(
            "SELECT 'call_list', COUNT(*) FROM call_list WHERE run_date = ? UNION ALL "
            "SELECT 'sla_status', COUNT(*) FROM sla_status WHERE run_date = ?", (D, D)))
    assert counts == {"call_list": len(lists), "sla_status": len(sla)}


def test_rows_with_entry_errors_are_quarantined_and_their_customers_not_called(demo: Sandbox):
    folder = demo.output / "quality" / D
    assert {"quarantine.csv", "summary.md", "summary.html"} <= {p.name for p in folder.iterdir()}
    quarantine = _csv(folder / "quarantine.csv")
    for table, keys in demo.entry_errors.items():
        assert set(keys) <= set(quarantine.loc[quarantine["table"] == table, "row_key"]), table
    lists = pd.concat([_csv(p) for p in (demo.output / "call_lists" / D).glob("A*.csv")])
    assert not set(demo.entry_errors["customers"]) & set(lists["customer_id"])
    with sqlite3.connect(demo.output / "results.sqlite") as conn:
        stored = conn.execute("SELECT COUNT(*) FROM quality_issues WHERE run_date = ?",
                              (D,)).fetchone()[0]
    assert stored == len(quarantine.drop_duplicates(["table", "row_key", "check", "column"]))


def test_task_logs_hold_no_customer_names_or_phones(demo: Sandbox, crm):
    log = demo.first_log  # type: ignore[attr-defined]
    sample = crm["customers"].sample(200, random_state=1)
    for value in [*sample["name"], *sample["phone"].astype(str), *sample["contact_name"]]:
        assert value not in log


def test_each_head_with_breaches_gets_one_digest_mail_with_masked_phones(demo: Sandbox, crm,
                                                                        mail_sink):
    folder = demo.output / "sla" / D
    departments = sorted(p.stem.removeprefix("digest_") for p in folder.glob("digest_*.csv"))
    assert departments
    with sqlite3.connect(demo.crm) as conn:
        heads = dict(conn.execute("SELECT department_id, head_email FROM departments"))
    received = [m for m in mail_sink.messages() if m["X-Revisit-Digest"]]
    assert sorted(m["To"] for m in received) == sorted(heads[d] for d in departments)
    phones = set(crm["customers"]["phone"].astype(str))
    for message in received:
        department = message["X-Revisit-Digest"].split("/")[1]
        body = message.get_body(("plain",)).get_content()
        rows = _csv(folder / f"digest_{department}.csv")
        assert all(ticket in body for ticket in rows["ticket_id"])
        assert not any(phone in body for phone in phones)
        assert "****" in body


def test_each_agent_with_a_list_gets_one_mail_with_exactly_their_own_xlsx(demo: Sandbox,
                                                                         mail_sink):
    folder = demo.output / "call_lists" / D
    listed = sorted(p.stem for p in folder.glob("*.xlsx"))
    assert listed
    with sqlite3.connect(demo.crm) as conn:
        emails = dict(conn.execute("SELECT agent_id, email FROM agents"))
    received = [m for m in mail_sink.messages() if m["X-Revisit-Call-List"]]
    by_agent = {m["X-Revisit-Call-List"].split("/")[1]: m for m in received}
    assert len(received) == len(by_agent)  # one each, nobody twice
    # Everyone listed, plus handlers of tickets due today / at risk without a list (their
    # message has no attachment).
    from revisit.delivery.agent_mail import read_handler_tickets

    handlers = set(read_handler_tickets(demo.output / "sla" / D))
    assert set(listed) <= set(by_agent) <= set(listed) | handlers
    for agent_id, message in by_agent.items():
        assert message["To"] == emails[agent_id]
        if agent_id not in listed:
            assert list(message.iter_attachments()) == []
            continue
        (attachment,) = message.iter_attachments()
        assert attachment.get_payload(decode=True) == (folder / f"{agent_id}.xlsx").read_bytes()


def test_rerun_of_the_same_date_gives_identical_files_and_no_duplicate_rows(demo: Sandbox,
                                                                           mail_sink):
    mails_before = len(mail_sink.messages())
    before = _digest(demo.output)
    with sqlite3.connect(demo.output / "results.sqlite") as conn:
        rows_before = conn.execute("SELECT COUNT(*) FROM sla_status").fetchone()[0]
    run = demo.dags_test("revisit_daily", D)
    assert run.state == "success", run.log[-4000:]
    assert _digest(demo.output) == before
    with sqlite3.connect(demo.output / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sla_status").fetchone()[0] == rows_before
    assert len(mail_sink.messages()) == mails_before  # no digest twice


def test_failed_quality_gate_stops_the_run_before_any_list(sandbox_factory):
    box = sandbox_factory("daily_bad", customers=300)
    with sqlite3.connect(box.crm) as conn:  # a fifth of the customers get an unknown tier
        conn.execute("UPDATE customers SET tier = 'gold' WHERE CAST(substr(customer_id, 2) "
                     "AS INTEGER) % 5 = 0")
    run = box.dags_test("revisit_daily", D)
    assert run.state == "failed"
    assert not (box.output / "call_lists" / D).exists()
    assert not (box.output / "sla" / D).exists()
    summary = (box.output / "quality" / D / "summary.md").read_text(encoding="utf-8")
    assert "customers" in summary and "gold" in summary
