"""Extract: the CRM as of the cut-off (D 00:00 local), snapshotted as Parquet per run date.

The SQL in include/sql/extract/ is the adapter to a user's CRM; it returns the canonical
columns of revisit.config.schema. Rows stream in chunks (bounded memory) into one Parquet file per
table, written into a temp folder that replaces the run's partition in one rename, so a failed
or retried run never leaves a half partition behind.

Values that do not parse (a date that is not a date) are not coerced away silently: the raw
value is reported per row in the `_parse_errors` column for the quality gate to quarantine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError, ProgrammingError

from revisit.config.paths import PACKAGE_PARENT, SQL_DIR
from revisit.config.schema import TABLES, Table, a_kind
from revisit.core.patterns import DIGIT, SPACE
from revisit.io.files import atomic_dir

log = logging.getLogger(__name__)

EXTRACT_SQL_DIR = SQL_DIR / "extract"
CHUNK_ROWS = 100_000
PARALLEL_FROM_BYTES = 64 * 2**20  # a SQLite CRM from this size is read by two processes
LARGEST_TABLE = "visits"  # read by the second process
PARSE_ERRORS = "_parse_errors"
OPTIONAL_TABLES = frozenset({"ticket_pauses"})


class ExtractError(RuntimeError):
    """The CRM cannot be read as the contract needs (unreachable, missing table or column)."""


@dataclass(frozen=True)
class Cutoff:
    """The run's cut-off: D 00:00 in the business zone, and the same instant in source time."""

    call_date: dt.date
    business: pd.Timestamp  # naive, business-local
    source: pd.Timestamp  # naive, source-local (what the SQL compares with)

    @classmethod
    def for_date(cls, call_date: dt.date, business_tz: str, source_tz: str | None = None
                 ) -> Cutoff:
        """source_tz None: the CRM stamps in business-local time (the contract's default)."""
        source_tz = source_tz or business_tz
        local = pd.Timestamp(call_date).tz_localize(business_tz)
        return cls(
            call_date=call_date,
            business=local.tz_localize(None),
            source=local.tz_convert(source_tz).tz_localize(None),
        )


def snapshot_dir(output_root: Path, partition: str) -> Path:
    """snapshots/<partition>: a call date (2026-10-16) or a report month (2026-10)."""
    return output_root / "snapshots" / partition


def read_snapshot(folder: Path) -> dict[str, pd.DataFrame]:
    """A snapshot as frames (timestamps naive business-local)."""
    return dict(SnapshotTables(folder))


class SnapshotTables(Mapping[str, pd.DataFrame]):
    """A snapshot's tables, each read when it is looked up and never held: a consumer that
    goes table by table (the quality gate) has one raw table in memory at a time."""

    def __init__(self, folder: Path) -> None:
        if not folder.exists():
            raise ExtractError(f"no snapshot at {folder} (run the extract task first)")
        self.folder = folder

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(name)
        return pd.read_parquet(self.folder / f"{name}.parquet")

    def __contains__(self, name: object) -> bool:  # Mapping's default would read the table
        return name in TABLES

    def __iter__(self) -> Iterator[str]:
        return iter(TABLES)

    def __len__(self) -> int:
        return len(TABLES)


