"""What the stages after the gate rely on and GX's expectations cannot say, checked in
vectorised pandas / Arrow and reported exactly like the suite's checks, so that a row that would
stop a stage is quarantined with its true reason and the stage never sees it:

- `file_name_length`: an id that names output files (suites.FILE_NAME_KEYS) holds at most
  revisit.config.schema.FILE_NAME_BYTES bytes in UTF-8 (a longer one fails the call-list
  writer with "File name too long", for every agent, on every retry);
- `case_collision`: two such ids that differ only in letter case or in how an accented letter
  is encoded (`A0002`, `a0002`) name the same file on a case-insensitive file system (macOS,
  Windows, many shares and sync tools): one agent's list would replace the other's. Every row of
  such a group is quarantined, each naming another id of the group. The fold is Unicode
  NFC, then upper, then lower case (Arrow kernels): the simple case folding those file
  systems use, and Python's str.casefold except for expansions such as 'ß' -> 'ss';
- `calendar_years`: a timestamp the SLA engine reads (suites.CALENDAR_STAMPS) lies where the
  business calendar can count on it, from 1 January of its first year to 1 December of its
  last (revisit.rules.calendar.BusinessCalendar refuses later stamps: the last month is room
  for deadlines). A ticket created in 1900 would otherwise stop the SLA task.

Widths of the results database's columns are GX expectations in the suites (check `width`),
and timestamps that no zone can hold are reported by extract (checks `local_time`,
`timestamp_range`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.config.schema import FILE_NAME_BYTES, TABLES
from revisit.quality.failures import Failure, format_values
from revisit.quality.suites import CALENDAR_STAMPS, FILE_NAME_KEYS
from revisit.rules.calendar import DEFAULT_YEARS

CHECKS = ("file_name_length", "case_collision", "calendar_years")


def _arrow(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("string").array, type=pa.large_string())


def _ids(values: pd.Series) -> pd.Series:
    return format_values(values, "UTC")  # ids: the zone is never used


def file_name_length(name: str, frame: pd.DataFrame, limit: int = FILE_NAME_BYTES
                     ) -> list[Failure]:
    """Ids that name files and are longer than `limit` bytes in UTF-8."""
    col = FILE_NAME_KEYS.get(name)
    if col is None:
        return []
    size = pc.binary_length(pc.cast(_arrow(frame[col]), pa.large_binary()))
    rows = np.flatnonzero(size.fill_null(0).to_numpy(zero_copy_only=False) > limit)
    shown = _ids(frame[col].iloc[rows])
    return [Failure("file_name_length", col,
                    f"{name}.{col} is longer than {limit} bytes (UTF-8): too long to name its "
                    "output files", rows,
                    f"{name}.{col} " + shown + f" is longer than {limit} bytes (UTF-8): too "
                    "long to name its output files", shown)]


def fold_case(values: pd.Series) -> pa.Array:
    """The ids as a case-insensitive file system compares them (see the module doc)."""
    normal = pc.utf8_normalize(_arrow(values), form="NFC")
    return pc.utf8_lower(pc.utf8_upper(normal))


def case_collisions(name: str, frame: pd.DataFrame) -> list[Failure]:
    """Ids that name files and differ from another id of the table only in case (or in
    Unicode normalisation); a row sharing its exact id with another is a duplicate key (the
    suite's unique_key), not a collision, unless a third spelling exists."""
    col = FILE_NAME_KEYS.get(name)
    if col is None:
        return []
    values = frame[col]
    present = values.notna().to_numpy(bool)
    raw_codes, raw_ids = pd.factorize(values)  # -1 for a missing id
    fold_codes, folds = pd.factorize(pd.Series(fold_case(values).to_pandas(), dtype="string"))
    width = np.int64(len(raw_ids) + 1)
    pairs = np.unique(fold_codes[present].astype(np.int64) * width + raw_codes[present])
    pair_fold, pair_raw = pairs // width, pairs % width  # sorted by fold, then by raw code
    spellings = np.bincount(pair_fold, minlength=len(folds))
    rows = np.flatnonzero(present & (spellings[np.maximum(fold_codes, 0)] >= 2))
    if not len(rows):
        return [_collision_failure(name, col, rows, pd.Series([], dtype="string"),
                                   pd.Series([], dtype="string"))]
    first = np.searchsorted(pair_fold, np.arange(len(folds)))  # each fold's first pair
    group = fold_codes[rows]
    lowest = pair_raw[first[group]]
    second = pair_raw[np.minimum(first[group] + 1, len(pair_raw) - 1)]
    other = np.where(raw_codes[rows] == lowest, second, lowest)
    shown = _ids(values.iloc[rows])
    other_shown = _ids(pd.Series(raw_ids.take(other), dtype="string"))
    more = spellings[group] - 2
    tail = pd.Series(np.where(more > 0, " (and " + more.astype(str) + " more)", ""),
                     dtype="string")
    return [_collision_failure(name, col, rows, shown, other_shown + tail)]


def _collision_failure(name: str, col: str, rows: np.ndarray, shown: pd.Series,
                       other: pd.Series) -> Failure:
    return Failure("case_collision", col,
                   f"{name}.{col} names the same file as another id on a case-insensitive "
                   "file system (the ids differ only in letter case or accent encoding)", rows,
                   f"{name}.{col} " + shown + " and " + other + " name the same file on a "
                   "case-insensitive file system (they differ only in letter case or accent "
                   "encoding)", shown)


def calendar_years(name: str, frame: pd.DataFrame, tz: str,
                   years: tuple[int, int] = DEFAULT_YEARS) -> list[Failure]:
    """Stamps the SLA engine reads that lie outside the business calendar's years (naive
    business-local, as the snapshot holds them); a missing stamp is not checked here."""
    first, last = years
    low, high = pd.Timestamp(first, 1, 1), pd.Timestamp(last, 12, 1)
    end = pd.Timestamp(last + 1, 1, 1)
    span = f"{first}–{last}"
    failures = []
    for col in CALENDAR_STAMPS.get(name, ()):
        stamps = frame[col]
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert(tz).dt.tz_localize(None)
        outside = ((stamps < low) | (stamps >= end)).to_numpy(bool)
        last_month = ((stamps >= high) & (stamps < end)).to_numpy(bool)
        rows = np.flatnonzero(outside | last_month)
        shown = format_values(frame[col].iloc[rows], tz, "datetime")
        why = pd.Series(np.where(
            outside[rows], f" is outside the years the business calendar covers ({span})",
            f" is in the business calendar's last month ({last}-12), which only deadlines "
            "may reach"), dtype="string")
        failures.append(Failure(
            "calendar_years", col,
            f"{name}.{col} is outside the years the business calendar covers ({span}; the "
            f"SLA is counted on it from {first}-01-01 until {last}-12-01)",
            rows, f"{name}.{col} " + shown + why, shown))
    return failures


def constraint_failures(name: str, frame: pd.DataFrame, tz: str) -> list[Failure]:
    """Every check of this module that applies to table `name` (those that pass too, with no
    rows: checks.csv lists every check run)."""
    if name not in TABLES:
        return []
    return [*file_name_length(name, frame), *case_collisions(name, frame),
            *calendar_years(name, frame, tz)]


__all__ = ["CHECKS", "calendar_years", "case_collisions", "constraint_failures",
           "file_name_length", "fold_case"]
