"""Every DAG imports, is documented and owned, retries, and parses fast (heavy imports in tasks)."""

from __future__ import annotations

import copy
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
# data team's notifiers (the failure callback and the Deadline Alert, which the SDK imports to
# check it is awaitable), light modules that load their work when an alert is sent.
PARSE_TIME_REVISIT = {"revisit", "revisit.bridge", "revisit.bridge.alerts",
                      "revisit.bridge.notify", "revisit.bridge.params"}


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
    assert alert.callback.path == "revisit.bridge.alerts.CallListsLate"


def test_late_call_list_alert_names_the_run_it_is_given():
    """The run as Airflow 3.3.2 hands it to a deadline callback (DAGRunResponse JSON);
    tests/unit/bridge/test_alerts.py runs the notifier through the triggerer's code."""
    from revisit.bridge.alerts import CallListsLate

    run = {"dag_run_id": "scheduled__2026-11-19T22:00:00+00:00", "dag_id": "revisit_daily",
           "run_type": "scheduled", "state": "running", "logical_date": "2026-11-19T22:00:00Z"}
    alert = CallListsLate().compose({"dag_run": run,
                                     "deadline": {"deadline_time": "2026-11-20T00:30:00Z"}})
    assert "08:30 Asia/Shanghai" in alert.subject
    assert "scheduled__2026-11-19T22:00:00+00:00" in alert.subject
    assert ("Deadline", "2026-11-20T08:30:00+08:00") in alert.facts


# A param no retry can fix is refused when the run is triggered: the SDK Param (what the DAG
# declares) and the server's copy that create_dagrun validates (the serialised DAG) both reject it.
PARAM_CASES = [
    ("revisit_daily", "call_date", ["2026-02-30", "yesterday", "2026-2-3", "20261120",
                                    "2026-11-20T06:00"], [None, "2026-11-20", "2024-02-29"]),
    ("revisit_monthly", "month", ["2026-13", "2026-00", "2026-1", "2026-10-01", "october"],
     [None, "2026-01", "2026-10", "2026-12"]),
]


@pytest.mark.parametrize(("dag_id", "name", "bad", "good"), PARAM_CASES,
                         ids=[case[1] for case in PARAM_CASES])
def test_params_reject_values_no_retry_can_fix(dagbag, dag_id, name, bad, good):
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags[dag_id]
    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # what the API server has
    for value in bad:
        with pytest.raises(ParamValidationError):
            copy.copy(dag.params.get_param(name)).resolve(value)
        with pytest.raises(ParamValidationError, match=f"param {name}"):
            served.params.deep_merge({name: value}).validate()
    for value in good:
        assert copy.copy(dag.params.get_param(name)).resolve(value) == value
        assert served.params.deep_merge({name: value}).validate()[name] == value


def test_month_param_pattern_is_the_packages_month_pattern(dagbag):
    from revisit.core.periods import MONTH_PATTERN

    schema = dagbag.dags["revisit_monthly"].params.get_param("month").schema
    assert schema["pattern"] == MONTH_PATTERN.pattern


@pytest.mark.parametrize("dag_id", ["revisit_daily", "revisit_monthly"])
def test_both_dags_offer_the_rerun_params_and_the_replay_id_rule_of_the_package(dagbag, dag_id):
    from revisit.stages.replay import REPLAY_ID_PATTERN

    params = dagbag.dags[dag_id].params
    assert {"policy_profile", "refresh_snapshot", "replay", "replay_id"} <= set(params)
    assert params.get_param("replay_id").schema["pattern"] == REPLAY_ID_PATTERN.pattern


DEPARTMENT_LABEL = "{{ task.op_kwargs['department_id'] }}"
PERIOD_LABEL = "{{ task.op_kwargs['period'] }}"
COMPANY_TASKS = ("company.data", "company.render", "company.send")


def test_mapped_department_tasks_are_labelled_with_the_department(dagbag):
    """... and the mapped company tasks (one per period: M, and its quarter) with the period."""
    dag = dagbag.dags["revisit_monthly"]
    mapped = {t.task_id for t in dag.tasks if t.get_closest_mapped_task_group() is not None}
    assert mapped == {"department.render", "department.send", *COMPANY_TASKS}
    for task in dag.tasks:
        if task.task_id == "kpis_shard":  # mapped on its own, labelled with its shard
            continue
        key, expected = (("period", PERIOD_LABEL) if task.task_id.startswith("company.")
                         else ("department_id", DEPARTMENT_LABEL))
        assert task.map_index_template == (expected if task.task_id in mapped else None), \
            task.task_id
        if task.task_id in mapped:
            assert key in task.op_kwargs, task.task_id


