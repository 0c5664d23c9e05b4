"""The daily call lists e-mailed to the agents against a real SMTP server (aiosmtpd,
tooling.mailsink), on a small demo CRM: one message per agent with a non-empty list, with
only their own XLSX, never a second one, an agent without an address reported while the
others get theirs, and nothing at all with params.send_email off. (The handlers' due-today
tickets in the same message: tests/integration/test_digest_smtp.py.)"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.mail_env import CONTEXT, D, run_daily, smtp_connection
from tooling.mailsink import free_port

OWN_FILES = ("sms_notice", "carried_over", "not_listed")


@pytest.fixture(scope="module")
def demo_crm(tmp_path_factory) -> Path:
    from tooling.demo_crm import build_demo_crm

    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    build_demo_crm(f"sqlite:///{path}", customers=200, as_of=D)
    return path


def listed_agents(parts) -> list[str]:
    """Agents with at least one row in call_lists/D/."""
    return sorted(p.stem for p in parts.call_lists.glob("*.csv")
                  if p.stem not in OWN_FILES and len(pd.read_csv(p)))


def agent_emails(crm: Path) -> dict[str, str]:
    with sqlite3.connect(crm) as conn:
        return dict(conn.execute("SELECT agent_id, email FROM agents").fetchall())


def ledger_states(root: Path) -> dict[str, str]:
    from revisit.delivery.mail import CALL_LIST, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import default_results_url, ensure_schema

    engine = make_engine(default_results_url(root))
    try:
        ensure_schema(engine)
        return {r["department_id"]: r["state"]
                for r in DeliveryLedger(engine, "Asia/Shanghai", CALL_LIST).rows(D.isoformat())}
    finally:
        engine.dispose()


def send(parts, policy, root: Path) -> dict:
    from revisit.bridge.smtp import SmtpHookTransport
    from revisit.io.results import default_results_url
    from revisit.stages.daily import send_call_lists

    return send_call_lists(parts, policy, default_results_url(root), SmtpHookTransport())


def test_each_listed_agent_gets_one_message_with_only_their_own_list_and_never_twice(
        crm, env, sink, policy, calendar):
    parts = run_daily(crm, env, policy, calendar)
    listed = listed_agents(parts)
    assert len(listed) >= 3
    emails = agent_emails(crm)
    result = send(parts, policy, env)
    assert result == {"agents": len(listed), "states": {"sent": len(listed)},
                      "no_address": []}

    messages = sink.messages()
    assert sorted(m["To"] for m in messages) == sorted(emails[a] for a in listed)
    for message in messages:
        agent_id = message["X-Revisit-Call-List"].removeprefix(f"{D.isoformat()}/")
        assert message["To"] == emails[agent_id] == message["X-Envelope-To"]
        assert D.isoformat() in message["Subject"] and "回访清单" in message["Subject"]
        rows = pd.read_csv(parts.call_lists / f"{agent_id}.csv", dtype=str,
                           keep_default_na=False)
        overdue = int((rows["overdue_days"].astype(int) > 0).sum())
        assert f"客户 {len(rows)} 位，其中逾期 {overdue} 位" in message["Subject"]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for value in (*rows["phone"], *rows["customer_name"], *rows["contact_name"]):
            assert value not in text and value not in html
        attachments = list(message.iter_attachments())
        assert len(attachments) == 1  # only their own file
        assert attachments[0].get_filename() == f"revisit-call-list-{D}-{agent_id}.xlsx"
        assert attachments[0].get_content() == (parts.call_lists / f"{agent_id}.xlsx").read_bytes()
    assert ledger_states(env) == dict.fromkeys(listed, "sent")

    # A retry of the task, or a rerun of the whole day, sends nothing more.
    again = send(parts, policy, env)
    assert again["states"] == {"sent": len(listed)}
    run_daily(crm, env, policy, calendar)
    from revisit.bridge import tasks

    assert tasks.agent_mail(CONTEXT)["states"] == {"sent": len(listed)}
    assert len(sink.messages()) == len(listed)


def test_an_agent_without_an_address_is_reported_and_the_others_get_theirs(
        crm, env, sink, policy, calendar, caplog):
    listed = listed_agents(run_daily(crm, env, policy, calendar))
    no_address, other = listed[0], listed[1:]
    with sqlite3.connect(crm) as conn:
        name = conn.execute("SELECT name FROM agents WHERE agent_id = ?",
                            (no_address,)).fetchone()[0]
        conn.execute("UPDATE agents SET email = 'not an address' WHERE agent_id = ?",
                     (no_address,))
    parts = run_daily(crm, env, policy, calendar)
    emails = agent_emails(crm)
    with caplog.at_level(logging.WARNING, logger="revisit.stages.daily"):
        result = send(parts, policy, env)  # does not raise: nothing a retry could fix
    assert result["no_address"] == [no_address]
    assert result["states"] == {"sent": len(other)} and result["agents"] == len(other)
    assert sorted(m["To"] for m in sink.messages()) == sorted(emails[a] for a in other)
    assert ledger_states(env) == dict.fromkeys(other, "sent")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert no_address in logged and name not in logged and "not an address" not in logged
    # The folder of the agents' files gets no report file.
    assert not (parts.call_lists / "undelivered.csv").exists()


def test_the_data_team_is_told_once_whose_list_could_not_be_mailed(crm, env, sink, policy,
                                                                  calendar):
    from revisit.bridge import tasks

    listed = listed_agents(run_daily(crm, env, policy, calendar))
    no_address = listed[0]
    with sqlite3.connect(crm) as conn:
        name = conn.execute("SELECT name FROM agents WHERE agent_id = ?",
                            (no_address,)).fetchone()[0]
        conn.execute("UPDATE agents SET email = 'not an address' WHERE agent_id = ?",
                     (no_address,))
    run_daily(crm, env, policy, calendar)
    assert tasks.agent_mail(CONTEXT)["no_address"] == [no_address]
    tasks.agent_mail(CONTEXT)  # a retry or rerun of the task tells nobody again
    alerts = [m for m in sink.messages() if m["X-Revisit-Alert"]]
    assert [(m["X-Revisit-Alert"], m["To"]) for m in alerts] == [
        ("lists_not_mailed", ", ".join(policy.notify.data_team))]
    body = alerts[0].get_body(("plain",)).get_content()
    assert no_address in body and D.isoformat() in body
    assert name not in body and "not an address" not in body


def test_a_refused_send_fails_the_task_for_a_retry_that_delivers_it_once(
        crm, env, sink, policy, calendar, monkeypatch):
    from revisit.bridge import tasks
    from revisit.stages.daily import CallListsNotSent

    listed = listed_agents(run_daily(crm, env, policy, calendar))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))  # nobody
    with pytest.raises(CallListsNotSent) as refused:  # retryable: Airflow's next try sends
        tasks.agent_mail(CONTEXT)
    assert refused.value.retryable
    assert ledger_states(env) == dict.fromkeys(listed, "failed")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(sink.port))
    assert tasks.agent_mail(CONTEXT)["states"] == {"sent": len(listed)}
    assert len(sink.messages()) == len(listed)


def test_send_email_param_off_sends_nothing_to_anyone(crm, env, sink, policy, calendar):
    from revisit.bridge import tasks

    parts = run_daily(crm, env, policy, calendar)
    assert listed_agents(parts)
    context = {"params": {"call_date": D.isoformat(), "send_email": False}}
    assert tasks.agent_mail(context) == {"sent": False}
    assert sink.messages() == []
    assert ledger_states(env) == {}
