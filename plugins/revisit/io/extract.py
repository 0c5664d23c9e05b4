"""Extract: the CRM as of the cut-off (D 00:00 local), snapshotted as Parquet per run date.

The SQL in include/sql/extract/ is the adapter to a user's CRM; it returns the canonical
columns of revisit.config.schema. Rows stream in chunks (bounded memory) into one Parquet file per
table, written into a temp folder that replaces the run's partition in one rename, so a failed
or retried run never leaves a half partition behind.

Values that do not parse (a date that is not a date) are not coerced away silently: the raw
value is reported per row in the `_parse_errors` column for the quality gate to quarantine, as
"<column>: <problem> (<raw value>)" joined by "; " (PARSE_PROBLEMS lists the problems).

Local time (one rule): a naive stamp is local time in the source zone. One that the zone's clocks
skip (02:30 on the night of a DST spring-forward) or pass twice (02:30 on the night of a
fall-back) names no single instant: it is reported, never moved or guessed ("does not exist
(DST spring-forward)", "ambiguous local time (DST fall-back)"). So is a stamp outside the years
1 to 9999 in UTC or in the business zone (pandas converts between zones through Python's
datetime; 9999-12-31 23:00 in New York is year 10000 in Shanghai).

Values extract changes are counted, never changed silently: text that is not valid UTF-8 read
with U+FFFD, control characters removed. Each table's Parquet file records them (key
REPLACED_KEY of its metadata: per column and change, how many values and the first row keys);
SnapshotTables hands them to the quality gate in frame.attrs[REPLACED_KEY].
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import re
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
from revisit.core.errors import RevisitError
from revisit.core.patterns import DIGIT, SPACE
from revisit.io.files import atomic_dir

log = logging.getLogger(__name__)

EXTRACT_SQL_DIR = SQL_DIR / "extract"
CHUNK_ROWS = 100_000
PARALLEL_FROM_BYTES = 64 * 2**20  # a SQLite CRM from this size is read by two processes
LARGEST_TABLE = "visits"  # read by the second process
PARSE_ERRORS = "_parse_errors"
OPTIONAL_TABLES = frozenset({"ticket_pauses"})
# What a stamp that parses can still be: no single instant in its zone (the one local-time rule,
# see the module doc), or not representable.
AMBIGUOUS = "ambiguous local time (DST fall-back)"
NONEXISTENT = "does not exist (DST spring-forward)"
OUT_OF_RANGE = "outside the years 1 to 9999 in UTC or in"  # ... the business zone
# The problems _parse_errors names (a regex each), by the quality gate check that reports them.
PARSE_PROBLEMS = {
    "parse_error": r"not an? \w+",
    "local_time": rf"(?:{re.escape(AMBIGUOUS)}|{re.escape(NONEXISTENT)}) in [^\s()]+",
    "timestamp_range": rf"{re.escape(OUT_OF_RANGE)} [^\s()]+",
}
REPLACED_KEY = "revisit.replaced"  # Parquet metadata key and frame.attrs key
INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8, read as U+FFFD
CONTROL_CHARACTERS = "control_characters"  # removed from text
REPLACED_KEYS_KEPT = 5  # row keys recorded per (column, change)


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


# What a snapshot says about itself (snapshots/<period>/snapshot.json): when it was taken, as of
# which cut-off, how many rows per table. A run's run.json quotes it.
MANIFEST = "snapshot.json"


class SnapshotMissing(RevisitError):
    """A period whose stored snapshot is gone (retention) or was never taken, where a run
    must not re-extract (a replay): no retry can bring it back."""

    retryable = False

    def __init__(self, period: str, folder: Path) -> None:
        super().__init__(f"no stored snapshot of {period} at {folder}: it was never taken or "
                         "its retention (policy retention.snapshot_days) has ended; a replay "
                         "recomputes only from a stored snapshot")


def snapshot_exists(folder: Path) -> bool:
    """Whether `folder` holds a complete snapshot (every canonical table; the atomic write
    makes a folder all or nothing)."""
    return folder.is_dir() and all((folder / f"{name}.parquet").is_file() for name in TABLES)


def snapshot_manifest(folder: Path) -> dict[str, Any]:
    """snapshot.json of a snapshot ({} for one taken before manifests were written)."""
    path = folder / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def same_cutoff(folder: Path, cutoff_date: dt.date, business_tz: str, source_tz: str) -> bool:
    """Whether the complete snapshot at `folder` saw the CRM as of `cutoff_date` 00:00 in the
    same zones (its manifest says so; a snapshot without one is never taken for another)."""
    manifest = snapshot_manifest(folder) if snapshot_exists(folder) else {}
    return (manifest.get("cutoff") == cutoff_date.isoformat()
            and manifest.get("business_tz") == business_tz
            and manifest.get("source_tz") == source_tz)


def copy_snapshot(source: Path, target: Path) -> dict[str, int]:
    """The snapshot at `source` as `target` (atomic): hard links where the file system allows,
    else copies; returns its row counts.

    Why: the monthly run of M sees the CRM as of the 1st of M+1 00:00 — exactly what that
    day's daily run snapshotted a few hours before; extracting again reads the whole CRM for
    the same rows."""
    from revisit.io.files import link_tree

    with link_tree(source, target):
        pass
    return dict(snapshot_manifest(target).get("rows", {}))


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
        path = self._path(name)
        frame = pd.read_parquet(path)
        frame.attrs[REPLACED_KEY] = replaced_values(path)
        return frame

    def __contains__(self, name: object) -> bool:  # Mapping's default would read the table
        return name in TABLES

    def rows(self, name: str) -> int:
        """How many rows table `name` has (the file's metadata: nothing is read)."""
        return pq.ParquetFile(self._path(name)).metadata.num_rows

    def chunks(self, name: str, size: int, columns: list[str] | None = None
               ) -> Iterator[pd.DataFrame]:
        """Table `name` (or its `columns`) in consecutive chunks of at most `size` rows, each
        typed exactly as the whole table reads (self[name]): a chunk without a null in an
        integer column would otherwise read as int64 where the table reads float64."""
        path = self._path(name)
        file = pq.ParquetFile(path)
        widened = [c for c in _nullable_columns(file) if columns is None or c in columns]
        replaced = replaced_values(path)
        for table in _row_group_chunks(file, size, columns):
            for col in widened:
                position = table.schema.get_field_index(col)
                if pa.types.is_integer(table.schema.field(position).type):
                    table = table.set_column(position, col,
                                             table.column(col).cast(pa.float64()))
            frame = table.to_pandas()
            for col in widened:
                if pa.types.is_boolean(table.schema.field(col).type):
                    frame[col] = frame[col].astype(object)
            frame.attrs[REPLACED_KEY] = replaced
            yield frame

    def _path(self, name: str) -> Path:
        if name not in TABLES:
            raise KeyError(name)
        return self.folder / f"{name}.parquet"

    def __iter__(self) -> Iterator[str]:
        return iter(TABLES)

    def __len__(self) -> int:
        return len(TABLES)


def _row_group_chunks(file: pq.ParquetFile, size: int, columns: list[str] | None
                      ) -> Iterator[pa.Table]:
    """The file's rows in consecutive tables of at most `size` rows: whole row groups read
    together while they fit, a larger row group cut into slices.

    Why not iter_batches: it reads ahead and re-batches across row groups; over the 1 M
    customers' visits (135 groups of 100,000 rows) in 500,000-row batches its Arrow pool
    peaked at 443 MiB against 210 MiB reading five groups at a time, and it took 5.8 s
    against 3.8 (bench/README.md "The gate's reads by row group and its look-ups")."""
    metadata = file.metadata
    run: list[int] = []
    rows = 0

    def read() -> Iterator[pa.Table]:
        table = file.read_row_groups(run, columns=columns)
        for start in range(0, table.num_rows, size):
            # explicit length: a table of no columns does not clamp a slice to its rows
            yield table.slice(start, min(size, table.num_rows - start))

    for group in range(metadata.num_row_groups):
        count = metadata.row_group(group).num_rows
        if run and rows + count > size:
            yield from read()
            run, rows = [], 0
        run.append(group)
        rows += count
    if run:
        yield from read()


def _nullable_columns(file: pq.ParquetFile) -> list[str]:
    """The integer and boolean columns of `file` that hold a null somewhere (pandas reads
    them as float64 / object, the others as int64 / bool)."""
    schema = file.schema_arrow
    wanted = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)]
    if not wanted:
        return []
    metadata = file.metadata
    found = []
    for col in wanted:
        j = schema.get_field_index(col)
        counts = [metadata.row_group(g).column(j).statistics
                  for g in range(metadata.num_row_groups)]
        if all(c is not None and c.has_null_count for c in counts):
            nulls = sum(c.null_count for c in counts)
        else:  # no statistics: count them from the column alone
            nulls = file.read(columns=[col]).column(0).null_count
        if nulls:
            found.append(col)
    return found


