"""Extract: the CRM as of the cut-off (D 00:00 local), snapshotted as Parquet per run date.

The SQL in include/sql/extract/ is the adapter to a user's CRM; it returns the canonical
columns of revisit.schema. Rows stream in chunks (bounded memory) into one Parquet file per
table, written into a temp folder that replaces the run's partition in one rename, so a failed
or retried run never leaves a half partition behind.

Values that do not parse (a date that is not a date) are not coerced away silently: the raw
value is reported per row in the `_parse_errors` column for the quality gate to quarantine.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import NoSuchTableError, OperationalError, ProgrammingError

from revisit.files import atomic_dir
from revisit.paths import SQL_DIR
from revisit.schema import TABLES, Table

log = logging.getLogger(__name__)

EXTRACT_SQL_DIR = SQL_DIR / "extract"
CHUNK_ROWS = 100_000
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
    if not folder.exists():
        raise ExtractError(f"no snapshot at {folder} (run the extract task first)")
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}


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
            article = "an" if kind[0] in "aeiou" else "a"
            errors[bad] = errors[bad] + f"{name}: not {article} {kind} (" + shown + "); "
    out[PARSE_ERRORS] = errors.str.rstrip("; ").replace("", pd.NA)
    return out


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
# Blank text and MySQL's zero date stand for "no value" in many CRMs: missing, not unparseable.
_NO_VALUE = r"^\s*(?:0000-00-00(?:[ T]00:00(?::00(?:\.0+)?)?)?)?\s*$"
_OFFSET = r"(?:\d\s*(?:[+-]\d{2}:?\d{2}|Z)|\s(?:UTC|GMT))$"


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


def _stream_table(engine: Engine, table: Table, cutoff: Cutoff, business_tz: str,
                  source_tz: str, target: Path, chunk_rows: int) -> int:
    sql = (EXTRACT_SQL_DIR / f"{table.name}.sql").read_text(encoding="utf-8")
    params = {"cutoff": cutoff.source.to_pydatetime()} if ":cutoff" in sql else {}
    schema = table.arrow_schema().append(pa.field(PARSE_ERRORS, pa.string()))
    rows = 0
    with engine.connect() as conn, pq.ParquetWriter(target, schema, compression="zstd") as writer:
        result = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows).execute(
            text(sql), params
        )
        columns = list(result.keys())
        while batch := result.fetchmany(chunk_rows):
            # Plain tuples: pandas probes every Row object for array attributes, which costs
            # SQLAlchemy an exception per row (5x slower on a million visits).
            raw = pd.DataFrame.from_records(list(map(tuple, batch)), columns=columns)
            frame = apply_cutoff(table, _typed(table, raw, business_tz, source_tz), cutoff.business)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            rows += len(frame)
        if rows == 0 and not columns:
            raise ExtractError(f"table {table.name}: the extract query returned no columns")
        if rows == 0:  # still check the columns of an empty table
            _typed(table, pd.DataFrame(columns=columns), business_tz, source_tz)
    return rows


def extract_snapshot(
    url: str | URL, cutoff_date: dt.date, target: Path, *, business_tz: str,
    source_tz: str | None = None, chunk_rows: int = CHUNK_ROWS,
) -> dict[str, int]:
    """Snapshot every canonical table as of cutoff_date 00:00 (business-local) into `target`,
    replacing it atomically; returns row counts per table. source_tz None: the CRM's naive
    stamps are business-local."""
    source_tz = source_tz or business_tz
    cutoff = Cutoff.for_date(cutoff_date, business_tz, source_tz)
    url = make_url(url)
    _check_sqlite_file(url)
    engine = create_engine(url, pool_pre_ping=True)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _lenient_sqlite_text)
    counts: dict[str, int] = {}
    try:
        with atomic_dir(target) as tmp:
            for name, table in TABLES.items():
                path = tmp / f"{name}.parquet"
                try:
                    counts[name] = _stream_table(engine, table, cutoff, business_tz, source_tz,
                                                 path, chunk_rows)
                except (OperationalError, ProgrammingError, NoSuchTableError) as error:
                    if name in OPTIONAL_TABLES and _is_missing_table(error):
                        log.info("optional table %s is absent in the CRM; snapshot is empty", name)
                        pq.write_table(table.arrow_schema().append(
                            pa.field(PARSE_ERRORS, pa.string())).empty_table(), path)
                        counts[name] = 0
                        continue
                    raise ExtractError(_describe(error, name, engine.url)) from None
                log.info("extracted %s: %d rows", name, counts[name])
    finally:
        engine.dispose()
    return counts


def _lenient_sqlite_text(dbapi_connection: Any, _record: Any) -> None:
    """SQLite stores whatever bytes it was given: text that is not valid UTF-8 is read with
    U+FFFD in place of the bad bytes, instead of failing the whole table (and quoting the
    customer's name in the error)."""
    dbapi_connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")


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
    "PARSE_ERRORS", "Cutoff", "ExtractError", "apply_cutoff", "extract_snapshot",
    "read_snapshot", "snapshot_dir",
]
