"""The demo CRM built into SQLite, PostgreSQL and MariaDB reads back exactly as generated:
same rows, Chinese text intact, timestamps equal to the second."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from revisit.demo_crm import DemoCrmError, build_demo_crm, generate_frames, main
from revisit.schema import TABLES
from tests.conftest import service_unavailable

CUSTOMERS = 120
SEED = 7
POSTGRES_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
CONNECT_TIMEOUT = {"connect_timeout": 5}


@pytest.fixture(scope="module")
def expected() -> dict[str, pd.DataFrame]:
    return generate_frames(CUSTOMERS, seed=SEED)


def _normalised(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One representation for generated and read-back frames (drivers differ in types)."""
    out = pd.DataFrame(index=frame.index)
    for col, kind in TABLES[name].columns.items():
        values = frame[col]
        if kind in ("datetime", "date"):
            out[col] = pd.to_datetime(values).astype("datetime64[s]")
        elif kind in ("int", "bool"):
            out[col] = pd.to_numeric(values).astype("Int64")
        elif kind == "money":
            out[col] = pd.to_numeric(values).astype(float).round(2)
        else:
            out[col] = values.astype("str")
    return out.sort_values(list(TABLES[name].key)).reset_index(drop=True)


def _read_back(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: pd.read_sql(text(f"SELECT * FROM {name}"), conn) for name in TABLES}
    finally:
        engine.dispose()


def _assert_round_trip(url: str, expected: dict[str, pd.DataFrame]) -> None:
    counts = build_demo_crm(url, CUSTOMERS, seed=SEED)
    assert counts == {name: len(frame) for name, frame in expected.items()}
    stored = _read_back(url)
    for name in TABLES:
        assert list(stored[name].columns) == list(TABLES[name].columns), name
        pd.testing.assert_frame_equal(_normalised(name, stored[name]),
                                      _normalised(name, expected[name]), obj=name)
    # Chinese text, exactly (not just "equal after normalisation").
    names = dict(zip(stored["customers"]["customer_id"], stored["customers"]["name"],
                     strict=True))
    first = expected["customers"].iloc[0]
    assert names[first["customer_id"]] == first["name"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in first["name"])


# ------------------------------------------------------------------ SQLite
def test_sqlite_round_trip(tmp_path, expected) -> None:
    _assert_round_trip(f"sqlite:///{tmp_path / 'crm.sqlite'}", expected)


def test_sqlite_replace_and_refuse(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'crm.sqlite'}"
    first = build_demo_crm(url, 40, seed=1)
    assert build_demo_crm(url, 40, seed=1, replace=True) == first
    with pytest.raises(DemoCrmError, match="already exist"):
        build_demo_crm(url, 40, seed=1, replace=False)
    engine = create_engine(url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("visits")}
    finally:
        engine.dispose()
    assert {"ix_visits_customer_id", "ix_visits_visited_at"} <= indexes


def test_cli_prints_row_counts(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["--url", url, "--customers", "30", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "customers" in out and "visits" in out and "30" in out
    assert main(["--url", url, "--customers", "30", "--no-replace"]) == 1


# ------------------------------------------------------------------ PostgreSQL
@pytest.fixture
def postgres_url() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT",
                          connect_args=CONNECT_TIMEOUT)
    try:
        conn = admin.connect()
    except OperationalError as error:
        admin.dispose()
        service_unavailable("PostgreSQL", str(error.orig).strip().splitlines()[0])
    name = f"revisit_test_{uuid.uuid4().hex[:12]}"
    try:
        conn.exec_driver_sql(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()
        admin.dispose()


@pytest.mark.postgres
def test_postgres_round_trip(postgres_url, expected) -> None:
    _assert_round_trip(postgres_url, expected)


# ------------------------------------------------------------------ MariaDB
@pytest.fixture
def mariadb_url() -> Iterator[str]:
    admin = create_engine(MARIADB_ADMIN, connect_args=CONNECT_TIMEOUT)
    try:
        conn = admin.connect()
    except OperationalError as error:
        admin.dispose()
        service_unavailable("MariaDB", str(error.orig).strip().splitlines()[0])
    name = f"revisit_test_{uuid.uuid4().hex[:12]}"
    try:
        conn.exec_driver_sql(
            f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.close()
        admin.dispose()


@pytest.mark.mariadb
def test_mariadb_round_trip(mariadb_url, expected) -> None:
    _assert_round_trip(mariadb_url, expected)
