"""The data team's alerts through Airflow itself, received by a real local SMTP server.

1. A daily run the quality gate stops (`python -m tooling.dags_test revisit_daily D`, a demo
   CRM with a tenth of its tickets given an unknown priority): the quality_gate task fails,
   Airflow calls its on_failure_callback (revisit.bridge.alerts.TaskFailed), and the data team
   (policy notify.data_team) receives one e-mail naming DAG, task, run and logical date, with
   the gate's numbers, and nothing personal from the CRM.
2. The Deadline Alert over real metadata rows: revisit_daily runs of three types are created
   through the scheduler's own create_dagrun (which writes their deadlines), the scheduler's
   deadline check (Deadline.handle_miss) queues each missed deadline's callback, and each
   callback trigger is inflated and run as the triggerer does it. Only the scheduled run's
   deadline e-mails the data team, naming that run; a second check finds nothing to handle.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.conftest import AIRFLOW, ROOT, airflow_env, make_sandbox, smtp_connection
from tooling.mailsink import MailSink

D = "2026-11-20"  # a Friday
DATA_TEAM = "data-team@revisit.example.com"  # include/config/policy.yaml notify.data_team
TIMEOUT = 600


def _text(message) -> str:
    """Subject and both bodies, decoded (what a reader of the e-mail sees)."""
    return "\n".join([str(message["Subject"]),
                      message.get_body(("plain",)).get_content(),
                      message.get_body(("html",)).get_content()])


# ----------------------------------------------------------------- 1. a quality stop
@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A revisit_daily run the quality gate stops, with smtp_default at a local MailSink."""
    root = tmp_path_factory.mktemp("alert_stop")
    with MailSink(root / "maildir") as sink:
        box = make_sandbox(root, customers=300, as_of=D, entry_errors=0.0)
        box.env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(sink.host, sink.port)
        with sqlite3.connect(box.crm) as conn:  # a tenth of the tickets: unknown priority
            conn.execute("UPDATE tickets SET priority = 'critical' "
                         "WHERE CAST(substr(ticket_id, 2) AS INTEGER) % 10 = 0")
        run = box.dags_test("revisit_daily", D)
        yield box, run, sink.messages()


