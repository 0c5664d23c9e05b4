"""The results database: call lists, SLA status and quality issues by run date, and the
monthly reads of that history.

Writes replace a run date's rows in one transaction (DELETE + INSERT), so reruns and backfills
never duplicate and a failed write leaves the previous rows intact.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import column, delete, insert, table
from sqlalchemy.engine import Engine

from revisit.config.paths import SQL_DIR
from revisit.io.db import ddl_statements

RESULTS_SCHEMA = SQL_DIR / "results" / "schema.sql"
QUARANTINED_IN_PERIOD = SQL_DIR / "results" / "quarantined_in_period.sql"
CALL_LIST_IN_PERIOD = SQL_DIR / "results" / "call_list_in_period.sql"
BATCH_ROWS = 20_000


def default_results_url(output_root: Path) -> str:
    return f"sqlite:///{output_root / 'results.sqlite'}"


_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)[^)]*$", re.DOTALL)
_CONSTRAINT = re.compile(r"^(PRIMARY|UNIQUE|CONSTRAINT|KEY|INDEX|FOREIGN|CHECK)\b", re.IGNORECASE)


def ddl_columns(statements: list[str]) -> dict[str, dict[str, str]]:
    """table -> column -> its definition ("BOOLEAN", "VARCHAR(32) NOT NULL"), from the CREATE
    TABLE statements of the DDL (one column a line, as schema.sql writes them)."""
    tables: dict[str, dict[str, str]] = {}
    for statement in statements:
        found = _CREATE_TABLE.match(statement.strip())
        if not found:
            continue
        columns = tables.setdefault(found.group(1).lower(), {})
        for line in found.group(2).splitlines():
            line = line.strip().rstrip(",").strip()
            if not line or _CONSTRAINT.match(line):
                continue
            name, _, definition = line.partition(" ")
            columns[name.lower()] = definition.strip()
    return tables


def _missing_columns(engine: Engine, wanted: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    from sqlalchemy import inspect

    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    missing = []
    for name, columns in wanted.items():
        if name not in present:
            continue
        have = {c["name"].lower() for c in inspector.get_columns(name)}
        missing += [(name, column) for column in columns if column not in have]
    return missing


def _add_missing_columns(engine: Engine, wanted: dict[str, dict[str, str]]) -> None:
    """ALTER TABLE .. ADD COLUMN for every DDL column an existing table lacks (a results
    database made by an older version). Parallel tasks may race: a column another one added
    meanwhile is fine (the failed ALTER is checked against the table again)."""
    from sqlalchemy.exc import DBAPIError

    for name, col in _missing_columns(engine, wanted):
        definition = wanted[name][col]
        if "NOT NULL" in definition.upper():
            raise RuntimeError(f"{RESULTS_SCHEMA}: {name}.{col} is missing from the results "
                               f"database and is NOT NULL: add it yourself (ALTER TABLE)")
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {col} {definition}")
        except DBAPIError:
            if (name, col) in _missing_columns(engine, {name: {col: definition}}):
                raise


def ensure_schema(engine: Engine) -> None:
    """Create the results tables when missing and add the columns an existing table lacks
    (idempotent; parallel tasks may call it at once)."""
    statements = ddl_statements(RESULTS_SCHEMA, engine.dialect.name)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    _add_missing_columns(engine, ddl_columns(statements))


def _python_columns(frame: pd.DataFrame, *, text_stamps: bool = False) -> list[np.ndarray]:
    """Columns as plain Python values: None for missing, naive datetimes, ints, strings.

    text_stamps (SQLite, which stores datetimes as text): the text sqlite3's own adapter would
    write ('2026-11-19 09:31:00'), made in one numpy call instead of a Python call per value."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(col):
            whole = col.isna() | (col.dt.microsecond == 0) & (col.dt.nanosecond == 0)
            if text_stamps and whole.all():
                text = np.datetime_as_string(col.to_numpy("datetime64[s]"), unit="s")
                col = pd.Series(text, index=col.index, dtype="string").str.replace(
                    "T", " ", n=1, regex=False).where(col.notna())
            else:
                col = pd.Series(col.dt.to_pydatetime(), index=col.index, dtype=object)
        values = col.astype(object).to_numpy(copy=True)
        values[col.isna().to_numpy()] = None
        out[name] = values
    return list(out.values())