def _typed(table: Table, raw: pd.DataFrame, business_tz: str, source_tz: str) -> pd.DataFrame:
    """Cast a raw chunk to the canonical types; unparseable values go to _parse_errors."""
    missing = [c for c in table.columns if c not in raw.columns]
    if missing:
        raise ExtractError(
            f"table {table.name}: the extract query returns no column {', '.join(missing)} "
            f"(edit include/sql/extract/{table.name}.sql to return the canonical columns)"
        )
    out = pd.DataFrame(index=raw.index)
    errors = pd.Series("", index=raw.index, dtype="string")
    for name, kind in table.columns.items():
        col = raw[name]
        if kind in ("id", "text"):
            values = col.astype("string")
            # Control characters (a NUL, a bell) are no content and break XLSX, e-mail and
            # PostgreSQL text: removed; tab and line breaks stay.
            values = values.str.replace(_CONTROL, "", regex=True)
            if kind == "id":
                values = values.str.strip()
            out[name] = values
            continue
        col = _blank_as_missing(col)
        if kind in ("datetime", "date"):
            parsed = _to_datetime(col, business_tz)
            if parsed.dt.tz is not None:
                # A zone-aware source column (e.g. PostgreSQL timestamptz) names its instant
                # itself: convert, whatever source_tz says.
                parsed = parsed.dt.tz_convert(business_tz).dt.tz_localize(None)
            elif kind == "datetime" and source_tz != business_tz:
                parsed = (
                    parsed.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="shift_forward")
                    .dt.tz_convert(business_tz).dt.tz_localize(None)
                )
            # A bare number is no timestamp (pandas would read it as nanoseconds since 1970).
            parsed = parsed.mask(_numbers(col))
            bad = parsed.isna() & col.notna()
            parsed = parsed.dt.as_unit("us")
            out[name] = parsed.dt.normalize() if kind == "date" else parsed
        else:
            parsed = pd.to_numeric(col, errors="coerce")
            parsed = parsed.where(np.isfinite(parsed))  # 'inf', '1e400' are no amounts
            bad = parsed.isna() & col.notna()
            if kind in ("int", "bool"):
                frac = parsed.notna() & (parsed != np.floor(parsed.fillna(0)))
                bad |= frac
                parsed = parsed.where(~frac)
                out[name] = parsed.astype("Int64") if kind == "int" else parsed.astype("Int8")
            else:
                out[name] = parsed.astype("float64")
        if bad.any():
            shown = col[bad].astype(str).str.slice(0, 40)
            errors[bad] = errors[bad] + f"{name}: not {a_kind(kind)} (" + shown + "); "
    out[PARSE_ERRORS] = errors.str.rstrip("; ").replace("", pd.NA)
    return out


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
# Blank text and MySQL's zero date stand for "no value" in many CRMs: missing, not unparseable.
_NO_VALUE = rf"{SPACE}*(?:0000-00-00(?:[ T]00:00(?::00(?:\.0+)?)?)?)?{SPACE}*"  # fullmatch
_OFFSET = (rf"(?:{DIGIT}{SPACE}*(?:[+-]{DIGIT}{{2}}:?{DIGIT}{{2}}|Z)|{SPACE}(?:UTC|GMT))\Z")


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col)


def _blank_as_missing(col: pd.Series) -> pd.Series:
    if not _is_text(col):
        return col
    blank = col.astype("string").str.fullmatch(_NO_VALUE).fillna(False).astype(bool)
    return col.mask(blank) if blank.any() else col


def _numbers(col: pd.Series) -> pd.Series:
    """Which values are numbers (not text that looks like one). Per value only in a column
    that mixes numbers with other values (a data-entry accident), else one dtype check."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.notna()
    if col.dtype != object or pd.api.types.infer_dtype(col, skipna=True) in (
            "string", "datetime", "datetime64", "date", "empty"):
        return pd.Series(False, index=col.index)
    return col.map(lambda v: isinstance(v, (int, float, np.number))
                   and not isinstance(v, (bool, np.bool_)), na_action="ignore"
                   ).fillna(False).astype(bool)


def _to_datetime(col: pd.Series, business_tz: str) -> pd.Series:
    """Timestamps of one column; text stamped with an offset ('...+08:00', '...Z', '... UTC')
    in an otherwise naive column names its own instant and is converted to business-local
    time (parsed together with the naive ones, pandas would refuse the whole column). Any
    other zone name ('CST' is three zones) is no timestamp of this column."""
    if _aware(col) or not _is_text(col):
        return pd.to_datetime(col, errors="coerce", format="mixed", utc=_aware(col))
    offset = col.astype("string").str.strip().str.contains(_OFFSET, regex=True)
    offset = offset.fillna(False).astype(bool)
    parsed = _naive_datetimes(col.mask(offset))
    if not offset.any():
        return parsed
    aware = pd.to_datetime(col[offset], errors="coerce", format="mixed", utc=True)
    local = aware.dt.tz_convert(business_tz).dt.tz_localize(None)
    return parsed.astype("datetime64[ns]").mask(offset, local.astype("datetime64[ns]"))


def _naive_datetimes(col: pd.Series) -> pd.Series:
    try:
        parsed = pd.to_datetime(col, errors="coerce", format="mixed")
        if parsed.dt.tz is None:
            return parsed
    except ValueError:  # a zone name pandas knows beside naive values
        pass
    return pd.to_datetime(col.map(_naive_or_none, na_action="ignore"), errors="coerce",
                          format="mixed")


def _naive_or_none(value: object) -> object:
    """One value that pandas read as zone-aware among naive ones: no timestamp (NaT)."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if stamp.tzinfo is not None else stamp


