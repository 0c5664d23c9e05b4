"""The daily DAG ends with the retention task: after publish, so a day's results are in the
results database before anything older is deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "revisit_daily.py"))
    assert bag.import_errors == {}
    return bag.dags["revisit_daily"]


def test_retention_runs_after_publish_and_is_the_last_task(daily):
    task = daily.get_task("retention")
    assert task.upstream_task_ids == {"publish"}
    assert task.downstream_task_ids == set()