def replace_partition(engine: Engine, name: str, run_date: dt.date,
                      frame: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """Replace the rows of `run_date` in table `name` with `frame` (which lacks run_date), or
    with frames of the same columns one after another (a large hand-off read in parts)."""
    text_stamps = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        return _replace(conn, name, "run_date",
                        run_date.isoformat() if text_stamps else run_date, frame)


def replace_months(engine: Engine, month: str, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace month M's rows of each table in `frames` (name -> rows, which lack or hold M in
    their `month` column) in one transaction: the monthly kpis and agent_kpis (a rerun of M
    never duplicates, and a failed write leaves M's previous rows of both tables intact)."""
    with engine.begin() as conn:
        return {name: _replace(conn, name, "month", month, frame)
                for name, frame in frames.items()}


def _replace(conn, name: str, key: str, value,
             frames: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """DELETE the rows of `key` = `value` from table `name`, then INSERT `frames` (one frame,
    or several of the same columns) with that key, on the caller's transaction."""
    keyed = table(name, column(key))
    conn.execute(delete(keyed).where(keyed.c[key] == value))
    parts = [frames] if isinstance(frames, pd.DataFrame) else frames
    return sum(_insert(conn, name, frame.assign(**{key: value})) for frame in parts)


def _insert(conn, name: str, rows: pd.DataFrame) -> int:
    """INSERT `rows` into table `name`, BATCH_ROWS at a time."""
    text_stamps = conn.dialect.name == "sqlite"
    target = table(name, *(column(c) for c in rows.columns))
    names = list(rows.columns)
    # Positional drivers (sqlite3, MySQL) take tuples straight into executemany: half the
    # time of SQLAlchemy binding a dict per row. PostgreSQL keeps SQLAlchemy's batched
    # multi-VALUES insert (psycopg2's own executemany sends one statement per row).
    positional = conn.dialect.positional
    statement = str(insert(target).compile(dialect=conn.dialect)) if positional else None
    for start in range(0, len(rows), BATCH_ROWS):
        batch = list(zip(*_python_columns(rows.iloc[start:start + BATCH_ROWS],
                                          text_stamps=text_stamps), strict=True))
        if not batch:
            continue
        if statement is not None:
            conn.exec_driver_sql(statement, batch)
        else:
            conn.execute(insert(target), [dict(zip(names, row, strict=True)) for row in batch])
    return len(rows)


def quality_issue_keys(url: str, start: dt.date, end: dt.date) -> pd.DataFrame | None:
    """The distinct (table_name, row_key) the daily quality gate quarantined on run dates in
    [start, end); None when the database holds no quality history (no table yet)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from revisit.io.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(QUARANTINED_IN_PERIOD.read_text(encoding="utf-8")),
                                {"start": start, "end": end}).all()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return pd.DataFrame([tuple(r) for r in rows], columns=["table_name", "row_key"],
                        dtype="string")


def call_list_history(url: str, start: dt.date, end: dt.date) -> pd.DataFrame | None:
    """The call-list rows (run_date, agent_id, customer_id, reasons) of run dates in
    [start, end), for the monthly per-agent credit (revisit.rules.credit); None when the
    database holds no call-list history (no table yet: a first run, a new database), so the
    credit falls back to the assignment rules. An empty frame: the table, no rows in range.
    Any other database error is raised: an unreachable database must not quietly move the
    appraisal numbers to the fallback."""
    from sqlalchemy import inspect, text

    from revisit.io.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("call_list"):
                return None
            rows = conn.execute(text(CALL_LIST_IN_PERIOD.read_text(encoding="utf-8")),
                                {"start": start, "end": end}).all()
    finally:
        engine.dispose()
    out = pd.DataFrame([tuple(r) for r in rows],
                       columns=["run_date", "agent_id", "customer_id", "reasons"])
    out["run_date"] = pd.to_datetime(out["run_date"]).astype("datetime64[s]")
    return out.astype({c: "string" for c in ("agent_id", "customer_id", "reasons")})