def test_the_data_team_receives_one_email_for_the_failed_run(stopped):
    box, run, messages = stopped
    assert run.state == "failed", run.log[-3000:]
    with sqlite3.connect(Path(box.env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        states = dict(conn.execute("SELECT task_id, state FROM task_instance"))
    assert states["quality_gate"] == "failed"
    assert [m["To"] for m in messages] == [DATA_TEAM], [m["Subject"] for m in messages]
    assert messages[0]["X-Envelope-To"] == DATA_TEAM
    assert messages[0]["X-Revisit-Alert"] == "quality_stop"


def test_the_email_names_dag_task_run_logical_date_and_try(stopped):
    box, _, messages = stopped
    with sqlite3.connect(Path(box.env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        (run_id,) = conn.execute("SELECT run_id FROM dag_run WHERE dag_id = 'revisit_daily'"
                                 ).fetchone()
    (message,) = messages
    body = message.get_body(("plain",)).get_content()
    assert "revisit_daily" in message["Subject"] and run_id in message["Subject"]
    for label, value in (("DAG", "revisit_daily"), ("Task", "quality_gate"), ("Run", run_id),
                         ("Logical date", f"{D}T00:00:00+08:00"),
                         ("Try", "1 of 3 (failed at once: no retry can fix this error)")):
        assert re.search(rf"^{label}:\s+{re.escape(value)}$", body, re.M), (label, body)
    error = re.search(r"^Error:\s+(.*)$", body, re.M).group(1)
    assert error.startswith(f"QualityStop: quality gate stopped the run for {D}: tickets:")


def test_the_email_has_the_gates_numbers(stopped):
    box, _, (message,) = stopped
    summary = pd.read_csv(box.output / "quality" / D / "summary.csv").set_index("table")
    body = message.get_body(("plain",)).get_content()
    assert "QUALITY STOP" in message["Subject"]
    assert f"The quality gate stopped the run for {D}" in body
    tickets = summary.loc["tickets"]
    assert tickets["failure_share"] > 0.05
    assert re.search(rf"^tickets\s+{tickets['rows']}\s+{tickets['failed_rows']}\s+"
                     rf"{100 * tickets['failure_share']:.1f} %\s+5\.0 %\s+STOP$", body, re.M), body
    for table, row in summary.iterrows():  # every table of the gate, with its verdict
        verdict = "STOP" if row["failure_share"] > 0.05 or not row["passed"] else "ok"
        assert re.search(rf"^{table}\s+{row['rows']}\s+{row['failed_rows']}\s+.*{verdict}$",
                         body, re.M), table
    html = message.get_body(("html",)).get_content()
    assert f"<td>{tickets['failed_rows']}</td>" in html


def test_the_email_holds_no_customer_data_and_no_log_text(stopped):
    box, _, (message,) = stopped
    with sqlite3.connect(box.crm) as conn:
        people = pd.read_sql("SELECT name, contact_name, phone, email FROM customers", conn)
        tickets = pd.read_sql("SELECT description FROM tickets", conn)
    text = _text(message)
    personal = {str(v) for col in people.columns for v in people[col].dropna()}
    personal |= {str(v) for v in tickets["description"].dropna() if len(str(v)) > 3}
    found = sorted(v for v in personal if v and v in text)
    assert not found, found[:5]
    assert "Traceback" not in text and "[DAG TEST]" not in text
    assert "Log:" not in message.get_body(("plain",)).get_content()  # no [api] base_url set


# ----------------------------------------------------------------- 2. the deadline
DEADLINE_SCRIPT = textwrap.dedent("""
    import asyncio, datetime as dt, json
    import pendulum
    from sqlalchemy import select
    from airflow._shared.module_loading import import_string
    from airflow.models.callback import TriggererCallback
    from airflow.models.dagbag import DBDagBag
    from airflow.models.deadline import Deadline
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType as By, DagRunType as Type

    def check_deadlines(session):  # SchedulerJobRunner's loop over expired deadlines
        now = dt.datetime.now(dt.timezone.utc)
        missed = session.scalars(select(Deadline).where(Deadline.deadline_time < now)
                                 .where(~Deadline.missed)).all()
        for deadline in missed:
            deadline.handle_miss(session)
        session.commit()
        return len(missed)

    day = pendulum.datetime(2026, 11, 20, 6, tz="Asia/Shanghai")
    runs = {}
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag("revisit_daily", session=session)
        for days, kind, by in ((0, Type.SCHEDULED, By.TIMETABLE), (1, Type.MANUAL, By.REST_API),
                               (2, Type.BACKFILL_JOB, By.BACKFILL), (3, Type.MANUAL, By.TEST)):
            logical = day.add(days=-days)
            run = dag.create_dagrun(
                run_id=f"{kind.value}__{logical.isoformat()}", logical_date=logical,
                data_interval=(logical, logical.add(days=1)), run_after=logical, run_type=kind,
                triggered_by=by, state=DagRunState.RUNNING,
                start_date=logical.add(minutes=2), session=session)
            runs[run.run_id] = kind.value
        session.commit()
        first = check_deadlines(session)
        again = check_deadlines(session)
        queued = [(c.trigger.classpath, c.trigger.encrypted_kwargs)
                  for c in session.scalars(select(TriggererCallback)) if c.trigger]

    async def run_trigger(classpath, encrypted):  # TriggerRunner.create_triggers, then run()
        kwargs = Trigger._decrypt_kwargs(encrypted)
        trigger = import_string(classpath)(
            **{k: smart_decode_trigger_kwargs(v) for k, v in kwargs.items()})
        return [{k: str(v) for k, v in e.payload.items()} async for e in trigger.run()]

    events = [asyncio.run(run_trigger(*q)) for q in queued]
    print(json.dumps({"runs": runs, "missed": first, "again": again, "events": events}))
""")


@pytest.fixture(scope="module")
def deadlines(tmp_path_factory):
    root = tmp_path_factory.mktemp("alert_deadline")
    env = airflow_env(root, f"sqlite:///{root / 'no_crm.sqlite'}")
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([str(AIRFLOW), *command], env=env, cwd=ROOT, check=True,
                       capture_output=True, timeout=TIMEOUT)
    with MailSink(root / "maildir") as sink:
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(sink.host, sink.port)
        done = subprocess.run([sys.executable, "-c", DEADLINE_SCRIPT], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        yield json.loads(done.stdout.strip().splitlines()[-1]), sink.messages(), done.stderr


def test_every_missed_deadline_is_handled_once(deadlines):
    result, _, _ = deadlines
    assert sorted(result["runs"].values()) == ["backfill", "manual", "manual", "scheduled"]
    assert result["missed"] == 4 and result["again"] == 0
    assert len(result["events"]) == 4
    for events in result["events"]:  # each callback ran to the end in the triggerer
        assert [e["state"] for e in events] == ["running", "success"], events


def test_only_the_scheduled_run_emails_the_data_team_naming_that_run(deadlines):
    result, messages, _ = deadlines
    (scheduled,) = [r for r, kind in result["runs"].items() if kind == "scheduled"]
    assert [m["To"] for m in messages] == [DATA_TEAM]
    (message,) = messages
    assert message["X-Revisit-Alert"] == "call_lists_late"
    assert scheduled in message["Subject"] and "08:30 Asia/Shanghai" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    for label, value in (("DAG", "revisit_daily"), ("Run", scheduled), ("Run type", "scheduled"),
                         ("Logical date", "2026-11-20T06:00:00+08:00"), ("State", "running"),
                         ("Deadline", "2026-11-20T08:30:00+08:00")):
        assert re.search(rf"^{label}:\s+{re.escape(value)}$", body, re.M), (label, body)
    assert "run ?" not in _text(message)
    # What the triggerer records as each callback's output.
    outputs = [e[-1]["body"] for e in result["events"]]
    for run_id, kind in result["runs"].items():
        if kind != "scheduled":
            assert f"nothing sent: revisit_daily run {run_id} ({kind}) missed its deadline: " \
                   "only the scheduled run of the day is late for the agents" in outputs
    assert sum(o.startswith("alert call_lists_late e-mailed") for o in outputs) == 1