def replaced_values(path: Path) -> list[dict[str, Any]]:
    """What extract changed in one snapshot table (see REPLACED_KEY): records of column,
    change, values, keys. A snapshot written before this was recorded has none."""
    metadata = pq.read_metadata(path).metadata or {}  # the file's key-value metadata
    text = metadata.get(REPLACED_KEY.encode())
    return json.loads(text) if text else []


def _typed(table: Table, raw: pd.DataFrame, business_tz: str, source_tz: str, *,
           changes: dict[tuple[str, str], pd.Series] | None = None) -> pd.DataFrame:
    """Cast a raw chunk to the canonical types; unparseable values go to _parse_errors.
    `changes` (optional) receives, per (column, CONTROL_CHARACTERS), which values lost
    control characters."""
    missing = [c for c in table.columns if c not in raw.columns]
    if missing:
        raise ExtractError(
            f"table {table.name}: the extract query returns no column {', '.join(missing)} "
            f"(edit include/sql/extract/{table.name}.sql to return the canonical columns)"
        )
    out = pd.DataFrame(index=raw.index)
    errors = pd.Series("", index=raw.index, dtype="string")
    for name, kind in table.columns.items():
        col = _decode_blobs(raw[name], name, changes)
        if kind in ("id", "text"):
            values = col.astype("string")
            # Control characters (a NUL, a bell) are no content and break XLSX, e-mail and
            # PostgreSQL text: removed (and counted); tab and line breaks stay.
            cleaned = values.str.replace(_CONTROL, "", regex=True)
            if changes is not None:
                changed = (cleaned != values).fillna(False).astype(bool)
                if changed.any():
                    changes[(name, CONTROL_CHARACTERS)] = changed
            values = cleaned
            if kind == "id":
                values = values.str.strip()
            out[name] = values
            continue
        col = _blank_as_missing(col)
        problems = None
        if kind in ("datetime", "date"):
            # A zone-aware value (PostgreSQL timestamptz, text with an offset) names its
            # instant itself: converted, whatever source_tz says. A naive one is local time
            # in source_tz (dates are calendar dates: never converted).
            naive, aware = _to_datetime(col)
            if kind == "datetime":
                parsed, problems = _business_local(naive, aware, source_tz, business_tz)
            else:
                parsed = _dates(naive, aware, business_tz)
            # A bare number is no timestamp (pandas would read it as nanoseconds since 1970).
            numbers = _numbers(col)
            parsed = parsed.mask(numbers)
            bad = parsed.isna() & col.notna()
            if problems is not None:
                problems = problems.mask(numbers)
            parsed = parsed.dt.as_unit("us")
            out[name] = parsed.dt.normalize() if kind == "date" else parsed
        else:
            parsed = pd.to_numeric(col, errors="coerce")
            parsed = parsed.where(np.isfinite(parsed))  # 'inf', '1e400' are no amounts
            bad = parsed.isna() & col.notna()
            if kind in ("int", "bool"):
                # Whole numbers only, and only what the column's type holds (a bool column is
                # 0/1 by the schema; the gate says so of 2 or -5, the cast must not fail first).
                low, high = INT_BOUNDS[kind]
                parsed = parsed.astype("float64")
                frac = parsed.notna() & ((parsed != np.floor(parsed.fillna(0)))
                                         | (parsed < low) | (parsed > high))
                bad |= frac
                parsed = parsed.where(~frac)
                out[name] = parsed.astype("Int64") if kind == "int" else parsed.astype("Int8")
            else:
                out[name] = parsed.astype("float64")
        if bad.any():
            shown = col[bad].astype(str).str.slice(0, 40)
            problem = f"not {a_kind(kind)}"
            if problems is not None:
                problem = problems[bad].fillna(problem)
            errors[bad] = errors[bad] + f"{name}: " + problem + " (" + shown + "); "
    out[PARSE_ERRORS] = errors.str.rstrip("; ").replace("", pd.NA)
    return out


