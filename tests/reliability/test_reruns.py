"""Reruns and time: a backfill over three dates gives three partitions and no row twice, a date
before the CRM had any data gives empty lists rather than an error, and every task's XCom value
is small and free of customer data. (The same date run twice through Airflow is proven
byte-identical in tests/e2e/test_daily_dag.py.)"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from revisit.bridge import tasks

DATES = ("2026-11-18", "2026-11-19", "2026-11-20")
STAGES = ("extract_daily", "quality_gate", "call_lists", "sla", "publish")


@pytest.fixture(scope="module")
def crm(tmp_path_factory) -> Path:
    from tooling.demo_crm import build_demo_crm

    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    build_demo_crm(f"sqlite:///{path}", customers=300, as_of=dt.date(2026, 11, 20))
    return path


@pytest.fixture
def env(crm: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{crm}")
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    return tmp_path / "out"


def run_day(day: str) -> dict[str, dict]:
    """The daily DAG's tasks in order, as Airflow calls them (params.call_date = day)."""
    context = {"params": {"call_date": day, "send_email": False}}
    return {stage: getattr(tasks, stage)(context) for stage in STAGES}


def test_backfill_over_three_dates_gives_three_partitions_and_no_row_twice(env: Path):
    for day in DATES:
        run_day(day)
    run_day(DATES[1])  # and one of them again, as a retry of the backfill would
    for stage in ("snapshots", "quality", "call_lists", "sla"):
        assert sorted(p.name for p in (env / stage).iterdir()) == list(DATES), stage
    with sqlite3.connect(env / "results.sqlite") as conn:
        per_day = dict(conn.execute(
            "SELECT run_date, COUNT(*) FROM sla_status GROUP BY run_date").fetchall())
        twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT run_date, ticket_id, metric FROM sla_status "
            "GROUP BY run_date, ticket_id, metric HAVING COUNT(*) > 1)").fetchone()[0]
    assert sorted(per_day) == list(DATES)
    assert twice == 0
    for day in DATES:
        csv = pd.read_csv(env / "sla" / day / "sla_status.csv")
        assert per_day[day] == len(csv)
    # Each day sees the CRM as of its own 00:00: later days know at least as many tickets.
    assert per_day[DATES[0]] <= per_day[DATES[1]] <= per_day[DATES[2]]


def test_a_date_before_the_crm_had_data_gives_empty_lists_not_an_error(env: Path):
    day = "2016-03-02"  # a Wednesday years before the demo CRM's first customer
    results = run_day(day)
    assert results["extract_daily"]["rows"]["customers"] == 0
    assert results["call_lists"]["rows"] == 0
    assert results["sla"]["rows"] == 0
    folder = env / "call_lists" / day
    assert sorted(p.name for p in folder.iterdir()) == [
        "carried_over.csv", "not_listed.csv", "sms_notice.csv"]
    assert pd.read_csv(env / "sla" / day / "sla_status.csv").empty


def test_task_return_values_are_small_and_hold_no_customer_data(env: Path, crm: Path):
    results = run_day(DATES[-1])
    with sqlite3.connect(crm) as conn:
        customers = pd.read_sql("SELECT name, contact_name, phone FROM customers", conn)
    text = json.dumps(results, ensure_ascii=False, default=str)
    assert len(text) < 5_000
    for value in pd.concat([customers[c].astype(str) for c in customers.columns]):
        assert value not in text