def test_the_company_report_runs_after_the_kpis_and_before_the_summary(dagbag):
    dag = dagbag.dags["revisit_monthly"]
    assert dag.get_task("company_periods").upstream_task_ids == {"kpis"}
    assert dag.get_task("company.data").upstream_task_ids == {"company_periods"}
    assert "company.render" in dag.get_task("company.send").upstream_task_ids
    assert {"company.send", "department.send"} <= dag.get_task("summary").upstream_task_ids


def test_a_monthly_run_shows_each_department_id_as_the_map_index(tmp_path):
    """`dag.test()` of revisit_monthly (its bridge calls stubbed): the rendered map index of
    every mapped department task is its department id."""
    probe = f"""
import json, pendulum
from revisit.bridge import tasks
tasks.extract_monthly = tasks.summary = tasks.monthly_gate = lambda context: {{}}
tasks.monthly_shards = lambda context: ["000", "001.0"]
tasks.kpis_shard = lambda context, shard: {{"shard": shard}}
tasks.monthly_kpis = lambda context, shards: {{"departments": ["D01", "D02", "D07"]}}
tasks.render = tasks.send = lambda context, department_id: {{"department_id": department_id}}
tasks.company_periods = lambda context: ["2026-09", "2026-Q3"]
tasks.company_data = tasks.company_render = tasks.company_send = \
    lambda context, period: {{"period": period}}
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance as TI
from airflow.utils.session import create_session
dag = DagBag(dag_folder={str(ROOT / "dags")!r}).dags["revisit_monthly"]
run = dag.test(logical_date=pendulum.datetime(2026, 11, 2, 7, tz="Asia/Shanghai"))
with create_session() as session:
    rows = session.query(TI.task_id, TI.map_index, TI.rendered_map_index).filter(
        TI.dag_id == dag.dag_id, TI.run_id == run.run_id, TI.map_index >= 0).all()
print(json.dumps({{"state": str(run.state), "labels": sorted(map(list, rows))}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVISIT_"))}
    env.update({
        "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "PYTHONPATH": str(ROOT / "plugins"), "REVISIT_OUTPUT_DIR": str(tmp_path / "output"),
    })
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, check=True,
                   timeout=300)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["state"] == "success", out.stderr[-4000:]
    assert result["labels"] == sorted(
        [["kpis_shard", index, shard] for index, shard in enumerate(["000", "001.0"])]
        + [[task, index, period] for task in COMPANY_TASKS
         for index, period in enumerate(["2026-09", "2026-Q3"])]
        + [[task, index, department] for task in ("department.render", "department.send")
           for index, department in enumerate(["D01", "D02", "D07"])])


def test_retention_is_the_last_daily_task_and_runs_whatever_publish_did(dagbag):
    """After publish, so a day's results are in the results database before anything older
    goes; trigger_rule all_done, so a failing CRM or a quality stop never keeps personal data
    past retention.snapshot_days."""
    task = dagbag.dags["revisit_daily"].get_task("retention")
    assert task.upstream_task_ids == {"publish"}
    assert task.downstream_task_ids == set()
    assert task.trigger_rule == "all_done"


@pytest.mark.parametrize("mapped, merge", [("sla_shard", "sla"),
                                           ("obligations_shard", "call_lists")])
def test_the_daily_work_runs_per_shard_and_merges_before_anything_reads_it(dagbag, mapped,
                                                                           merge):
    dag = dagbag.dags["revisit_daily"]
    assert dag.get_task("shards").upstream_task_ids == {"quality_gate"}
    shard = dag.get_task(mapped)
    assert shard.upstream_task_ids == {"shards"}
    assert shard.map_index_template == "{{ task.op_kwargs['shard'] }}"
    assert dag.get_task(merge).upstream_task_ids == {"shards", mapped}
    for reader in ("agent_mail", "publish"):
        assert merge in dag.get_task(reader).upstream_task_ids, reader


def test_the_monthly_kpis_run_per_shard_and_merge_before_any_report(dagbag):
    dag = dagbag.dags["revisit_monthly"]
    assert dag.get_task("quality_gate").upstream_task_ids == {"extract"}
    assert dag.get_task("shards").upstream_task_ids == {"quality_gate"}
    shard = dag.get_task("kpis_shard")
    assert shard.upstream_task_ids == {"shards"}
    assert shard.map_index_template == "{{ task.op_kwargs['shard'] }}"
    assert dag.get_task("kpis").upstream_task_ids == {"shards", "kpis_shard"}
    for reader in ("departments", "company_periods"):
        assert dag.get_task(reader).upstream_task_ids == {"kpis"}, reader