# What an int / bool column holds without overflow: whole numbers safely inside int64 (float64
# is exact up to 2**53, which keeps the bound test honest) and int8.
INT_BOUNDS = {"int": (-(2.0**53), 2.0**53), "bool": (-128.0, 127.0)}


def _decode_blobs(col: pd.Series, name: str, changes: dict | None) -> pd.Series:
    """`col` with bytes (a BLOB where the schema has text, a number or a stamp) read as UTF-8,
    bytes that are not UTF-8 as U+FFFD, and those values counted as INVALID_UTF8 replacements;
    the rest of the cast then judges the text like any other. The scan runs only when the
    column is not plain strings or numbers already."""
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in (
            "string", "empty", "integer", "floating", "mixed-integer-float", "decimal"):
        blobs = np.fromiter((isinstance(v, (bytes, bytearray, memoryview)) for v in col),
                            dtype=bool, count=len(col))
        if blobs.any():
            col = col.copy()
            decoded, lossy = zip(*(_decode(bytes(v)) for v in col[blobs]), strict=True)
            if changes is not None:
                replaced = np.zeros(len(col), dtype=bool)
                replaced[np.flatnonzero(blobs)] = lossy
                if replaced.any():
                    key = (name, INVALID_UTF8)
                    before = changes.get(key)
                    mask = pd.Series(replaced, index=col.index)
                    changes[key] = mask if before is None else (before | mask)
            col[blobs] = list(decoded)
    return col


