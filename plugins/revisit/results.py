"""The results database: call lists, SLA status and quality issues by run date.

Writes replace a run date's rows in one transaction (DELETE + INSERT), so reruns and backfills
never duplicate and a failed write leaves the previous rows intact.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from sqlalchemy import column, delete, insert, table
from sqlalchemy.engine import Engine

from revisit.db import ddl_statements
from revisit.paths import SQL_DIR

RESULTS_SCHEMA = SQL_DIR / "results" / "schema.sql"
BATCH_ROWS = 20_000


def default_results_url(output_root: Path) -> str:
    return f"sqlite:///{output_root / 'results.sqlite'}"


def ensure_schema(engine: Engine) -> None:
    """Create the results tables when missing (idempotent)."""
    with engine.begin() as conn:
        for statement in ddl_statements(RESULTS_SCHEMA, engine.dialect.name):
            conn.exec_driver_sql(statement)


def _python_values(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values: None for missing, naive datetimes, ints, strings."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(col):
            col = pd.Series(col.dt.to_pydatetime(), index=col.index, dtype=object)
        values = col.astype(object).to_numpy(copy=True)
        values[col.isna().to_numpy()] = None
        out[name] = values
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*out.values(), strict=True)]


def replace_partition(engine: Engine, name: str, run_date: dt.date, frame: pd.DataFrame) -> int:
    """Replace the rows of `run_date` in table `name` with `frame` (which lacks run_date)."""
    rows = frame.assign(run_date=run_date)
    target = table(name, *(column(c) for c in rows.columns))
    with engine.begin() as conn:
        conn.execute(delete(target).where(target.c.run_date == run_date))
        for start in range(0, len(rows), BATCH_ROWS):
            batch = _python_values(rows.iloc[start:start + BATCH_ROWS])
            if batch:
                conn.execute(insert(target), batch)
    return len(rows)
