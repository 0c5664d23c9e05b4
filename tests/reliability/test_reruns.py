"""Reruns and time: a backfill over three dates gives three partitions and no row twice, a date
before the CRM had any data gives empty lists rather than an error, and every task's XCom value
is small and free of customer data. A rerun of D after the CRM changed reproduces D's outputs
byte for byte from D's stored snapshot (run.json included); params.refresh_snapshot re-extracts.
(The same date run twice through Airflow is proven byte-identical in
tests/e2e/test_daily_dag.py.)"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from revisit.bridge import tasks

DATES = ("2026-11-18", "2026-11-19", "2026-11-20")
STAGES = ("extract_daily", "quality_gate", "call_lists", "sla", "publish", "retention")


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


def run_day(day: str, **params) -> dict[str, dict]:
    """The daily DAG's tasks in order, as Airflow calls them (params.call_date = day)."""
    context = {"params": {"call_date": day, "send_email": False, **params}}
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
        "carried_over.csv", "not_listed.csv", "run.json", "sms_notice.csv"]
    assert pd.read_csv(env / "sla" / day / "sla_status.csv").empty


def test_task_return_values_are_small_and_hold_no_customer_data(env: Path, crm: Path):
    results = run_day(DATES[-1])
    with sqlite3.connect(crm) as conn:
        customers = pd.read_sql("SELECT name, contact_name, phone FROM customers", conn)
    text = json.dumps(results, ensure_ascii=False, default=str)
    assert len(text) < 5_000
    for value in pd.concat([customers[c].astype(str) for c in customers.columns]):
        assert value not in text


# ================================================================= a rerun reproduces D
def _files(out: Path, day: str) -> dict[str, str]:
    """Every file of D's call_lists/ and sla/ partitions (XLSX and run.json too), by hash."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for kind in ("call_lists", "sla") for p in sorted((out / kind / day).rglob("*"))
            if p.is_file()}


def _change_the_crm(crm: Path, day: str) -> None:
    """What a CRM sees after D's run: a reached visit before D recorded as no_answer after
    all, and an urgent ticket stamped the day before D entered late (both before D 00:00)."""
    created = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat() + " 10:00:00"
    with sqlite3.connect(crm) as conn:
        visit = conn.execute("SELECT visit_id FROM visits WHERE outcome = 'reached' AND "
                             "visited_at < ? ORDER BY visited_at DESC LIMIT 1", (day,)).fetchone()
        conn.execute("UPDATE visits SET outcome = 'no_answer' WHERE visit_id = ?", visit)
        customer, department = conn.execute(
            "SELECT customer_id, department_id FROM customers ORDER BY customer_id LIMIT 1"
        ).fetchone()
        conn.execute(
            "INSERT INTO tickets (ticket_id, customer_id, department_id, type, channel, priority,"
            " category, description, created_at, status) VALUES ('T-LATE', ?, ?, 'complaint',"
            " 'phone', 'urgent', 'other', 'entered after the run', ?, 'pending')",
            (customer, department, created))


def test_a_rerun_after_the_crm_changed_reproduces_d_byte_for_byte(crm: Path, tmp_path: Path,
                                                                 monkeypatch):
    own = tmp_path / "crm.sqlite"  # this test edits its CRM: not the module's
    shutil.copyfile(crm, own)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{own}")
    out = tmp_path / "out"
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(out))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    day = DATES[-1]

    first = run_day(day)
    before = _files(out, day)
    assert any(name.endswith(".xlsx") for name in before)
    run_json = json.loads((out / "sla" / day / "run.json").read_text(encoding="utf-8"))
    manifest = json.loads((out / "snapshots" / day / "snapshot.json").read_text("utf-8"))
    assert run_json["snapshot"] == {"cutoff": day, "extracted_at": manifest["extracted_at"]}
    assert run_json["policy_version"] == tasks.run_policy({}).version
    assert run_json["code"]["package"] and run_json["period"] == day
    sla_csv = pd.read_csv(out / "sla" / day / "sla_status.csv")
    assert set(sla_csv["policy_version"]) == {run_json["policy_version"]}

    _change_the_crm(own, day)
    again = run_day(day)  # the stored snapshot of D: the first run's CRM
    assert first["extract_daily"]["extracted"] and not again["extract_daily"]["extracted"]
    assert _files(out, day) == before

    refreshed = run_day(day, refresh_snapshot=True)  # the CRM as it is now, as of D 00:00
    assert refreshed["extract_daily"]["extracted"]
    after = _files(out, day)
    assert after.keys() >= {f"sla/{day}/sla_status.csv", f"sla/{day}/run.json"}
    assert after[f"sla/{day}/sla_status.csv"] != before[f"sla/{day}/sla_status.csv"]
    late = pd.read_csv(out / "sla" / day / "sla_status.csv")
    assert "T-LATE" in set(late["ticket_id"])
