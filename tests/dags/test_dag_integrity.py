"""Every DAG imports, is documented and owned, retries, and parses fast (heavy imports in tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
HEAVY_MODULES = ("pandas", "great_expectations", "weasyprint", "pyarrow", "matplotlib")
# The only revisit modules a DAG file may load at parse time: the (empty) packages and the
# Deadline Alert callbacks, which the SDK imports to check they are awaitable.
PARSE_TIME_REVISIT = {"revisit", "revisit.bridge", "revisit.bridge.alerts"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= {"revisit_daily", "revisit_monthly"}


@pytest.mark.parametrize("dag_id", ["revisit_daily", "revisit_monthly"])
def test_dag_has_tags_owner_retries_and_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "revisit" in dag.tags
    assert dag.doc_md and len(dag.doc_md.strip()) > 100
    for task in dag.tasks:
        assert task.owner == "data-team", task.task_id
        assert task.retries >= 1, task.task_id


def test_dag_ids_match_their_file_names(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_fast_without_heavy_imports(dag_file):
    # A fresh interpreter: import the Airflow SDK first (it is loaded anyway when parsing), then
    # time only the DAG file itself and see which heavy modules it pulled in.
    probe = f"""
import json, runpy, sys, time
import airflow.sdk, pendulum
before = set(sys.modules)
start = time.perf_counter()
runpy.run_path({str(dag_file)!r})
elapsed = time.perf_counter() - start
new = set(sys.modules) - before
loaded = sorted({{m.split('.')[0] for m in new}})
revisit = sorted(m for m in new if m.split('.')[0] == 'revisit')
print(json.dumps({{"seconds": elapsed, "loaded": loaded, "revisit": revisit}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seconds"] < 0.5, result
    assert not set(result["loaded"]) & set(HEAVY_MODULES), result["loaded"]
    assert set(result["revisit"]) <= PARSE_TIME_REVISIT, result["revisit"]


def test_daily_deadline_alert_fires_at_the_policys_call_list_hour(dagbag):
    import datetime as dt

    from croniter import croniter

    from revisit.config.policy import load_policy

    dag = dagbag.dags["revisit_daily"]
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    (alert,) = alerts
    # The schedule's time of day + the alert's interval = schedule.call_lists_ready_by.
    start = croniter(dag.schedule, dt.datetime(2026, 11, 20)).get_next(dt.datetime)
    due = start + alert.interval
    ready_by = load_policy().schedule.call_lists_ready_by
    assert (due.hour * 60 + due.minute) == ready_by
    assert "call_lists_late" in str(alert.callback.path if hasattr(alert.callback, "path")
                                    else alert.callback)


def test_late_call_list_callback_warns_without_customer_data(caplog):
    import asyncio

    from revisit.bridge.alerts import call_lists_late

    class Run:
        run_id, dag_id = "scheduled__2026-11-20T06:00:00+08:00", "revisit_daily"

    with caplog.at_level("WARNING"):
        message = asyncio.run(call_lists_late({"dag_run": Run()}))
    assert "08:30 Asia/Shanghai" in message and "scheduled__2026-11-20" in message
    assert message in caplog.text
