"""Extract: the CRM as of D 00:00, streamed to Parquet, with clear errors and atomic partitions."""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest

from revisit.config.schema import TABLES
from revisit.io.extract import PARSE_ERRORS, ExtractError, extract_snapshot, read_snapshot
from tests.crm_fixtures import minimal_rows, sqlite_crm

TZ = "Asia/Shanghai"
D = dt.date(2026, 10, 16)


def _ticket(ticket_id: str, created: str, **stamps) -> dict:
    row = {"ticket_id": ticket_id, "customer_id": "C0000001", "order_id": None,
           "department_id": "D01", "handler_agent_id": "A002", "type": "complaint",
           "channel": "phone", "priority": "urgent", "category": "quality_failure",
           "description": "设备无法启动", "created_at": created, "status": "pending",
           "satisfaction": None}
    for name in ("first_response_at", "verified_at", "plan_at", "resolved_at",
                 "result_fed_back_at", "closed_at"):
        row[name] = stamps.pop(name, None)
    row.update(stamps)
    return row


def _snapshot(tmp_path, rows, **kwargs):
    url = sqlite_crm(tmp_path, rows, **kwargs.pop("crm", {}))
    target = tmp_path / "snap"
    counts = extract_snapshot(url, D, target, business_tz=TZ, source_tz=TZ, **kwargs)
    return counts, read_snapshot(target)


def test_snapshot_has_every_table_with_canonical_columns(tmp_path):
    counts, frames = _snapshot(tmp_path, minimal_rows())
    assert counts == {"departments": 1, "agents": 2, "customers": 1, "orders": 0, "tickets": 0,
                      "ticket_pauses": 0, "visits": 0}
    for name, table in TABLES.items():
        assert list(frames[name].columns) == [*table.columns, PARSE_ERRORS]
    assert frames["customers"].loc[0, "name"] == "上海恒信科技有限公司"


def test_rows_stamped_at_or_after_the_cutoff_have_not_happened_yet(tmp_path):
    rows = minimal_rows()
    rows["orders"] = [
        {"order_id": "O1", "customer_id": "C0000001", "ordered_at": "2026-10-15 23:59:59",
         "delivered_at": "2026-10-16 00:00:00", "amount": 10},   # delivered exactly at cut-off
        {"order_id": "O2", "customer_id": "C0000001", "ordered_at": "2026-10-16 00:00:00",
         "delivered_at": None, "amount": 10},                    # ordered at the cut-off
    ]
    _, frames = _snapshot(tmp_path, rows)
    orders = frames["orders"]
    assert orders["order_id"].tolist() == ["O1"]
    assert pd.isna(orders.loc[0, "delivered_at"])


def test_ticket_closed_after_the_cutoff_is_not_closed_in_the_snapshot(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket(
        "T1", "2026-10-14 10:00:00", first_response_at="2026-10-14 11:00:00",
        resolved_at="2026-10-15 16:00:00", closed_at="2026-10-16 09:00:00",
        status="closed", satisfaction=5)]
    _, frames = _snapshot(tmp_path, rows)
    ticket = frames["tickets"].iloc[0]
    assert pd.isna(ticket["closed_at"])
    assert ticket["status"] == "resolved"           # what its remaining stamps say
    assert pd.isna(ticket["satisfaction"])          # given on closing, which has not happened
    assert ticket["resolved_at"] == pd.Timestamp("2026-10-15 16:00:00")


def test_unparseable_values_are_reported_per_row_not_dropped(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket("T1", "2026-10-14 10:00:00", first_response_at="soon",
                               satisfaction="five")]
    _, frames = _snapshot(tmp_path, rows)
    ticket = frames["tickets"].iloc[0]
    assert "first_response_at: not a datetime (soon)" in ticket[PARSE_ERRORS]
    assert "satisfaction: not an int (five)" in ticket[PARSE_ERRORS]
    assert pd.isna(frames["customers"].loc[0, PARSE_ERRORS])


def test_rows_without_their_stamp_are_kept_for_the_quality_gate(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket("T1", None)]
    _, frames = _snapshot(tmp_path, rows)
    assert frames["tickets"]["ticket_id"].tolist() == ["T1"]


