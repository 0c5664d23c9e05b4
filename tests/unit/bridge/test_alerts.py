"""The data team's alerts (revisit.bridge.alerts) as Airflow runs them, into a real SMTP server:

- TaskFailed, the on_failure_callback of every task, called with a task context the way the
  task runner calls a notifier (`notifier(context)`): DAG, task, run, logical date, try, the
  error's first line, the log link only when Airflow's [api] base_url is set; a quality stop
  with the gate's numbers per table; never rendered as a template, never customer data.
- CallListsLate, the Deadline Alert, with exactly what Airflow 3.3.2 gives it: the context
  Deadline.handle_miss builds (the DagRun as DAGRunResponse JSON, the deadline's id and time),
  through the trigger row's serialisation, inflated and run by CallbackTrigger as the triggerer
  does. Scheduled runs only.
- The wiring: one TaskFailed per task of both DAGs, no retry or DAG-level failure callback (each
  failure e-mailed once), the daily Deadline Alert's callback is the notifier.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from pathlib import Path

import pandas as pd
import pendulum
import pytest
import yaml

from revisit.bridge import alerts, tasks
from revisit.bridge.alerts import CallListsLate, TaskFailed
from revisit.config.policy import DEFAULT_POLICY_PATH
from revisit.quality.errors import QualityStop
from tests.e2e.conftest import smtp_connection
from tooling.mailsink import MailSink

ROOT = Path(__file__).resolve().parents[3]
DATA_TEAM = "data-team@revisit.example.com"
LOGICAL = pendulum.datetime(2026, 11, 19, 22, tz="UTC")  # 2026-11-20 06:00 Asia/Shanghai
RUN_ID = "scheduled__2026-11-19T22:00:00+00:00"


@pytest.fixture
def sink(tmp_path, monkeypatch):
    """smtp_default at a real local SMTP server; no [api] base_url; the default policy."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    monkeypatch.delenv("REVISIT_POLICY", raising=False)
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path / "output"))
    with MailSink(tmp_path / "maildir") as server:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(server.host, server.port))
        yield server


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def _ti(dag_id="revisit_daily", task_id="quality_gate", try_number=1, max_tries=2,
        map_index=-1, rendered_map_index=None):
    """The task instance of a task context (what the task runner's context holds)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(), dag_id=dag_id, task_id=task_id, run_id=RUN_ID, try_number=try_number,
        max_tries=max_tries, map_index=map_index, rendered_map_index=rendered_map_index,
        dag_version_id=uuid.uuid4(), start_date=LOGICAL)


def _context(ti, error: BaseException, **params) -> dict:
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType

    dag_run = DagRun.model_construct(dag_id=ti.dag_id, run_id=RUN_ID, logical_date=LOGICAL,
                                     run_after=LOGICAL, run_type=DagRunType.SCHEDULED,
                                     state=DagRunState.RUNNING)
    return {"ti": ti, "task_instance": ti, "dag_run": dag_run, "run_id": RUN_ID,
            "logical_date": LOGICAL, "params": {"call_date": None, **params},
            "exception": error}


def _raised(function, *args) -> BaseException:
    try:
        function(*args)
    except BaseException as error:  # the error a task would end with
        return error
    raise AssertionError("no error")


def _stopped_gate(tmp_path: Path) -> BaseException:
    """The quality gate task's error after a stop (fail_fast: AirflowFailException from the
    QualityStop), with quality/2026-11-20/ written as the gate writes it."""
    from revisit.quality.gate import CHECK_COLUMNS, SUMMARY_COLUMNS, QualityResult
    from revisit.quality.quarantine import quarantine_frame
    from revisit.quality.summary import write_quality_outputs

    summary = pd.DataFrame([
        ["departments", 10, 0, 10, 0, 0.0, True],
        ["customers", 300, 3, 297, 0, 0.01, True],
        ["tickets", 2000, 200, 1800, 0, 0.1, False],
    ], columns=SUMMARY_COLUMNS)
    reason = ("tickets: 200 of 2000 rows failed (10.0%), more than the limit of 5.0% "
              "(policy quality.max_failure_share)")
    result = QualityResult(clean={}, quarantine=quarantine_frame([]), summary=summary,
                           checks=pd.DataFrame(columns=CHECK_COLUMNS), stopped=True,
                           stop_reason=reason)
    folder = tmp_path / "output" / "quality" / "2026-11-20"
    write_quality_outputs(result, folder, "2026-11-20")

    @tasks.fail_fast
    def quality_gate():
        raise QualityStop(f"quality gate stopped the run for 2026-11-20: {reason} "
                          f"(see {folder})")

    return _raised(quality_gate)


def _plain(message) -> str:
    return message.get_body(("plain",)).get_content()


def _fact(body: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:\s+(.*)$", body, re.M)
    assert match, (label, body)
    return match.group(1)


# ================================================================= a failed task
def test_a_quality_stop_emails_the_data_team_once_with_the_gates_numbers(sink, tmp_path):
    error = _stopped_gate(tmp_path)
    TaskFailed()(_context(_ti(), error))  # what the task runner does with a notifier
    (message,) = sink.messages()
    assert message["To"] == DATA_TEAM and message["X-Envelope-To"] == DATA_TEAM
    assert message["From"] == "revisit@example.com"  # the connection's from_email
    assert message["X-Revisit-Alert"] == "quality_stop"
    assert message["Subject"].startswith("[Revisit] QUALITY STOP revisit_daily 2026-11-20")
    body = _plain(message)
    assert _fact(body, "DAG") == "revisit_daily"
    assert _fact(body, "Task") == "quality_gate"
    assert _fact(body, "Run") == RUN_ID
    assert _fact(body, "Run type") == "scheduled"
    assert _fact(body, "Logical date") == "2026-11-20T06:00:00+08:00"
    assert _fact(body, "Try") == "1 of 3 (failed at once: no retry can fix this error)"
    assert _fact(body, "Error").startswith(
        "QualityStop: quality gate stopped the run for 2026-11-20: tickets: 200 of 2000 rows")
    assert "Log:" not in body  # no [api] base_url: no link to guess
    assert re.search(r"^table\s+rows\s+failed\s+share\s+limit$", body, re.M)
    assert re.search(r"^departments\s+10\s+0\s+0\.0 %\s+5\.0 %\s+ok$", body, re.M)
    assert re.search(r"^customers\s+300\s+3\s+1\.0 %\s+5\.0 %\s+ok$", body, re.M)
    assert re.search(r"^tickets\s+2000\s+200\s+10\.0 %\s+5\.0 %\s+STOP$", body, re.M)
    assert "no call lists, SLA digests or results go out" in body
    html = message.get_body(("html",)).get_content()
    assert "<td>tickets</td><td>2000</td><td>200</td><td>10.0 %</td>" in html


def test_a_stop_without_a_readable_summary_still_says_so(sink, tmp_path):
    error = _stopped_gate(tmp_path)
    for path in (tmp_path / "output" / "quality" / "2026-11-20").iterdir():
        path.unlink()
    TaskFailed()(_context(_ti(), error))
    (message,) = sink.messages()
    body = _plain(message)
    assert "QUALITY STOP" in message["Subject"]
    assert "The gate's summary could not be read; its numbers are in the error above." in body
    assert "10.0%" in _fact(body, "Error")


def test_another_failure_has_the_errors_first_line_only_and_the_log_link(sink, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    error = _raised(_fails_with, "department D07 has no head_email {{ 7 * 7 }}\n"
                                 "the rest of the message: customer Zhang San 13812345678")
    ti = _ti("revisit_monthly", "department.send", try_number=3, max_tries=2, map_index=2,
             rendered_map_index="D07")
    TaskFailed()(_context(ti, error, month="2026-10"))
    (message,) = sink.messages()
    body = _plain(message)
    assert message["X-Revisit-Alert"] == "task_failed"
    assert message["Subject"] == (f"[Revisit] FAILED revisit_monthly.department.send "
                                  f"(run {RUN_ID}, try 3 of 3)")
    assert _fact(body, "Task") == "department.send [map index 2: D07]"
    assert _fact(body, "Try") == "3 of 3"
    # The first line, shown as it is (no template rendering), and nothing after it.
    assert _fact(body, "Error") == "RuntimeError: department D07 has no head_email {{ 7 * 7 }}"
    assert "13812345678" not in message.as_string() and "Zhang San" not in message.as_string()
    assert "49" not in _fact(body, "Error")
    assert _fact(body, "Log") == ("https://airflow.example.com/dags/revisit_monthly/runs/"
                                  "scheduled__2026-11-19T22%3A00%3A00%2B00%3A00/tasks/"
                                  "department.send/mapped/2?try_number=3")


def _fails_with(message: str):
    raise RuntimeError(message)


def test_an_error_line_is_the_stages_own_error_type_and_one_line():
    @tasks.fail_fast
    def stage():
        raise QualityStop("first line\nsecond line")

    assert alerts.error_line(_raised(stage)) == "QualityStop: first line"
    assert alerts.is_quality_stop(_raised(stage))
    assert not alerts.is_quality_stop(RuntimeError("x"))
    assert alerts.error_line(None) == "(no error recorded)"
    assert alerts.error_line("heartbeat timeout\nmore") == "heartbeat timeout"
    assert len(alerts.error_line(RuntimeError("x" * 2000))) == 500


def test_an_empty_data_team_sends_nothing_and_says_so(sink, tmp_path, monkeypatch, caplog):
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["notify"]["data_team"] = []
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("REVISIT_POLICY", str(policy))
    with caplog.at_level("WARNING"):
        result = TaskFailed().notify(_context(_ti(), RuntimeError("boom")))
    assert result == "nothing sent: notify.data_team is empty"
    assert sink.messages() == []
    assert "notify.data_team is empty" in caplog.text


def test_a_server_that_cannot_be_reached_fails_the_callback_without_retrying(tmp_path,
                                                                             monkeypatch):
    """Airflow logs a failed callback; the notifier never sends the same alert twice."""
    from revisit.delivery.mail import DeliveryRefused
    from tooling.mailsink import free_port

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection("127.0.0.1", free_port()))
    with pytest.raises(DeliveryRefused, match="SMTP connection 'smtp_default' failed"):
        TaskFailed()(_context(_ti(), RuntimeError("boom")))


# ================================================================= the deadline
def _dag_run(run_type: str, state: str = "running", run_id: str = RUN_ID) -> dict:
    """A DagRun as Deadline.handle_miss hands it on: DAGRunResponse, dumped as JSON."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    started = LOGICAL + dt.timedelta(minutes=1)
    return DAGRunResponse.model_validate({
        "run_id": run_id, "dag_id": "revisit_daily", "logical_date": LOGICAL,
        "queued_at": started, "start_date": started, "end_date": None, "duration": None,
        "data_interval_start": LOGICAL, "data_interval_end": LOGICAL + dt.timedelta(days=1),
        "run_after": LOGICAL, "last_scheduling_decision": None, "run_type": run_type,
        "state": state, "triggered_by": "timetable", "triggering_user_name": None,
        "conf": {}, "note": None, "dag_versions": [], "bundle_version": None,
        "dag_model": {"dag_display_name": "revisit_daily"}, "partition_key": None,
        "partition_date": None,
    }).model_dump(mode="json")