def _aware(values: pd.Series) -> bool:
    """Whether a raw column holds zone-aware datetimes (drivers return them for timestamptz)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return True
    first = values.dropna()
    return bool(len(first)) and isinstance(first.iloc[0], dt.datetime) \
        and first.iloc[0].tzinfo is not None


def apply_cutoff(table: Table, frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The table as it stood at the cut-off: later rows dropped, later stamps blanked.

    A ticket closed after the cut-off was not closed at the cut-off, so its status falls back
    to what its remaining stamps say, and its satisfaction (given on closing) is blanked."""
    if table.stamp is not None:
        frame = frame[~(frame[table.stamp] >= cutoff)]
    frame = frame.copy()
    for name in table.columns_of("datetime"):
        if name != table.stamp:
            frame[name] = frame[name].where(~(frame[name] >= cutoff))
    if table.name == "tickets":
        status = frame["status"]
        derived = pd.Series("pending", index=frame.index, dtype="string")
        derived = derived.mask(frame["first_response_at"].notna(), "in_progress")
        derived = derived.mask(frame["resolved_at"].notna(), "resolved")
        derived = derived.mask(frame["closed_at"].notna(), "closed")
        rank = {s: i for i, s in enumerate(("pending", "in_progress", "resolved", "closed"))}
        too_late = status.map(rank).astype("Float64") > derived.map(rank).astype("Float64")
        frame["status"] = status.mask(too_late.fillna(False), derived)
        frame["satisfaction"] = frame["satisfaction"].where(frame["closed_at"].notna())
    if table.name == "customers":
        frame["cooperation_start_date"] = frame["cooperation_start_date"].where(
            ~(frame["cooperation_start_date"] >= cutoff)
        )
    return frame


def _stream_any_text(engine: Engine, table: Table, sql: str, cutoff: Cutoff, business_tz: str,
                     source_tz: str, target: Path, chunk_rows: int) -> int:
    """Strict UTF-8 decoding first (sqlite3's own, at C speed); a SQLite table holding bytes
    that are not UTF-8 is read again with U+FFFD in place of the bad bytes, instead of
    failing the run (or quoting the customer's text in an error)."""
    try:
        return _stream_table(engine, table, sql, cutoff, business_tz, source_tz, target,
                             chunk_rows, lenient=False)
    except OperationalError as error:
        if "could not decode to utf-8" not in str(error.orig).lower():
            raise
    log.warning("table %s holds text that is not valid UTF-8: read with U+FFFD in place of "
                "the bad bytes", table.name)
    return _stream_table(engine, table, sql, cutoff, business_tz, source_tz, target, chunk_rows,
                         lenient=True)


def _stream_table(engine: Engine, table: Table, sql: str, cutoff: Cutoff, business_tz: str,
                  source_tz: str, target: Path, chunk_rows: int, *, lenient: bool) -> int:
    params = {"cutoff": cutoff.source.to_pydatetime()} if ":cutoff" in sql else {}
    schema = table.arrow_schema().append(pa.field(PARSE_ERRORS, pa.string()))
    rows = 0
    with engine.connect() as conn, pq.ParquetWriter(target, schema, compression="zstd") as writer:
        with _query(conn, sql, params, chunk_rows, lenient=lenient) as (columns, batches):
            for batch in batches:
                raw = pd.DataFrame.from_records(batch, columns=columns)
                frame = apply_cutoff(table, _typed(table, raw, business_tz, source_tz),
                                     cutoff.business)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema,
                                                        preserve_index=False))
                rows += len(frame)
        if rows == 0 and not columns:
            raise ExtractError(f"table {table.name}: the extract query returned no columns")
        if rows == 0:  # still check the columns of an empty table
            _typed(table, pd.DataFrame(columns=columns), business_tz, source_tz)
    return rows


