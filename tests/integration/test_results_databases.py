"""The results upsert on every supported results database: rows arrive whole (missing values
as NULL, business-local stamps), a rerun replaces its date, other dates stay."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from revisit.io.results import BATCH_ROWS, ensure_schema, replace_partition
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
