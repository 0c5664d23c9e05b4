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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text
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
            if kind == "id":
                values = values.str.strip()
            out[name] = values
            continue
        if kind in ("datetime", "date"):
            parsed = pd.to_datetime(col, errors="coerce", format="mixed", utc=_aware(col))
            if parsed.dt.tz is not None:
                # A zone-aware source column (e.g. PostgreSQL timestamptz) names its instant
                # itself: convert, whatever source_tz says.
                parsed = parsed.dt.tz_convert(business_tz).dt.tz_localize(None)
            elif kind == "datetime" and source_tz != business_tz:
                parsed = (
                    parsed.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="shift_forward")
                    .dt.tz_convert(business_tz).dt.tz_localize(None)
                )
            bad = parsed.isna() & col.notna()
            parsed = parsed.dt.as_unit("us")
            out[name] = parsed.dt.normalize() if kind == "date" else parsed
        else:
            parsed = pd.to_numeric(col, errors="coerce")
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
            errors[bad] = errors[bad] + f"{name}: not a {kind} (" + shown + "); "
    out[PARSE_ERRORS] = errors.str.rstrip("; ").replace("", pd.NA)
    return out


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
            raw = pd.DataFrame.from_records(batch, columns=columns)
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
