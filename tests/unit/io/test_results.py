"""Results database: a run date's rows are replaced, never duplicated."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import create_engine, text

from revisit.io.results import ensure_schema, replace_partition


def _engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    ensure_schema(engine)  # idempotent
    return engine


def _sla_rows(status: str) -> pd.DataFrame:
    tz = "Asia/Shanghai"
    return pd.DataFrame({
        "ticket_id": ["T1", "T1"], "metric": ["first_response", "verification"],
        "customer_id": ["C1", "C1"], "department_id": ["D01", "D01"],
        "priority": ["urgent", "urgent"],
        "started_at": pd.to_datetime(["2026-10-15 10:00", "2026-10-15 10:00"]).tz_localize(tz),
        "deadline": pd.to_datetime(["2026-10-15 12:00", "2026-10-16 18:00"]).tz_localize(tz),
        "achieved_at": pd.to_datetime(["2026-10-15 13:00", None]).tz_localize(tz),
        "status": [status, "pending"], "overdue_minutes": [60, 0],
    })


def test_rerun_of_the_same_date_replaces_rows_instead_of_duplicating(tmp_path):
    engine = _engine(tmp_path)
    day = dt.date(2026, 10, 16)
    replace_partition(engine, "sla_status", day, _sla_rows("breached"))
    replace_partition(engine, "sla_status", day, _sla_rows("breached"))
    replace_partition(engine, "sla_status", dt.date(2026, 10, 17), _sla_rows("breached"))
    with engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT run_date, COUNT(*) FROM sla_status GROUP BY run_date ORDER BY run_date"
        )).all()
        stored = conn.execute(text(
            "SELECT deadline, achieved_at FROM sla_status WHERE run_date = '2026-10-16' "
            "ORDER BY metric")).all()
    assert [tuple(r) for r in counts] == [("2026-10-16", 2), ("2026-10-17", 2)]
    assert str(stored[0][0]).startswith("2026-10-15 12:00")  # naive business-local time
    assert stored[1][1] is None


def test_empty_frame_clears_the_date(tmp_path):
    engine = _engine(tmp_path)
    day = dt.date(2026, 10, 16)
    replace_partition(engine, "sla_status", day, _sla_rows("met"))
    replace_partition(engine, "sla_status", day, _sla_rows("met").iloc[0:0])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sla_status")).scalar() == 0


def test_a_date_replaced_part_after_part_holds_every_part_once(tmp_path):
    engine = _engine(tmp_path)
    day = dt.date(2026, 10, 16)
    replace_partition(engine, "sla_status", day, _sla_rows("met"))
    rows = pd.concat([_sla_rows("breached")] * 3, ignore_index=True)
    rows["ticket_id"] = [f"T{i}" for i in range(len(rows))]
    written = replace_partition(engine, "sla_status", day,
                                (rows.iloc[start:start + 4] for start in range(0, 6, 4)))
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT ticket_id, status FROM sla_status ORDER BY ticket_id")).all()
    assert written == 6
    assert [tuple(r) for r in stored] == [(f"T{i}", "breached" if i % 2 == 0 else "pending")
                                          for i in range(6)]


def test_a_replacement_whose_parts_fail_midway_leaves_the_previous_rows(tmp_path):
    import pytest

    engine = _engine(tmp_path)
    day = dt.date(2026, 10, 16)
    replace_partition(engine, "sla_status", day, _sla_rows("met"))

    def parts():
        yield _sla_rows("breached").assign(ticket_id=["T8", "T8"])
        raise OSError("the hand-off could not be read")

    with pytest.raises(OSError, match="could not be read"):
        replace_partition(engine, "sla_status", day, parts())
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT ticket_id, status FROM sla_status")).all()
    assert sorted(tuple(r) for r in stored) == [("T1", "met"), ("T1", "pending")]