def _decode(raw: bytes) -> tuple[str, bool]:
    """(text, whether bytes had to be replaced)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


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


def _to_datetime(col: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """Timestamps of one column: (the naive ones, NaT elsewhere; the zone-aware ones as UTC
    instants, NaT elsewhere, or None when there are none). Text stamped with an offset
    ('...+08:00', '...Z', '... UTC') in an otherwise naive column names its own instant
    (parsed together with the naive ones, pandas would refuse the whole column). Any other
    zone name ('CST' is three zones) is no timestamp of this column."""
    if _aware(col):
        aware = pd.to_datetime(col, errors="coerce", format="mixed", utc=True)
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[us]"), aware
    if not _is_text(col):
        return pd.to_datetime(col, errors="coerce", format="mixed"), None
    offset = col.astype("string").str.strip().str.contains(_OFFSET, regex=True)
    offset = offset.fillna(False).astype(bool)
    parsed = _naive_datetimes(col.mask(offset))
    if not offset.any():
        return parsed, None
    aware = pd.to_datetime(col.where(offset), errors="coerce", format="mixed", utc=True)
    return parsed, aware


# Python's datetime range, which pandas converts between zones through; a stamp within
# _EDGE of either end is moved _EDGE inwards to be placed in its zone, and back.
_FIRST = pd.Timestamp("0001-01-01")
_LAST = pd.Timestamp("9999-12-31 23:59:59.999999")
_EDGE = pd.Timedelta(days=2)


def _localize(naive: pd.Series, zone: str) -> tuple[pd.Series, pd.Series]:
    """Naive local stamps of `zone` -> (UTC instants, NaT where none; per value the reason
    there is none: AMBIGUOUS / NONEXISTENT / OUT_OF_RANGE in `zone`, else NA)."""
    naive = naive.dt.as_unit("us")
    early = (naive < _FIRST + _EDGE).to_numpy(bool)
    late = (naive > _LAST - _EDGE).to_numpy(bool)
    shift = None
    if early.any() or late.any():
        shift = pd.Series(np.where(early, _EDGE, np.where(late, -_EDGE, pd.Timedelta(0))),
                          index=naive.index, dtype="timedelta64[us]")
        naive = naive + shift
    local = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    problems = pd.Series(pd.NA, index=naive.index, dtype="string")
    failed = (local.isna() & naive.notna()).to_numpy(bool)
    if failed.any():  # rare: which of the two it is (a skipped time stays NaT either way)
        some = naive[failed]
        skipped = some.dt.tz_localize(zone, ambiguous=np.zeros(len(some), dtype=bool),
                                      nonexistent="NaT").isna().to_numpy(bool)
        problems[failed] = np.where(skipped, f"{NONEXISTENT} in {zone}",
                                    f"{AMBIGUOUS} in {zone}")
    utc = local.dt.tz_convert("UTC")
    if shift is not None:
        utc = utc - shift
        outside = ((utc < _FIRST.tz_localize("UTC")) | (utc > _LAST.tz_localize("UTC")))
        problems = problems.mask(outside.to_numpy(bool), f"{OUT_OF_RANGE} {zone}")
        utc = utc.mask(outside)
    return utc, problems


def _business_local(naive: pd.Series, aware: pd.Series | None, source_tz: str,
                    business_tz: str) -> tuple[pd.Series, pd.Series]:
    """Naive source-local stamps and zone-aware ones as naive business-local time, and per
    value why it has none (see _localize; NA where it has one)."""
    utc, problems = _localize(naive, source_tz)
    if aware is None and source_tz == business_tz:  # nothing to convert: keep the values
        return naive.mask(problems.notna().to_numpy(bool)), problems
    if aware is not None:
        utc = utc.where(aware.isna().to_numpy(bool), aware.dt.as_unit("us"))
    local = utc.dt.tz_convert(business_tz).dt.tz_localize(None)
    outside = (local.notna() & ((local < _FIRST) | (local > _LAST))).to_numpy(bool)
    if outside.any():  # the instant exists, but not as a time of the business zone
        problems = problems.mask(outside, f"{OUT_OF_RANGE} {business_tz}")
        local = local.mask(outside)
    return local, problems


def _dates(naive: pd.Series, aware: pd.Series | None, business_tz: str) -> pd.Series:
    """Calendar dates: naive ones as written, zone-aware ones on the business zone's calendar."""
    if aware is None:
        return naive
    local = aware.dt.tz_convert(business_tz).dt.tz_localize(None).dt.as_unit("us")
    return naive.dt.as_unit("us").where(aware.isna().to_numpy(bool), local)


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
                "the bad bytes (counted in the quality summary)", table.name)
    return _stream_table(engine, table, sql, cutoff, business_tz, source_tz, target, chunk_rows,
                         lenient=True)


