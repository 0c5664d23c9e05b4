"""The results upsert on every supported results database: rows arrive whole (missing values
as NULL, business-local stamps), a rerun replaces its date, other dates stay."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from revisit.io.results import (
    BATCH_ROWS,
    call_list_history,
    ensure_schema,
    replace_months,
    replace_partition,
)
from revisit.rules.kpis import AGENT_COLUMNS
from tests.integration.crm_databases import BACKENDS, scratch_database

TZ = "Asia/Shanghai"


def _sla_rows(n: int, status: str) -> pd.DataFrame:
    created = pd.Timestamp("2026-11-19 09:30", tz=TZ) + pd.to_timedelta(range(n), unit="min")
    achieved = pd.Series(created + pd.Timedelta(hours=1)).where(pd.Series(range(n)) % 3 != 0)
    return pd.DataFrame({
        "ticket_id": [f"T{i:07d}" for i in range(n)], "metric": "first_response",
        "customer_id": [f"C{i % 97:05d}" for i in range(n)], "department_id": "D01",
        "priority": "urgent", "started_at": created, "deadline": created + pd.Timedelta(hours=2),
        "achieved_at": achieved.to_numpy(), "status": status, "overdue_minutes": 0,
        "due_today": [i % 2 == 0 for i in range(n)], "target": "2 business_hours",
        "elapsed_minutes": 60, "paused_minutes": 0, "policy_version": "0123456789ab",
    })


@pytest.mark.parametrize("backend", BACKENDS)
def test_partition_rows_arrive_whole_and_a_rerun_replaces_only_its_date(backend: str,
                                                                        tmp_path: Path):
    n = BATCH_ROWS + 7  # more than one insert batch
    day, other = dt.date(2026, 11, 20), dt.date(2026, 11, 19)
    with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            ensure_schema(engine)
            replace_partition(engine, "sla_status", other, _sla_rows(5, "met"))
            replace_partition(engine, "sla_status", day, _sla_rows(n, "breached"))
            replace_partition(engine, "sla_status", day, _sla_rows(n, "pending"))
            with engine.connect() as conn:
                counts = dict(conn.execute(text(
                    "SELECT status, COUNT(*) FROM sla_status GROUP BY status")).all())
                first = conn.execute(text(
                    "SELECT ticket_id, started_at, achieved_at FROM sla_status "
                    "WHERE ticket_id IN ('T0000000', 'T0000001') AND status = 'pending' "
                    "ORDER BY ticket_id")).all()
        finally:
            engine.dispose()
    assert counts == {"met": 5, "pending": n}
    assert first[0][0] == "T0000000" and first[0][2] is None  # every third has no stamp
    assert str(first[1][1]).startswith("2026-11-19 09:31")  # naive business-local time
    assert str(first[1][2]).startswith("2026-11-19 10:31")


def _create_all_at_once(url: str, callers: int) -> list[BaseException]:
    """`callers` threads, each with its own connected engine, call ensure_schema together."""
    engines = [create_engine(url) for _ in range(callers)]
    start = threading.Barrier(callers)
    errors: list[BaseException] = []

    def create(engine) -> None:
        start.wait()
        try:
            ensure_schema(engine)
        except BaseException as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    try:
        for engine in engines:
            engine.connect().close()  # connected before the barrier, so the DDL itself races
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for engine in engines:
            engine.dispose()
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_tasks_creating_the_results_tables_at_the_same_moment_all_succeed(backend: str,
                                                                         tmp_path: Path):
    """Parallel tasks (call_lists, sla, sla_digest on a Celery worker) each make sure the tables
    exist; on PostgreSQL two CREATE TABLE IF NOT EXISTS at once can collide in the catalogue."""
    with scratch_database(backend, tmp_path) as url:
        for _ in range(5):  # a collision is a matter of timing: give it several chances
            assert _create_all_at_once(url, callers=6) == []
            engine = create_engine(url)
            try:
                names = inspect(engine).get_table_names()
                assert {"call_list", "sla_status", "quality_issues", "mail_delivery"} <= set(names)
                with engine.begin() as conn:
                    for name in names:
                        conn.exec_driver_sql(f"DROP TABLE {name}")
            finally:
                engine.dispose()


# The sla_status table as the first release made it: no due_today .. policy_version.
OLD_SLA_STATUS = """CREATE TABLE sla_status (
    run_date DATE NOT NULL, ticket_id VARCHAR(16) NOT NULL, metric VARCHAR(32) NOT NULL,
    customer_id VARCHAR(16), department_id VARCHAR(16), priority VARCHAR(16),
    started_at {ts}, deadline {ts}, achieved_at {ts},
    status VARCHAR(16) NOT NULL, overdue_minutes INTEGER NOT NULL,
    PRIMARY KEY (run_date, ticket_id, metric))"""
NEW_SLA_COLUMNS = ["due_today", "target", "elapsed_minutes", "paused_minutes", "policy_version"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_older_results_database_gets_the_new_sla_columns(backend: str, tmp_path: Path):
    """ensure_schema adds the explanation columns to an sla_status table made before them
    (parallel tasks at once, then again: idempotent); old rows keep NULL there, new rows
    arrive whole (due_today a boolean)."""
    day, old_day = dt.date(2026, 11, 20), dt.date(2026, 11, 19)
    with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            ts = "DATETIME" if backend == "mariadb" else "TIMESTAMP"
            with engine.begin() as conn:
                conn.exec_driver_sql(OLD_SLA_STATUS.format(ts=ts))
                conn.exec_driver_sql(
                    "INSERT INTO sla_status (run_date, ticket_id, metric, status, "
                    "overdue_minutes) VALUES ('2026-11-19', 'T0', 'plan', 'met', 0)")
            assert _create_all_at_once(url, callers=4) == []
            ensure_schema(engine)  # nothing left to add
            columns = [c["name"] for c in inspect(engine).get_columns("sla_status")]
            assert columns[-len(NEW_SLA_COLUMNS):] == NEW_SLA_COLUMNS
            replace_partition(engine, "sla_status", day, _sla_rows(4, "pending"))
            with engine.connect() as conn:
                old = conn.execute(text(
                    "SELECT due_today, target, elapsed_minutes, paused_minutes, policy_version "
                    "FROM sla_status WHERE run_date = :d"), {"d": old_day}).all()
                new = conn.execute(text(
                    "SELECT ticket_id, due_today, target, elapsed_minutes, policy_version "
                    "FROM sla_status WHERE run_date = :d ORDER BY ticket_id"), {"d": day}).all()
        finally:
            engine.dispose()
    assert [tuple(r) for r in old] == [(None, None, None, None, None)]
    assert [(r[0], bool(r[1]), r[2], r[3], r[4]) for r in new] == [
        (f"T{i:07d}", i % 2 == 0, "2 business_hours", 60, "0123456789ab") for i in range(4)]


def _kpi_rows(month: str, value: float) -> pd.DataFrame:
    return pd.DataFrame({"month": month, "department_id": ["D01", "D01", "ALL"],
                         "metric": ["visits_due", "visit_timeliness_rate", "visits_due"],
                         "value": [value, float("nan"), value + 1]})


def _agent_rows(month: str, due: int) -> pd.DataFrame:
    return pd.DataFrame({
        "month": month, "department_id": ["D01", "D01", "D02"],
        "agent_id": ["A0001", "A0003", "A0003"], "visits_due": [due, 0, 2],
        "visits_on_time": [due - 1, 0, 2], "visits_made": [5, 0, 1], "visits_reached": [4, 0, 1],
        "avg_visit_satisfaction": [85.5, float("nan"), 90.0], "tickets_handled": [3, 0, 0],
        "sla_breaches": [1, 0, 0]}).loc[:, list(AGENT_COLUMNS)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_monthly_kpis_and_agent_rows_are_replaced_by_month(backend: str, tmp_path: Path):
    """A rerun of M replaces M's kpis and agent_kpis rows (no duplicates), other months stay;
    an undefined value is NULL."""
    with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            ensure_schema(engine)
            replace_months(engine, "2026-09", {"kpis": _kpi_rows("2026-09", 3.0),
                                               "agent_kpis": _agent_rows("2026-09", 3)})
            for due in (7, 8):  # the run of October, then its rerun
                written = replace_months(engine, "2026-10", {
                    "kpis": _kpi_rows("2026-10", float(due)),
                    "agent_kpis": _agent_rows("2026-10", due)})
            with engine.connect() as conn:
                kpis = conn.execute(text(
                    "SELECT month, department_id, metric, value FROM kpis "
                    "ORDER BY month, department_id, metric")).all()
                agents = conn.execute(text(
                    "SELECT month, department_id, agent_id, visits_due, avg_visit_satisfaction "
                    "FROM agent_kpis ORDER BY month, department_id, agent_id")).all()
        finally:
            engine.dispose()
    assert written == {"kpis": 3, "agent_kpis": 3}
    assert [tuple(r) for r in kpis] == [
        ("2026-09", "ALL", "visits_due", 4.0), ("2026-09", "D01", "visit_timeliness_rate", None),
        ("2026-09", "D01", "visits_due", 3.0),
        ("2026-10", "ALL", "visits_due", 9.0), ("2026-10", "D01", "visit_timeliness_rate", None),
        ("2026-10", "D01", "visits_due", 8.0)]
    assert [tuple(r) for r in agents] == [
        ("2026-09", "D01", "A0001", 3, 85.5), ("2026-09", "D01", "A0003", 0, None),
        ("2026-09", "D02", "A0003", 2, 90.0),
        ("2026-10", "D01", "A0001", 8, 85.5), ("2026-10", "D01", "A0003", 0, None),
        ("2026-10", "D02", "A0003", 2, 90.0)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_call_list_history_of_a_month_is_read_back(backend: str, tmp_path: Path):
    """What the daily publish wrote, read for the monthly per-agent credit: the run dates of
    the month only; None before any call list was published."""
    calls = pd.DataFrame({"agent_id": ["A0002", "A0003"], "list_rank": [1, 1],
                          "customer_id": ["C00001", "C00002"], "tier": "standard",
                          "reasons": ["welcome;early_use", "periodic"],
                          "window_end": [dt.date(2026, 10, 15)] * 2, "overdue_days": 0,
                          "ticket_id": None, "order_id": None, "suggested_window": None})
    with scratch_database(backend, tmp_path) as url:
        before = call_list_history(url, dt.date(2026, 10, 1), dt.date(2026, 11, 1))
        engine = create_engine(url)
        try:
            ensure_schema(engine)
            for day in (dt.date(2026, 9, 30), dt.date(2026, 10, 13), dt.date(2026, 11, 2)):
                replace_partition(engine, "call_list", day, calls)
        finally:
            engine.dispose()
        history = call_list_history(url, dt.date(2026, 10, 1), dt.date(2026, 11, 1))
    assert before is None
    assert history is not None
    assert history.sort_values("agent_id").to_dict("records") == [
        {"run_date": pd.Timestamp("2026-10-13"), "agent_id": "A0002", "customer_id": "C00001",
         "reasons": "welcome;early_use"},
        {"run_date": pd.Timestamp("2026-10-13"), "agent_id": "A0003", "customer_id": "C00002",
         "reasons": "periodic"}]
