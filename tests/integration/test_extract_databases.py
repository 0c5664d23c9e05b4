"""Extract against SQLite, PostgreSQL and MariaDB holding the same CRM (the demo CRM plus rows
stamped right at the cut-off): the Parquet snapshots are identical (rows, values, dtypes), the
run for D sees the CRM as of D 00:00 local, chunking changes nothing, and an unreachable
database fails with a message that names its host but not its password."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import column, create_engine, insert, table

from revisit.config.schema import TABLES
from revisit.io.extract import PARSE_ERRORS, ExtractError, extract_snapshot, read_snapshot
from tests.crm_fixtures import build_crm, minimal_rows
from tests.integration.crm_databases import BACKENDS, normalised, scratch_database
from tooling.demo_crm import build_demo_crm, generate_frames

CUSTOMERS = 300
SEED = 7
CALL_DATE = dt.date(2026, 10, 16)          # D; the demo CRM runs to 2026-11-20
CUT = dt.datetime(2026, 10, 16)            # D 00:00, business-local (= source-local here)
BUSINESS_TZ = "Asia/Shanghai"
SMALL_CHUNK = 37                           # rows per fetch: many chunks, uneven boundaries
SECOND = dt.timedelta(seconds=1)
Frames = dict[str, pd.DataFrame]


def _row(table_name: str, /, **values: Any) -> dict[str, Any]:
    """A full row of `table_name`: the given values, NULL elsewhere."""
    assert set(values) <= set(TABLES[table_name].columns), values
    return {col: values.get(col) for col in TABLES[table_name].columns}


# Rows stamped just before and exactly at the cut-off (ids outside the demo's ranges).
BOUNDARY = {
    "customers": [
        _row("customers", customer_id="C9000001", name="边界前科技有限公司", tier="standard",
             owner_agent_id="A0001", department_id="D01", do_not_call=0,
             cooperation_start_date=dt.date(2026, 10, 15), created_at=CUT - SECOND,
             updated_at=CUT + dt.timedelta(days=2)),
        _row("customers", customer_id="C9000002", name="边界上科技有限公司", tier="key",
             owner_agent_id="A0001", department_id="D01", do_not_call=0,
             cooperation_start_date=dt.date(2026, 10, 16), created_at=CUT, updated_at=CUT),
    ],
    "orders": [
        _row("orders", order_id="O900000001", customer_id="C9000001", product="云客服系统",
             amount=38000.5, ordered_at=CUT - SECOND, delivered_at=CUT),
        _row("orders", order_id="O900000002", customer_id="C9000001", ordered_at=CUT),
    ],
    "tickets": [
        _row("tickets", ticket_id="T900000001", customer_id="C9000001", department_id="D01",
             type="complaint", priority="urgent", status="closed", satisfaction=5,
             created_at=CUT - dt.timedelta(hours=2), first_response_at=CUT - SECOND,
             verified_at=CUT, plan_at=CUT + SECOND, resolved_at=CUT + dt.timedelta(hours=1),
             result_fed_back_at=CUT + dt.timedelta(hours=2),
             closed_at=CUT + dt.timedelta(hours=3)),
        _row("tickets", ticket_id="T900000002", customer_id="C9000001", department_id="D01",
             type="repair", priority="general", status="pending", created_at=CUT),
    ],
    "ticket_pauses": [
        _row("ticket_pauses", ticket_id="T900000001", paused_at=CUT - dt.timedelta(minutes=30),
             resumed_at=CUT),
        _row("ticket_pauses", ticket_id="T900000001", paused_at=CUT),
    ],
    "visits": [
        _row("visits", visit_id="V9000000001", customer_id="C9000001", agent_id="A0001",
             kind="welcome", order_id="O900000001", visited_at=CUT - SECOND, method="phone",
             outcome="reached", satisfaction=9, notes="边界回访"),
        _row("visits", visit_id="V9000000002", customer_id="C9000001", agent_id="A0001",
             kind="welcome", order_id="O900000001", visited_at=CUT, method="phone",
             outcome="no_answer"),
    ],
}


@dataclass(frozen=True)
class Snapshots:
    """What extract made of one database."""

    backend: str
    folder: Path
    counts: dict[str, int]
    frames: Frames          # default chunk size
    chunked: Frames         # chunk_rows=SMALL_CHUNK
    chunked_counts: dict[str, int]
    utc: Frames             # the same rows read as UTC source time


def _load(url: str) -> None:
    build_demo_crm(url, CUSTOMERS, seed=SEED)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for name, rows in BOUNDARY.items():
                target = table(name, *(column(c) for c in TABLES[name].columns))
                conn.execute(insert(target), rows)
    finally:
        engine.dispose()


def _snapshots(backend: str, folder: Path) -> Iterator[Snapshots]:
    with scratch_database(backend, folder) as url:
        _load(url)
        out = folder / "snapshots"
        counts = extract_snapshot(url, CALL_DATE, out / "default", business_tz=BUSINESS_TZ,
                                  source_tz=BUSINESS_TZ)
        chunked_counts = extract_snapshot(url, CALL_DATE, out / "chunked",
                                          business_tz=BUSINESS_TZ, source_tz=BUSINESS_TZ,
                                          chunk_rows=SMALL_CHUNK)
        extract_snapshot(url, CALL_DATE, out / "utc", business_tz=BUSINESS_TZ, source_tz="UTC")
        yield Snapshots(backend, out, counts, read_snapshot(out / "default"), read_snapshot(
            out / "chunked"), chunked_counts, read_snapshot(out / "utc"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Iterator[Snapshots]:
    """The SQLite snapshots, which the servers' are compared with."""
    yield from _snapshots("sqlite", tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="module", params=BACKENDS)
