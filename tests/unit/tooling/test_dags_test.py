"""tooling/dags_test.py: `airflow dags test` of a DAG with a Deadline Alert (airflow#73428)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def daily_dag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "revisit_daily.py"))
    return bag.dags["revisit_daily"]


def _test_run_deadlines(dag) -> list:
    """dag.deadline as DAG.test() hands it to DagRun.update_state."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).deadline


def test_the_daily_dag_declares_its_deadline_alert_in_every_process(daily_dag):
    assert daily_dag.deadline is not None


def test_airflow_still_hands_a_test_run_encoded_alerts_so_the_wrapper_is_still_needed(daily_dag):
    # When this fails, Airflow fixed #73428: drop tooling/dags_test.py and call airflow directly.
    assert all(isinstance(alert, dict) for alert in _test_run_deadlines(daily_dag))


def test_the_wrapper_reads_an_encoded_alert_as_a_dag_run_reference(daily_dag, monkeypatch):
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.serialization.definitions.deadline import SerializedReferenceModels

    from tooling.dags_test import accept_encoded_alerts

    monkeypatch.setattr(DeadlineAlert, "get_by_id", DeadlineAlert.get_by_id)
    accept_encoded_alerts()
    accept_encoded_alerts()  # twice is once
    alerts = [DeadlineAlert.get_by_id(a) for a in _test_run_deadlines(daily_dag)]
    assert [a.reference_class in SerializedReferenceModels.TYPES.DAGRUN for a in alerts] == [True]
