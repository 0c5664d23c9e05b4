"""Shared by the reliability suite: one demo CRM (built once) that each scenario copies and
corrupts in its own way, and the daily stages run over files as the DAG runs them."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from revisit.config.schema import TABLES

D = dt.date(2026, 11, 20)  # a Friday; the cut-off is 2026-11-20 00:00 Asia/Shanghai
DEMO_CUSTOMERS = 800


@pytest.fixture(scope="session")
def demo_crm_file(tmp_path_factory) -> Path:
    """A clean demo CRM as of D (no entry errors): scenarios copy it before corrupting it."""
    from tooling.demo_crm import build_demo_crm

    path = tmp_path_factory.mktemp("demo_crm") / "crm.sqlite"
    build_demo_crm(f"sqlite:///{path}", customers=DEMO_CUSTOMERS, as_of=D)
    return path


def copy_crm(source: Path, folder: Path, *, drop_keys: bool = True) -> Path:
    """A copy of `source`; with drop_keys the tables lose their primary keys, so that a
    scenario can insert duplicate or missing keys as a CRM without constraints holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "crm.sqlite"
    shutil.copyfile(source, target)
    if drop_keys:
        with sqlite3.connect(target) as conn:
            for name in TABLES:
                conn.execute(f"CREATE TABLE {name}_loose AS SELECT * FROM {name}")
                conn.execute(f"DROP TABLE {name}")
                conn.execute(f"ALTER TABLE {name}_loose RENAME TO {name}")
    return target


class Crm:
    """Rows written into a SQLite CRM the way a careless user or integration writes them."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def row(self, table: str, key: str) -> dict:
        cols = list(TABLES[table].columns)
        (key_col,) = TABLES[table].key
        found = self.conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE {key_col} = ?",
                                  (key,)).fetchone()
        assert found is not None, (table, key)
        return dict(zip(cols, found, strict=True))

    def insert(self, table: str, row: dict) -> dict:
        cols = list(TABLES[table].columns)
        values = [row.get(c) for c in cols]
        self.conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                          f"({', '.join('?' * len(cols))})", values)
        return row

    def copy(self, table: str, base: str, **changes) -> dict:
        """Insert a copy of row `base` with `changes` (normally a new key among them)."""
        return self.insert(table, {**self.row(table, base), **changes})

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


@dataclass
class Outputs:
    """What a run of the daily stages left behind (None: the stage did not run)."""

    parts: object
    counts: dict[str, int]
    quality: dict | None = None
    stopped: Exception | None = None
    lists: dict | None = None
    sla: dict | None = None

    @property
    def quarantine(self) -> pd.DataFrame:
        return read_csv(self.parts.quality / "quarantine.csv")

    @property
    def summary(self) -> pd.DataFrame:
        return read_csv(self.parts.quality / "summary.csv")

    def call_lists(self) -> pd.DataFrame:
        files = [p for p in sorted(self.parts.call_lists.glob("*.csv"))
                 if p.stem not in ("sms_notice", "carried_over", "not_listed")]
        return pd.concat([read_csv(p) for p in files], ignore_index=True)

    def clean(self, table: str) -> pd.DataFrame:
        return pd.read_parquet(self.parts.clean / f"{table}.parquet")

    def snapshot(self, table: str) -> pd.DataFrame:
        return pd.read_parquet(self.parts.snapshot / f"{table}.parquet")


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def run_daily(crm: Path, output: Path, policy, calendar, *, day: dt.date = D,
              stop_after_quality: bool = False) -> Outputs:
    """extract -> quality gate -> call lists -> SLA, as the daily DAG's tasks call them."""
    from revisit.io.extract import extract_snapshot
    from revisit.quality.gate import QualityStop
    from revisit.stages.daily import run_call_lists, run_quality, run_sla
    from revisit.stages.partitions import DayPartitions

    parts = DayPartitions(output, day)
    counts = extract_snapshot(f"sqlite:///{crm}", day, parts.snapshot,
                              business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    out = Outputs(parts, counts)
    try:
        out.quality = run_quality(parts, policy)
    except QualityStop as stop:
        out.stopped = stop
        return out
    if not stop_after_quality:
        out.lists = run_call_lists(parts, policy, calendar)
        out.sla = run_sla(parts, policy, calendar)
    return out


def with_max_failure_share(policy, share: float):
    return policy.model_copy(
        update={"quality": policy.quality.model_copy(update={"max_failure_share": share})})