def snaps(request, reference, tmp_path_factory) -> Iterator[Snapshots]:
    if request.param == "sqlite":
        yield reference
    else:
        yield from _snapshots(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def source() -> Frames:
    """What the databases hold: the generated demo CRM plus the boundary rows."""
    frames = generate_frames(CUSTOMERS, seed=SEED)
    for name, rows in BOUNDARY.items():
        extra = pd.DataFrame(rows, columns=list(TABLES[name].columns))
        frames[name] = pd.concat([normalised(name, frames[name]), normalised(name, extra)],
                                 ignore_index=True)
    return {name: normalised(name, frame) for name, frame in frames.items()}


def _by_key(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Row order is the database's (extract has no ORDER BY): compare sorted by key."""
    return frame.sort_values(list(TABLES[name].key)).reset_index(drop=True)


def _keys(name: str, frame: pd.DataFrame) -> set[tuple]:
    return set(frame[list(TABLES[name].key)].itertuples(index=False, name=None))


# ------------------------------------------------------------------ same data, same snapshot
def test_snapshot_equals_sqlite_snapshot(snaps: Snapshots, reference: Snapshots) -> None:
    assert snaps.counts == reference.counts
    for name in TABLES:
        ours, theirs = snaps.frames[name], reference.frames[name]
        assert list(ours.columns) == [*TABLES[name].columns, PARSE_ERRORS], name
        assert ours.dtypes.to_dict() == theirs.dtypes.to_dict(), name
        pd.testing.assert_frame_equal(_by_key(name, ours), _by_key(name, theirs), obj=name)


def test_parquet_schemas_are_identical(snaps: Snapshots, reference: Snapshots) -> None:
    for name in TABLES:
        ours = pq.read_schema(snaps.folder / "default" / f"{name}.parquet")
        theirs = pq.read_schema(reference.folder / "default" / f"{name}.parquet")
        assert ours.equals(theirs), name


def test_every_value_parsed(snaps: Snapshots) -> None:
    for name, frame in snaps.frames.items():
        assert frame[PARSE_ERRORS].isna().all(), (name, frame[PARSE_ERRORS].dropna().head())


def test_values_are_the_sources(snaps: Snapshots, source: Frames) -> None:
    """Rows untouched by the cut-off come through value for value (Chinese text included)."""
    visits = source["visits"][source["visits"]["visited_at"] < CUT].reset_index(drop=True)
    pd.testing.assert_frame_equal(normalised("visits", snaps.frames["visits"]), visits)
    departments = normalised("departments", snaps.frames["departments"])
    pd.testing.assert_frame_equal(departments, source["departments"])
    agents = normalised("agents", snaps.frames["agents"])
    pd.testing.assert_frame_equal(agents, source["agents"])


# ------------------------------------------------------------------ the cut-off
@pytest.mark.parametrize(("name", "stamp"), [
    ("customers", "created_at"), ("orders", "ordered_at"), ("tickets", "created_at"),
    ("ticket_pauses", "paused_at"), ("visits", "visited_at"),
])
def test_rows_stamped_at_or_after_the_cutoff_are_absent(snaps: Snapshots, source: Frames,
                                                        name: str, stamp: str) -> None:
    frame = source[name]
    before = frame[frame[stamp] < CUT]
    assert len(before) < len(frame), "the data should straddle the cut-off"
    assert _keys(name, snaps.frames[name]) == _keys(name, before)


def test_no_stamp_at_or_after_the_cutoff(snaps: Snapshots) -> None:
    for name, table_ in TABLES.items():
        for col in table_.columns_of("datetime", "date"):
            values = pd.to_datetime(snaps.frames[name][col])
            assert not (values >= pd.Timestamp(CUT)).any(), (name, col)


def test_boundary_rows(snaps: Snapshots) -> None:
    frames = {name: frame.set_index(list(TABLES[name].key)) for name, frame in
              snaps.frames.items()}
    assert "C9000002" not in frames["customers"].index
    customer = frames["customers"].loc["C9000001"]
    assert customer["created_at"] == pd.Timestamp(CUT - SECOND)
    assert pd.isna(customer["updated_at"])
    order = frames["orders"].loc["O900000001"]
    assert order["amount"] == 38000.5 and pd.isna(order["delivered_at"])
    assert "O900000002" not in frames["orders"].index
    ticket = frames["tickets"].loc["T900000001"]
    assert ticket["first_response_at"] == pd.Timestamp(CUT - SECOND)
    assert ticket[["verified_at", "plan_at", "resolved_at", "result_fed_back_at",
                   "closed_at"]].isna().all()
    assert ticket["status"] == "in_progress"  # closed only after the cut-off
    assert pd.isna(ticket["satisfaction"])
    assert "T900000002" not in frames["tickets"].index
    pauses = frames["ticket_pauses"].loc["T900000001"]
    assert len(pauses) == 1 and pauses["resumed_at"].isna().all()
    assert "V9000000001" in frames["visits"].index
    assert "V9000000002" not in frames["visits"].index


def test_source_time_zone_moves_the_cutoff_and_the_stamps(snaps: Snapshots,
                                                          source: Frames) -> None:
    """Source stamps in UTC: D 00:00 Shanghai is D-1 16:00 UTC, and stamps gain 8 hours."""
    visits = source["visits"]
    before = visits[visits["visited_at"] < CUT - dt.timedelta(hours=8)]
    got = normalised("visits", snaps.utc["visits"])
    assert set(got["visit_id"]) == set(before["visit_id"])
    expected = (before["visited_at"] + pd.Timedelta(hours=8)).astype("datetime64[s]")
    expected = expected.reset_index(drop=True)
    pd.testing.assert_series_equal(got["visited_at"], expected, check_names=False)


def test_utc_snapshots_are_identical_too(snaps: Snapshots, reference: Snapshots) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(_by_key(name, snaps.utc[name]),
                                      _by_key(name, reference.utc[name]), obj=name)


# ------------------------------------------------------------------ chunking
def test_small_chunks_give_the_same_snapshot(snaps: Snapshots) -> None:
    assert snaps.chunked_counts == snaps.counts
    for name in TABLES:
        pd.testing.assert_frame_equal(_by_key(name, snaps.chunked[name]),
                                      _by_key(name, snaps.frames[name]), obj=name)
    visits = pq.ParquetFile(snaps.folder / "chunked" / "visits.parquet")
    assert visits.metadata.num_row_groups >= snaps.counts["visits"] // SMALL_CHUNK
    assert pq.ParquetFile(snaps.folder / "default" / "visits.parquet").metadata.num_row_groups == 1


# ------------------------------------------------------------------ missing tables
@pytest.fixture(params=BACKENDS)
def crm_url(request, tmp_path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        yield url


def test_optional_table_may_be_missing(crm_url: str, tmp_path: Path) -> None:
    build_crm(crm_url, minimal_rows(), skip_tables=("ticket_pauses",))
    counts = extract_snapshot(crm_url, CALL_DATE, tmp_path / "snap", business_tz=BUSINESS_TZ,
                              source_tz=BUSINESS_TZ)
    assert counts["ticket_pauses"] == 0 and counts["customers"] == 1
    assert read_snapshot(tmp_path / "snap")["ticket_pauses"].empty


def test_required_table_missing_names_it(crm_url: str, tmp_path: Path) -> None:
    build_crm(crm_url, minimal_rows(), skip_tables=("visits",))
    with pytest.raises(ExtractError, match=r"table visits: not found in the CRM"):
        extract_snapshot(crm_url, CALL_DATE, tmp_path / "snap", business_tz=BUSINESS_TZ,
                         source_tz=BUSINESS_TZ)
    assert not (tmp_path / "snap").exists()


# ------------------------------------------------------------------ unreachable databases
@pytest.mark.parametrize("url", [
    "postgresql+psycopg2://revisit:s3cret-pw@127.0.0.1:1/crm",
    "mysql+pymysql://revisit:s3cret-pw@127.0.0.1:1/crm?charset=utf8mb4",
], ids=["postgresql", "mariadb"])
def test_unreachable_server_names_host_not_password(url: str, tmp_path: Path) -> None:
    target = tmp_path / "snap"
    with pytest.raises(ExtractError) as caught:
        extract_snapshot(url, CALL_DATE, target, business_tz=BUSINESS_TZ,
                         source_tz=BUSINESS_TZ)
    message = str(caught.value)
    assert "127.0.0.1" in message and ":1/crm" in message
    assert "s3cret-pw" not in message and "***" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not target.exists()


def test_unreadable_sqlite_file_names_its_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'crm.sqlite'}"
    with pytest.raises(ExtractError, match=r"no-such-folder/crm\.sqlite"):
        extract_snapshot(url, CALL_DATE, tmp_path / "snap", business_tz=BUSINESS_TZ,
                         source_tz=BUSINESS_TZ)
    assert not (tmp_path / "snap").exists()


# ------------------------------------------------------------------ awkward sources
def test_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.sqlite"
    with pytest.raises(ExtractError, match=r"typo\.sqlite does not exist"):
        extract_snapshot(f"sqlite:///{path}", CALL_DATE, tmp_path / "snap",
                         business_tz=BUSINESS_TZ, source_tz=BUSINESS_TZ)
    assert not path.exists()


@pytest.mark.postgres
def test_timestamptz_source_column_is_read_as_its_instant(tmp_path: Path) -> None:
    with scratch_database("postgresql", tmp_path) as url:
        build_crm(url, minimal_rows())
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE customers ALTER COLUMN created_at TYPE "
                                     "timestamptz USING created_at AT TIME ZONE 'Asia/Shanghai'")
        finally:
            engine.dispose()
        extract_snapshot(url, CALL_DATE, tmp_path / "snap", business_tz=BUSINESS_TZ,
                         source_tz=BUSINESS_TZ)
    customers = read_snapshot(tmp_path / "snap")["customers"]
    assert customers["created_at"].tolist() == [pd.Timestamp("2024-03-15 10:00:00")]