def _run_deadline_callback(dagbag, dag_run: dict) -> list[dict]:
    """The daily DAG's deadline callback as Airflow 3.3.2 runs it: Deadline.handle_miss puts
    `context` into the callback's kwargs, TriggererCallback.queue stores them on a trigger
    row (serialised, encrypted), the triggerer decrypts and decodes them into a
    CallbackTrigger, whose run() imports the callback and awaits `callback(**kwargs,
    context=context)`. Returns the trigger's event payloads."""
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.triggers.callback import CallbackTrigger

    deadline_time = LOGICAL + dt.timedelta(hours=2, minutes=30)
    context = {"dag_run": dag_run,
               "deadline": {"id": str(uuid.uuid4()), "deadline_time": deadline_time}}
    callback = _daily_deadline(dagbag).callback
    row = Trigger.from_object(CallbackTrigger(
        callback_path=callback.path, callback_kwargs={**callback.kwargs, "context": context}))
    kwargs = Trigger._decrypt_kwargs(row.encrypted_kwargs)
    trigger = CallbackTrigger(**{k: smart_decode_trigger_kwargs(v) for k, v in kwargs.items()})

    async def run() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(run())


def _daily_deadline(dagbag):
    """The daily DAG's DeadlineAlert, as the DAG file declares it."""
    dag = dagbag.dags["revisit_daily"]
    (alert,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    return alert


def test_the_scheduled_runs_missed_deadline_emails_the_data_team_naming_the_run(sink, dagbag):
    events = _run_deadline_callback(dagbag, _dag_run("scheduled"))
    assert [str(e["state"]) for e in events] == ["running", "success"], events
    assert events[-1]["body"].startswith("alert call_lists_late e-mailed to the data team")
    (message,) = sink.messages()
    assert message["To"] == DATA_TEAM and message["X-Revisit-Alert"] == "call_lists_late"
    assert message["Subject"] == ("[Revisit] LATE revisit_daily: call lists not ready by 08:30 "
                                  f"Asia/Shanghai (run {RUN_ID}, running)")
    body = _plain(message)
    assert _fact(body, "Run") == RUN_ID
    assert _fact(body, "Run type") == "scheduled"
    assert _fact(body, "Logical date") == "2026-11-20T06:00:00+08:00"
    assert _fact(body, "Started") == "2026-11-20T06:01:00+08:00"
    assert _fact(body, "Deadline") == "2026-11-20T08:30:00+08:00"
    assert "agents are waiting" in body and "?" not in _fact(body, "Run")


def test_a_failed_scheduled_run_says_no_lists_go_out_and_links_the_run(sink, dagbag,
                                                                      monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    _run_deadline_callback(dagbag, _dag_run("scheduled", state="failed"))
    (message,) = sink.messages()
    body = _plain(message)
    assert _fact(body, "State") == "failed"
    assert "no lists go out until the cause is fixed" in body
    assert _fact(body, "Run page") == ("https://airflow.example.com/dags/revisit_daily/runs/"
                                       "scheduled__2026-11-19T22%3A00%3A00%2B00%3A00")


@pytest.mark.parametrize("run_type", ["manual", "backfill", "asset_triggered"])
def test_other_runs_missing_the_deadline_tell_nobody(sink, dagbag, run_type):
    run_id = f"{run_type}__2026-11-19T22:00:00+00:00"
    events = _run_deadline_callback(dagbag, _dag_run(run_type, run_id=run_id))
    assert [str(e["state"]) for e in events] == ["running", "success"], events
    assert events[-1]["body"] == (f"nothing sent: revisit_daily run {run_id} ({run_type}) "
                                  "missed its deadline: only the scheduled run of the day is "
                                  "late for the agents")
    assert sink.messages() == []


def test_the_old_callback_path_still_names_the_notifier():
    """Deadlines stored before this change name revisit.bridge.alerts.call_lists_late."""
    assert alerts.call_lists_late is CallListsLate


# ================================================================= the wiring
@pytest.mark.parametrize("dag_id", ["revisit_daily", "revisit_monthly"])
def test_every_task_emails_its_failure_once(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert not dag.on_failure_callback  # a DAG-level one would tell the same failure twice
    for task in dag.tasks:
        callbacks = task.on_failure_callback or []  # a mapped task keeps it as given
        callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        assert len(callbacks) == 1 and isinstance(callbacks[0], TaskFailed), task.task_id
        assert not task.on_retry_callback, task.task_id  # a retried try is not a failure


def test_the_daily_deadline_alert_calls_the_notifier(dagbag):
    from airflow.sdk import AsyncCallback

    alert = _daily_deadline(dagbag)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "revisit.bridge.alerts.CallListsLate"
    assert not dagbag.dags["revisit_monthly"].deadline