class _Replaced:
    """The values of one table that extract changed, as REPLACED_KEY records: per (column,
    change) how many values, and the keys of the first REPLACED_KEYS_KEPT rows."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.counts: dict[tuple[str, str], int] = {}
        self.keys: dict[tuple[str, str], list[str]] = {}

    def add(self, frame: pd.DataFrame, changes: dict[tuple[str, str], pd.Series]) -> None:
        """One chunk's changes (masks over the raw chunk) for the rows `frame` kept (a row
        dropped at the cut-off does not exist yet)."""
        for what, mask in changes.items():
            rows = mask.reindex(frame.index, fill_value=False).to_numpy(bool)
            if not rows.any():
                continue
            self.counts[what] = self.counts.get(what, 0) + int(rows.sum())
            kept = self.keys.setdefault(what, [])
            if len(kept) < REPLACED_KEYS_KEPT:
                kept += _key_text(self.table, frame.loc[rows].head(REPLACED_KEYS_KEPT - len(kept)))

    def records(self) -> list[dict[str, Any]]:
        return [{"column": column, "change": change, "values": n,
                 "keys": self.keys.get((column, change), [])}
                for (column, change), n in self.counts.items()]


def _key_text(table: Table, rows: pd.DataFrame) -> list[str]:
    """The rows' keys as text (compound keys joined by '|', timestamps ISO)."""
    parts = []
    for col in table.key:
        values = rows[col]
        text = values.astype("string")
        if pd.api.types.is_datetime64_any_dtype(values):
            text = text.str.replace(" ", "T", n=1, regex=False)
        parts.append(text.fillna(""))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "|" + part
    return joined.tolist()