def test_small_chunks_give_the_same_snapshot(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket(f"T{i}", f"2026-10-{10 + i % 5} 10:00:00") for i in range(23)]
    _, whole = _snapshot(tmp_path, rows)
    target = tmp_path / "chunked"
    extract_snapshot(f"sqlite:///{tmp_path / 'crm.sqlite'}", D, target, business_tz=TZ,
                     source_tz=TZ, chunk_rows=4)
    chunked = read_snapshot(target)
    for name in TABLES:
        pd.testing.assert_frame_equal(whole[name], chunked[name])


def test_a_snapshot_table_reads_in_whole_row_groups_of_at_most_the_chunk_size(tmp_path):
    """Row groups of 3, 3, 5, 1 rows in chunks of 4: [3], [3], [4, 1] (the 5 cut), [1]; in
    the file's order, every row once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from revisit.io.extract import _row_group_chunks

    path = tmp_path / "t.parquet"
    with pq.ParquetWriter(path, pa.schema([("n", pa.int64())])) as writer:
        start = 0
        for size in (3, 3, 5, 1):
            writer.write_table(pa.table({"n": list(range(start, start + size))}))
            start += size
    chunks = list(_row_group_chunks(pq.ParquetFile(path), 4, None))
    assert [c.num_rows for c in chunks] == [3, 3, 4, 1, 1]
    assert pa.concat_tables(chunks).column("n").to_pylist() == list(range(12))
    no_columns = _row_group_chunks(pq.ParquetFile(path), 4, [])
    assert [c.num_rows for c in no_columns] == [3, 3, 4, 1, 1]
    (whole,) = _row_group_chunks(pq.ParquetFile(path), 100, ["n"])
    assert whole.num_rows == 12


def test_two_workers_give_the_same_snapshot_as_one(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket(f"T{i}", f"2026-10-{10 + i % 5} 10:00:00") for i in range(23)]
    _, one = _snapshot(tmp_path, rows, workers=1)
    target = tmp_path / "two"
    counts = extract_snapshot(f"sqlite:///{tmp_path / 'crm.sqlite'}", D, target,
                              business_tz=TZ, source_tz=TZ, workers=2)
    two = read_snapshot(target)
    assert list(counts) == list(TABLES) and counts["tickets"] == 23
    for name in TABLES:
        pd.testing.assert_frame_equal(one[name], two[name])


def test_a_large_sqlite_crm_is_read_by_two_processes_a_small_one_by_one(tmp_path, monkeypatch):
    from sqlalchemy.engine import make_url

    from revisit.io import extract as module

    url = make_url(sqlite_crm(tmp_path, minimal_rows()))
    assert module.default_workers(url) == 1
    monkeypatch.setattr(module, "PARALLEL_FROM_BYTES", 1)
    assert module.default_workers(url) == (2 if len(os.sched_getaffinity(0)) > 1 else 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_required_table_fails_clearly_in_either_process(tmp_path, workers):
    with pytest.raises(ExtractError, match=r"table visits: not found in the CRM"):
        _snapshot(tmp_path, minimal_rows(), crm={"skip_tables": ("visits",)}, workers=workers)
    (tmp_path / "b").mkdir()
    with pytest.raises(ExtractError, match=r"table orders: not found in the CRM"):
        _snapshot(tmp_path / "b", minimal_rows(), crm={"skip_tables": ("orders",)},
                  workers=workers)
    assert not (tmp_path / "snap").exists()


def test_source_timezone_is_converted_to_business_time(tmp_path):
    rows = minimal_rows()
    rows["tickets"] = [_ticket("T1", "2026-10-15 08:00:00")]  # 08:00 UTC = 16:00 Shanghai
    url = sqlite_crm(tmp_path, rows)
    target = tmp_path / "snap"
    extract_snapshot(url, D, target, business_tz=TZ, source_tz="UTC")
    created = read_snapshot(target)["tickets"].loc[0, "created_at"]
    assert created == pd.Timestamp("2026-10-15 16:00:00")


def test_missing_column_fails_naming_table_and_column(tmp_path, monkeypatch):
    url = sqlite_crm(tmp_path, minimal_rows())
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    from revisit.io import extract as module

    for path in module.EXTRACT_SQL_DIR.glob("*.sql"):
        (sql_dir / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (sql_dir / "agents.sql").write_text(
        "SELECT agent_id, name, email, department_id, role, active FROM agents", encoding="utf-8")
    (sql_dir / "visits.sql").write_text("SELECT visit_id FROM visits", encoding="utf-8")
    monkeypatch.setattr(module, "EXTRACT_SQL_DIR", sql_dir)
    with pytest.raises(ExtractError, match=r"table agents: .*no column daily_capacity"):
        extract_snapshot(url, D, tmp_path / "snap", business_tz=TZ, source_tz=TZ)
    with pytest.raises(ExtractError, match=r"table visits: .*no column customer_id"):
        (sql_dir / "agents.sql").unlink()
        (sql_dir / "agents.sql").write_text(
            (module.SQL_DIR / "extract" / "agents.sql").read_text(encoding="utf-8"),
            encoding="utf-8")
        extract_snapshot(url, D, tmp_path / "snap", business_tz=TZ, source_tz=TZ, workers=2)


def test_optional_pauses_table_may_be_absent(tmp_path):
    counts, frames = _snapshot(tmp_path, minimal_rows(), crm={"skip_tables": ("ticket_pauses",)})
    assert counts["ticket_pauses"] == 0
    assert list(frames["ticket_pauses"].columns)[:3] == ["ticket_id", "paused_at", "resumed_at"]


def test_unreachable_database_fails_with_the_url_but_no_password(tmp_path):
    url = "postgresql+psycopg2://revisit:secret@127.0.0.1:1/crm"
    with pytest.raises(ExtractError) as caught:
        extract_snapshot(url, D, tmp_path / "snap", business_tz=TZ, source_tz=TZ)
    message = str(caught.value)
    assert "cannot read table departments" in message and "127.0.0.1:1" in message
    assert "secret" not in message


def test_failed_extract_keeps_the_previous_partition_whole(tmp_path):
    url = sqlite_crm(tmp_path, minimal_rows())
    target = tmp_path / "snap"
    extract_snapshot(url, D, target, business_tz=TZ, source_tz=TZ)
    before = sorted(p.name for p in target.iterdir())
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE visits")
    with pytest.raises(ExtractError):
        extract_snapshot(url, D, target, business_tz=TZ, source_tz=TZ)
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".snap")] == []


def test_odd_but_meaningful_values_parse_and_junk_does_not():
    """Offsets in a naive text column convert (pandas would refuse the whole column), blank
    text and MySQL's zero date mean no value, a bare number or 'inf' is no timestamp or amount,
    control characters go from text."""
    from revisit.io.extract import _typed

    table = TABLES["orders"]
    raw = pd.DataFrame({
        "order_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
        "customer_id": ["C\x001", "C1", "C1", "C1", "C1", "C1"],
        "product": ["a\x07b\tc", None, None, None, None, None],
        "product_version": None,
        "amount": pd.Series(["1", "", "inf", "1e400", None, " "], dtype=object),
        "ordered_at": pd.Series(["2026-11-05T02:00:00Z", "2026-11-05 10:00 +0800", "  ",
                                 "0000-00-00 00:00:00", 1700000000, "2026-11-05 10:00 CST"],
                                dtype=object),
        "delivered_at": None,
    })
    out = _typed(table, raw, "Asia/Shanghai", "Asia/Shanghai")
    assert out["ordered_at"].tolist()[:2] == [pd.Timestamp("2026-11-05 10:00")] * 2
    assert out["ordered_at"].iloc[2:].isna().all()
    assert out["customer_id"].iloc[0] == "C1" and out["product"].iloc[0] == "ab\tc"
    errors = out[PARSE_ERRORS].tolist()
    assert errors[0] is pd.NA and errors[1] is pd.NA  # blank amount: no value, no error
    assert errors[2] == "amount: not a money (inf)"
    assert errors[3] == "amount: not a money (1e400)"
    assert errors[4] == "ordered_at: not a datetime (1700000000)"
    assert errors[5] == "ordered_at: not a datetime (2026-11-05 10:00 CST)"


def test_text_that_is_not_utf8_does_not_fail_the_extract(tmp_path):
    import sqlite3

    crm = sqlite_crm(tmp_path, minimal_rows())
    with sqlite3.connect(crm.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE customers SET name = CAST(X'E4B8ADFF41' AS TEXT)")
    extract_snapshot(crm, D, tmp_path / "snap", business_tz=TZ)
    assert read_snapshot(tmp_path / "snap")["customers"]["name"].tolist() == ["中\ufffdA"]


def test_a_stamp_that_does_not_parse_reaches_the_gate_whatever_it_sorts_like(tmp_path):
    """Text stamps compare as text in SQLite: 'yesterday' sorts after any date, so a WHERE on
    the stamp in the extract SQL would drop the row unseen."""
    rows = minimal_rows()
    rows["customers"][0]["created_at"] = "yesterday"
    crm = sqlite_crm(tmp_path, rows)
    extract_snapshot(crm, D, tmp_path / "snap", business_tz=TZ)
    customers = read_snapshot(tmp_path / "snap")["customers"]
    assert customers[PARSE_ERRORS].tolist() == ["created_at: not a datetime (yesterday)"]


# ----------------------------------------------------------------- local time, one rule
def _stamps(values: list, business: str, source: str) -> pd.DataFrame:
    from revisit.io.extract import _typed

    raw = pd.DataFrame({col: None for col in TABLES["visits"].columns},
                       index=range(len(values)))
    raw["visit_id"] = [f"V{n}" for n in range(len(values))]
    raw["visited_at"] = pd.Series(values, dtype=object)
    return _typed(TABLES["visits"], raw, business, source)[["visited_at", PARSE_ERRORS]]


def test_a_year_9999_stamp_west_of_utc_is_a_parse_error_not_a_crash(tmp_path):
    rows = minimal_rows()
    rows["visits"] = [{"visit_id": "V1", "customer_id": "C0000001", "agent_id": "A002",
                       "kind": "periodic", "visited_at": "9999-12-31 23:00:00",
                       "outcome": "reached"}]
    url = sqlite_crm(tmp_path, rows)
    counts = extract_snapshot(url, D, tmp_path / "snap", business_tz=TZ,
                              source_tz="America/New_York")
    visits = read_snapshot(tmp_path / "snap")["visits"]
    assert counts["visits"] == 1 and pd.isna(visits.loc[0, "visited_at"])
    assert visits[PARSE_ERRORS].tolist() == [
        "visited_at: outside the years 1 to 9999 in UTC or in America/New_York "
        "(9999-12-31 23:00:00)"]


def test_a_stamp_that_leaves_the_years_1_to_9999_in_the_business_zone_is_reported():
    out = _stamps(["9999-12-31 20:00:00", "9999-12-31 00:00:00"], "Asia/Shanghai", "UTC")
    assert out[PARSE_ERRORS].tolist() == [
        "visited_at: outside the years 1 to 9999 in UTC or in Asia/Shanghai "
        "(9999-12-31 20:00:00)", pd.NA]
    assert out["visited_at"].iloc[1] == pd.Timestamp("9999-12-31 08:00")


def test_an_ambiguous_local_time_is_reported_as_dst_fall_back_not_as_junk():
    out = _stamps(["2026-10-25 01:30:00", "2026-10-25 02:30:00", "2026-10-25 03:30:00"],
                  "Asia/Shanghai", "Europe/Berlin")
    assert out[PARSE_ERRORS].tolist() == [
        pd.NA, "visited_at: ambiguous local time (DST fall-back) in Europe/Berlin "
               "(2026-10-25 02:30:00)", pd.NA]
    assert out["visited_at"].tolist()[::2] == [pd.Timestamp("2026-10-25 07:30"),  # +02:00
                                               pd.Timestamp("2026-10-25 10:30")]  # +01:00


def test_a_skipped_local_time_is_reported_as_dst_spring_forward_not_moved():
    out = _stamps(["2026-03-29 01:30:00", "2026-03-29 02:30:00", "2026-03-29 03:30:00"],
                  "Asia/Shanghai", "Europe/Berlin")
    assert out[PARSE_ERRORS].tolist() == [
        pd.NA, "visited_at: does not exist (DST spring-forward) in Europe/Berlin "
               "(2026-03-29 02:30:00)", pd.NA]
    assert pd.isna(out["visited_at"].iloc[1])
    assert out["visited_at"].tolist()[::2] == [pd.Timestamp("2026-03-29 08:30"),
                                               pd.Timestamp("2026-03-29 09:30")]


def test_the_local_time_rule_holds_when_the_crm_stamps_in_business_time():
    out = _stamps(["2026-10-25 02:30:00", "2026-03-29 02:30:00", "2026-03-29 03:30:00"],
                  "Europe/Berlin", "Europe/Berlin")
    assert [e.split(" in ")[0] for e in out[PARSE_ERRORS].dropna()] == [
        "visited_at: ambiguous local time (DST fall-back)",
        "visited_at: does not exist (DST spring-forward)"]
    assert out["visited_at"].iloc[2] == pd.Timestamp("2026-03-29 03:30")  # kept as written


def test_an_offset_stamp_is_converted_once_when_the_source_zone_differs():
    out = _stamps(["2026-11-05T02:00:00Z", "2026-11-05 10:00:00"], "Asia/Shanghai",
                  "America/New_York")
    assert out["visited_at"].tolist() == [pd.Timestamp("2026-11-05 10:00"),  # its own instant
                                          pd.Timestamp("2026-11-05 23:00")]  # New York time
    assert out[PARSE_ERRORS].isna().all()


def test_an_offset_stamp_beside_an_old_naive_one_does_not_overflow():
    """Merging the two kinds went through nanoseconds (years 1677-2262 only)."""
    out = _stamps(["1600-01-01 10:00:00", "2026-11-05T02:00:00Z", "9999-12-31T23:00:00-05:00"],
                  "Asia/Shanghai", "Asia/Shanghai")
    assert out["visited_at"].tolist()[:2] == [pd.Timestamp("1600-01-01 10:00"),
                                              pd.Timestamp("2026-11-05 10:00")]
    assert out[PARSE_ERRORS].tolist()[2] == (
        "visited_at: outside the years 1 to 9999 in UTC or in Asia/Shanghai "
        "(9999-12-31T23:00:00-05:00)")


# ----------------------------------------------------------------- nothing changes silently
def test_replaced_text_is_counted_in_the_snapshot(tmp_path):
    import sqlite3

    from revisit.io.extract import REPLACED_KEY, SnapshotTables, replaced_values

    rows = minimal_rows()
    customer = rows["customers"][0]
    rows["customers"] += [{**customer, "customer_id": "C2", "contact_name": "陈\x00明"},
                          {**customer, "customer_id": "C3", "created_at": "2026-10-17 10:00"}]
    crm = sqlite_crm(tmp_path, rows)
    with sqlite3.connect(crm.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE customers SET name = CAST(X'E4B8ADFF41' AS TEXT) "
                     "WHERE customer_id IN ('C0000001', 'C3')")  # C3 is after the cut-off
    extract_snapshot(crm, D, tmp_path / "snap", business_tz=TZ)
    expected = [
        {"column": "name", "change": "invalid_utf8", "values": 1, "keys": ["C0000001"]},
        {"column": "contact_name", "change": "control_characters", "values": 1,
         "keys": ["C2"]},
    ]
    assert sorted(replaced_values(tmp_path / "snap" / "customers.parquet"),
                  key=lambda r: r["change"]) == sorted(expected, key=lambda r: r["change"])
    tables = SnapshotTables(tmp_path / "snap")
    assert tables["customers"].attrs[REPLACED_KEY] == replaced_values(
        tmp_path / "snap" / "customers.parquet")
    assert tables["agents"].attrs[REPLACED_KEY] == []
    assert list(tables["customers"].columns) == [*TABLES["customers"].columns, PARSE_ERRORS]