@contextmanager
def _query(conn: Connection, sql: str, params: dict[str, Any], chunk_rows: int, *,
           lenient: bool) -> Iterator[tuple[list[str], Iterator[list[tuple]]]]:
    """The query's column names and its rows as lists of plain tuples, chunk by chunk.

    SQLite (the embedded default) is read on its own DBAPI cursor: sqlite3 takes the same
    :name parameters as text(), and SQLAlchemy's Row objects cost a third of the fetch. Other
    databases stream through SQLAlchemy (server-side cursors)."""
    if conn.dialect.name != "sqlite":
        result = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows).execute(
            text(sql), params)
        try:
            # Plain tuples: pandas probes every Row object for array attributes, which costs
            # SQLAlchemy an exception per row (5x slower on a million visits).
            yield list(result.keys()), (list(map(tuple, batch)) for batch in iter(
                lambda: result.fetchmany(chunk_rows), []))
        finally:
            result.close()
        return
    dbapi = conn.connection.dbapi_connection
    dbapi.text_factory = _lenient_text if lenient else str  # pooled: always set it
    cursor = dbapi.cursor()

    def wrapped(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except sqlite3.Error as error:  # as SQLAlchemy would raise it
            raise DBAPIError.instance(sql, params, error, sqlite3.Error) from None

    try:
        wrapped(lambda: cursor.execute(sql, params))
        yield ([d[0] for d in cursor.description or ()],
               iter(lambda: wrapped(lambda: cursor.fetchmany(chunk_rows)), []))
    finally:
        cursor.close()


def extract_snapshot(
    url: str | URL, cutoff_date: dt.date, target: Path, *, business_tz: str,
    source_tz: str | None = None, chunk_rows: int = CHUNK_ROWS, workers: int | None = None,
) -> dict[str, int]:
    """Snapshot every canonical table as of cutoff_date 00:00 (business-local) into `target`,
    replacing it atomically; returns row counts per table. source_tz None: the CRM's naive
    stamps are business-local. workers: processes reading tables side by side (None: see
    default_workers)."""
    source_tz = source_tz or business_tz
    cutoff = Cutoff.for_date(cutoff_date, business_tz, source_tz)
    url = make_url(url)
    _check_sqlite_file(url)
    workers = default_workers(url) if workers is None else max(1, workers)
    names = list(TABLES)
    engine = create_engine(url, pool_pre_ping=True)
    try:
        with atomic_dir(target) as tmp:
            # The SQL is read here: a worker runs exactly the queries this process would.
            args = {name: (name, (EXTRACT_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8"),
                           cutoff, business_tz, source_tz, chunk_rows, tmp) for name in names}
            # Two workers: the largest table (the visits) in a child process, the rest here.
            child = _start_worker(url, args[LARGEST_TABLE]) if workers > 1 else None
            try:
                counts = {name: _extract_table(engine, *args[name]) for name in names
                          if child is None or name != LARGEST_TABLE}
            except BaseException:
                if child is not None:  # this error is the one to report: stop the worker
                    child.kill()
                    child.wait()
                raise
            if child is not None:
                counts[LARGEST_TABLE] = _finish_worker(child)
    finally:
        engine.dispose()
    counts = {name: counts[name] for name in TABLES}
    for name, rows in counts.items():
        log.info("extracted %s: %d rows", name, rows)
    return counts


def _start_worker(url: URL, args: tuple) -> subprocess.Popen:
    """`python -m revisit.io.extract --worker` extracting one table; arguments as pickle on its
    stdin (never on its command line: the URL may hold a password)."""
    plugins = str(PACKAGE_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (plugins, os.environ.get("PYTHONPATH", "")) if p)}
    child = subprocess.Popen([sys.executable, "-m", "revisit.io.extract", "--worker"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert child.stdin is not None
    child.stdin.write(pickle.dumps((url.render_as_string(hide_password=False), args)))
    child.stdin.close()
    return child


def _finish_worker(child: subprocess.Popen) -> int:
    """The worker's row count, or its error raised here."""
    assert child.stdout is not None
    out = child.stdout.read()
    code = child.wait()
    if code != 0 or not out:
        raise ExtractError(f"the extract worker for {LARGEST_TABLE} exited with code {code} "
                           "(out of memory?); nothing was replaced")
    ok, value = pickle.loads(out)
    if not ok:
        raise value
    return int(value)


def _worker_main() -> int:
    source, args = pickle.loads(sys.stdin.buffer.read())
    engine = create_engine(make_url(source), pool_pre_ping=True)
    try:
        outcome: tuple[bool, Any] = (True, _extract_table(engine, *args))
    except Exception as error:  # handed to the parent, which raises it
        outcome = (False, error if isinstance(error, ExtractError) else
                   ExtractError(f"table {args[0]}: {type(error).__name__}: {error}"))
    finally:
        engine.dispose()
    sys.stdout.buffer.write(pickle.dumps(outcome))
    return 0


def default_workers(url: URL) -> int:
    """Two processes where the CRM is big enough to repay starting them (~1 s each, imports
    included): a database server, or a SQLite file of PARALLEL_FROM_BYTES or more. One where
    only one core is available."""
    if len(os.sched_getaffinity(0)) < 2:
        return 1
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        path = Path(database)
        return 2 if database and path.is_file() and path.stat().st_size >= PARALLEL_FROM_BYTES \
            else 1
    return 2


def _extract_table(engine: Engine, name: str, sql: str, cutoff: Cutoff, business_tz: str,
                   source_tz: str, chunk_rows: int, folder: Path) -> int:
    """One table into folder/<name>.parquet (in this process or a worker); its row count."""
    table = TABLES[name]
    path = folder / f"{name}.parquet"
    try:
        return _stream_any_text(engine, table, sql, cutoff, business_tz, source_tz, path,
                                chunk_rows)
    except (OperationalError, ProgrammingError, NoSuchTableError) as error:
        if name in OPTIONAL_TABLES and _is_missing_table(error):
            log.info("optional table %s is absent in the CRM; snapshot is empty", name)
            pq.write_table(table.arrow_schema().append(
                pa.field(PARSE_ERRORS, pa.string())).empty_table(), path)
            return 0
        raise ExtractError(_describe(error, name, engine.url)) from None


def _lenient_text(raw: bytes) -> str:
    """SQLite stores whatever bytes it was given: bad UTF-8 becomes U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def _check_sqlite_file(url: URL) -> None:
    """SQLite would create a missing file and then report missing tables: say what is wrong."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:") and not Path(database).is_file():
        raise ExtractError(f"the CRM SQLite file {database} does not exist "
                           "(check connection crm_db)")


def _is_missing_table(error: Exception) -> bool:
    message = str(error).lower()
    return any(s in message for s in ("no such table", "does not exist", "doesn't exist"))


def _describe(error: Exception, table: str, url: URL) -> str:
    where = url.render_as_string(hide_password=True)
    first = str(getattr(error, "orig", error)).strip().splitlines()[0]
    if _is_missing_table(error):
        return f"table {table}: not found in the CRM at {where}: {first}"
    return f"cannot read table {table} from the CRM at {where}: {first}"


__all__ = [
    "PARSE_ERRORS",
    "Cutoff",
    "ExtractError",
    "SnapshotTables",
    "apply_cutoff",
    "extract_snapshot",
    "read_snapshot",
    "snapshot_dir",
]

if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        # The module by its own name, so what the parent unpickles is revisit.io.extract's.
        from revisit.io.extract import _worker_main as worker_main

        raise SystemExit(worker_main())
    raise SystemExit("usage: python -m revisit.io.extract --worker (arguments as pickle on stdin)")