def _stream_table(engine: Engine, table: Table, sql: str, cutoff: Cutoff, business_tz: str,
                  source_tz: str, target: Path, chunk_rows: int, *, lenient: bool) -> int:
    params = {"cutoff": cutoff.source.to_pydatetime()} if ":cutoff" in sql else {}
    schema = table.arrow_schema().append(pa.field(PARSE_ERRORS, pa.string()))
    decoder = _LenientText() if lenient else None
    replaced = _Replaced(table)
    rows = 0
    with engine.connect() as conn, pq.ParquetWriter(target, schema, compression="zstd") as writer:
        with _query(conn, sql, params, chunk_rows, decoder=decoder) as (columns, batches):
            for batch in batches:
                raw = pd.DataFrame.from_records(batch, columns=columns)
                changes = decoder.take(raw) if decoder is not None else {}
                frame = apply_cutoff(table, _typed(table, raw, business_tz, source_tz,
                                                   changes=changes), cutoff.business)
                replaced.add(frame, changes)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema,
                                                        preserve_index=False))
                rows += len(frame)
        if rows == 0 and not columns:
            raise ExtractError(f"table {table.name}: the extract query returned no columns")
        if rows == 0:  # still check the columns of an empty table
            _typed(table, pd.DataFrame(columns=columns), business_tz, source_tz)
        if replaced.counts:
            writer.add_key_value_metadata({REPLACED_KEY: json.dumps(replaced.records())})
            for (column, change), n in sorted(replaced.counts.items()):
                log.warning("table %s column %s: %d value(s) changed (%s)", table.name, column,
                            n, change)
    return rows


@contextmanager
def _query(conn: Connection, sql: str, params: dict[str, Any], chunk_rows: int, *,
           decoder: _LenientText | None = None
           ) -> Iterator[tuple[list[str], Iterator[list[tuple]]]]:
    """The query's column names and its rows as lists of plain tuples, chunk by chunk
    (`decoder`: SQLite text read leniently, see _LenientText).

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
    dbapi.text_factory = decoder if decoder is not None else str  # pooled: always set it
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
            _write_manifest(tmp, cutoff_date, business_tz, source_tz, counts)
    finally:
        engine.dispose()
    counts = {name: counts[name] for name in TABLES}
    for name, rows in counts.items():
        log.info("extracted %s: %d rows", name, rows)
    return counts


def _write_manifest(folder: Path, cutoff_date: dt.date, business_tz: str, source_tz: str,
                    counts: dict[str, int]) -> None:
    from zoneinfo import ZoneInfo

    taken = dt.datetime.now(ZoneInfo(business_tz)).isoformat(timespec="seconds")
    manifest = {"extracted_at": taken, "cutoff": cutoff_date.isoformat(),
                "business_tz": business_tz, "source_tz": source_tz,
                "rows": {name: counts[name] for name in TABLES}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


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


class _LenientText:
    """sqlite3's text_factory for a table holding bytes that are not UTF-8 (SQLite stores
    whatever bytes it was given): bad UTF-8 becomes U+FFFD, and each value so read is
    remembered until `take` tells which columns of the chunk hold it."""

    def __init__(self) -> None:
        self.replaced: set[str] = set()

    def __call__(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            self.replaced.add(text)
            return text

    def take(self, raw: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
        """Per (column, INVALID_UTF8) of the chunk just read, which values were replaced."""
        found: dict[tuple[str, str], pd.Series] = {}
        if self.replaced:
            for name in raw.columns:
                if _is_text(raw[name]):
                    mask = raw[name].isin(self.replaced)
                    if mask.any():
                        found[(str(name), INVALID_UTF8)] = mask
            self.replaced.clear()
        return found


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
    "AMBIGUOUS",
    "CONTROL_CHARACTERS",
    "INVALID_UTF8",
    "MANIFEST",
    "NONEXISTENT",
    "OUT_OF_RANGE",
    "PARSE_ERRORS",
    "PARSE_PROBLEMS",
    "REPLACED_KEY",
    "Cutoff",
    "ExtractError",
    "SnapshotMissing",
    "SnapshotTables",
    "apply_cutoff",
    "extract_snapshot",
    "read_snapshot",
    "replaced_values",
    "snapshot_dir",
    "snapshot_exists",
    "snapshot_manifest",
]

if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        # The module by its own name, so what the parent unpickles is revisit.io.extract's.
        from revisit.io.extract import _worker_main as worker_main

        raise SystemExit(worker_main())
    raise SystemExit("usage: python -m revisit.io.extract --worker (arguments as pickle on stdin)")
