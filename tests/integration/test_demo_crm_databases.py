"""The demo CRM built into SQLite, PostgreSQL and MariaDB reads back exactly as generated:
same rows, Chinese text intact, timestamps equal to the second. Each server test works in its
own scratch database, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from revisit.config.schema import TABLES
from tests.integration.crm_databases import (
    BACKENDS,
    database_exists,
    normalised,
    scratch_database,
)
from tooling.demo_crm import DemoCrmError, build_demo_crm, generate_frames, main

CUSTOMERS = 120
SEED = 7


@pytest.fixture(scope="module")
def expected() -> dict[str, pd.DataFrame]:
    return generate_frames(CUSTOMERS, seed=SEED)


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
        pd.testing.assert_frame_equal(normalised(name, stored[name]),
                                      normalised(name, expected[name]), obj=name)
    # Chinese text, exactly (not just "equal after normalisation").
    names = dict(zip(stored["customers"]["customer_id"], stored["customers"]["name"],
                     strict=True))
    first = expected["customers"].iloc[0]
    assert names[first["customer_id"]] == first["name"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in first["name"])


# ------------------------------------------------------------------ every database
@pytest.fixture(params=BACKENDS)
def crm_url(request, tmp_path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        yield url


def test_round_trip(crm_url, expected) -> None:
    _assert_round_trip(crm_url, expected)


def test_replace_and_refuse(crm_url) -> None:
    first = build_demo_crm(crm_url, 40, seed=1)
    assert build_demo_crm(crm_url, 40, seed=1, replace=True) == first
    with pytest.raises(DemoCrmError, match="already exist"):
        build_demo_crm(crm_url, 40, seed=1, replace=False)
    engine = create_engine(crm_url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("visits")}
    finally:
        engine.dispose()
    assert {"ix_visits_customer_id", "ix_visits_visited_at"} <= indexes


@pytest.mark.parametrize("backend", [p for p in BACKENDS if p.values[0] != "sqlite"])
def test_scratch_database_is_dropped(backend, tmp_path) -> None:
    with scratch_database(backend, tmp_path) as url:
        name = url.rsplit("/", 1)[1].split("?")[0]
        build_demo_crm(url, 5, seed=1)
        assert database_exists(backend, name)
    assert not database_exists(backend, name)


# ------------------------------------------------------------------ SQLite specifics
def test_sqlite_folder_is_created(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'crm.sqlite'}"
    assert build_demo_crm(url, 10, seed=1)["customers"] == 10
    assert (tmp_path / "nested" / "deeper" / "crm.sqlite").is_file()


def test_cli_prints_row_counts(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["--url", url, "--customers", "30", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "customers" in out and "visits" in out and "30" in out
    assert main(["--url", url, "--customers", "30", "--no-replace"]) == 1
    assert "already exist" in capsys.readouterr().err
