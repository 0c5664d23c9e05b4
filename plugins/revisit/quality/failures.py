"""GX's results as the gate's failures: for each check, the failing rows (positions), the reason
each one gets and the offending value, vectorised (a check may fail millions of rows).

Reasons name the table, the column and the offending id, code, number or timestamp, never a
name, phone, e-mail or free text; the offending value itself goes to quarantine.csv only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from revisit.config.schema import TABLES, a_kind
from revisit.io.extract import PARSE_ERRORS, PARSE_PROBLEMS
from revisit.quality.errors import QualityError

VALUE_WIDTH = 100
KEY_SEPARATOR = "|"
# The checks a value extract could not type is reported as (one per problem it names, see
# revisit.io.extract.PARSE_PROBLEMS): such a value is not also reported as missing.
PARSE_CHECKS = tuple(PARSE_PROBLEMS)
_PROBLEM = "|".join(f"(?:{pattern})" for pattern in PARSE_PROBLEMS.values())
# Timestamps this close to the ends of Python's datetime range are shown without an offset:
# pandas cannot place them in a zone (extract reports those beyond it).
_SHOWN_FROM = pd.Timestamp("0001-01-03")
_SHOWN_UNTIL = pd.Timestamp("9999-12-29")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class Failure:
    """One check of one table and the rows that failed it (possibly none)."""

    check: str
    column: str
    description: str
    positions: np.ndarray
    reason: str | pd.Series  # a constant text, or one per position
    value: pd.Series  # one per position


def format_values(series: pd.Series, tz: str, kind: str | None = None) -> pd.Series:
    """Offending values as text, vectorised: timestamps ISO 8601 with the business zone's
    offset, dates ISO, missing values empty, at most VALUE_WIDTH characters."""
    series = series.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(series):
        if kind == "date":
            out = series.dt.strftime("%Y-%m-%d").astype("string")
        else:
            naive = series.dt.tz_localize(None) if series.dt.tz is not None else series
            placeable = series.where((naive >= _SHOWN_FROM) & (naive <= _SHOWN_UNTIL))
            local = (placeable.dt.tz_convert(tz) if series.dt.tz is not None else
                     placeable.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT"))
            out = local.astype("string").where(local.notna(), naive.astype("string"))
            out = out.str.replace(" ", "T", n=1, regex=False)
    elif kind in ("int", "bool") and pd.api.types.is_float_dtype(series) \
            and bool((series.dropna() % 1 == 0).all()):
        # A nullable integer column reads back from Parquet as floats: 7, not 7.0.
        out = series.astype("Int64").astype("string")
    else:
        out = series.astype("string")
    return out.fillna("").str.slice(0, VALUE_WIDTH)


def fill(text: str, parameters: dict[str, Any],
         fields: dict[str, pd.Series] | None = None) -> str | pd.Series:
    """`text` with {name} replaced by a parameter (the same for every row) or by a field
    (one text per failing row: the result is then a Series). Unknown names stay as written."""
    pieces = _PLACEHOLDER.split(text)
    out: str | pd.Series = pieces[0]
    for i in range(1, len(pieces), 2):
        name = pieces[i]
        if fields is not None and name in fields:
            out = out + fields[name]
        elif name in parameters:
            out = out + str(parameters[name])
        else:
            out = out + "{" + name + "}"
        out = out + pieces[i + 1]
    return out


def _description(meta: dict, parameters: dict[str, Any]) -> str:
    """The check in general (checks.csv, the summary): meta.description, else its reason."""
    return str(fill(str(meta.get("description") or meta["reason"]), parameters))


def no_failure(meta: dict, parameters: dict[str, Any]) -> Failure:
    """A check that passed: listed in checks.csv with 0 failed rows."""
    return Failure(str(meta["check"]), str(meta["column"]), _description(meta, parameters),
                   np.empty(0, dtype=np.int64), "", pd.Series([], dtype="string"))


def _parse_description(check: str, table: str, column: str) -> str:
    """What a parse check of one column means in general (checks.csv, the summary)."""
    if check == "local_time":
        return (f"{table}.{column}: a local time that names no single instant (ambiguous "
                "at a DST fall-back, or skipped at a spring-forward)")
    if check == "timestamp_range":
        return (f"{table}.{column}: a timestamp outside the years 1 to 9999 in UTC or in "
                "the business time zone")
    return (f"{table}.{column}: a value does not parse as "
            f"{a_kind(TABLES[table].columns[column])}")


def parse_failures(name: str, frame: pd.DataFrame, positions: np.ndarray,
                   description: str) -> list[Failure]:
    """One failure per column and PARSE_CHECKS check named in `_parse_errors` (extract
    writes "<column>: <problem> (<raw value>)" joined by '; ', the problems of
    revisit.io.extract.PARSE_PROBLEMS); text in another shape is reported whole against the
    `_parse_errors` column."""
    text = frame[PARSE_ERRORS].iloc[positions].astype("string").reset_index(drop=True)
    names = "|".join(re.escape(c) for c in sorted(TABLES[name].columns, key=len, reverse=True))
    head = rf"(?P<column>{names}): (?P<problem>{_PROBLEM}) \("
    found = text.str.extractall(
        rf"(?:^|; ){head}(?P<raw>.*?)\)(?=; (?:{names}): (?:{_PROBLEM}) \(|$)")
    failures = []
    if len(found):
        found = found.reset_index(level=0).rename(columns={"level_0": "row"})
        problem = found["problem"].astype("string")
        found["check"] = PARSE_CHECKS[0]
        for check, pattern in PARSE_PROBLEMS.items():
            found.loc[problem.str.fullmatch(pattern).fillna(False).to_numpy(bool),
                      "check"] = check
        for (col, check), part in found.groupby(["column", "check"], sort=False):
            rows = part["row"].to_numpy()
            raw = part["raw"].astype("string").reset_index(drop=True)
            said = part["problem"].astype("string").reset_index(drop=True)
            reason = f"{name}.{col}: " + said + " (" + raw + ")"
            failures.append(Failure(str(check), str(col),
                                    _parse_description(str(check), name, str(col)),
                                    positions[rows], reason, raw.str.slice(0, VALUE_WIDTH)))
    unmatched = np.setdiff1d(np.arange(len(text)),
                             found["row"].to_numpy() if len(found) else [])
    if len(unmatched):
        rest = text.iloc[unmatched].reset_index(drop=True)
        failures.append(Failure("parse_error", PARSE_ERRORS, description,
                                positions[unmatched], f"{name}: " + rest.fillna(""),
                                rest.fillna("").str.slice(0, VALUE_WIDTH)))
    return failures


def _without(failure: Failure, positions: np.ndarray) -> Failure:
    """`failure` minus the rows at `positions`."""
    keep = ~np.isin(failure.positions, positions)
    reason = failure.reason
    if not isinstance(reason, str):
        reason = reason[keep].reset_index(drop=True)
    return Failure(failure.check, failure.column, failure.description,
                   failure.positions[keep], reason,
                   failure.value[keep].reset_index(drop=True))


def _offending(frame: pd.DataFrame, kwargs: dict, positions: np.ndarray, tz: str,
               kinds: dict[str, str]) -> tuple[pd.Series, dict[str, pd.Series]]:
    """The failing rows' value as quarantine.csv shows it ('a=…, b=…' for a column pair or a
    compound key) and the fields their reason may name ({value}, {value_A}, {value_B})."""
    def shown(col: str) -> pd.Series:
        return format_values(frame[col].iloc[positions], tz, kinds.get(col))

    if "column_A" in kwargs:
        a, b = kwargs["column_A"], kwargs["column_B"]
        fields = {"value_A": shown(a), "value_B": shown(b)}
        return f"{a}=" + fields["value_A"] + f", {b}=" + fields["value_B"], fields
    if "column_list" in kwargs:
        cols = kwargs["column_list"]
        each = [shown(col) for col in cols]
        joined = each[0]
        value = f"{cols[0]}=" + each[0]
        for col, part in zip(cols[1:], each[1:], strict=True):
            joined = joined + KEY_SEPARATOR + part
            value = value + f", {col}=" + part
        return value, {"value": joined}
    value = shown(kwargs["column"])
    return value, {"value": value}


def _result_failures(name: str, frame: pd.DataFrame, res: Any, parameters: dict[str, Any],
                     tz: str) -> list[Failure]:
    """One GX result as failures: none for a pass, one per column for parse errors, else one.
    An expectation that raised, or failed without naming rows, is a broken suite."""
    config = res.expectation_config
    meta = config.meta or {}
    info = res.exception_info or {}
    if info.get("raised_exception"):
        raise QualityError(f"table {name}: expectation {config.type} "
                           f"({meta.get('column', '')}) could not run: "
                           f"{info.get('exception_message')}")
    if res.success:
        return [no_failure(meta, parameters)]
    description = _description(meta, parameters)
    index = (res.result or {}).get("unexpected_index_list")
    if index is None:
        raise QualityError(f"table {name}: expectation {config.type} failed without "
                           "telling which rows (not a row-level expectation?)")
    positions = np.asarray(index, dtype=np.int64)
    if meta["check"] == "parse_error" and config.kwargs.get("column") == PARSE_ERRORS:
        return parse_failures(name, frame, positions, description)
    value, fields = _offending(frame, config.kwargs, positions, tz, TABLES[name].columns)
    reason = fill(str(meta["reason"]), parameters, fields)
    return [Failure(str(meta["check"]), str(meta["column"]), description,
                    positions, reason, value.str.slice(0, VALUE_WIDTH))]


def gx_failure_slots(name: str, frame: pd.DataFrame, results: Iterable[Any],
                     parameters: dict[str, Any], tz: str) -> list[list[Failure]]:
    """Each expectation's failures in suite order, one list per expectation (one failure, or
    one per column and problem for the parse check). A value that did not parse is reported
    as such, not also as missing (its typed value is empty)."""
    slots = [_result_failures(name, frame, res, parameters, tz) for res in sorted(
        results, key=lambda r: (r.expectation_config.meta or {}).get("_order", 0))]
    unparsed: dict[str, np.ndarray] = {}
    for f in (f for slot in slots for f in slot):
        if f.check in PARSE_CHECKS and len(f.positions):
            unparsed[f.column] = np.union1d(unparsed.get(f.column, f.positions), f.positions)
    return [[_without(f, unparsed[f.column]) if f.check == "required" and f.column in unparsed
             else f for f in slot] for slot in slots]


def gx_failures(name: str, frame: pd.DataFrame, results: Iterable[Any],
                parameters: dict[str, Any], tz: str) -> list[Failure]:
    """gx_failure_slots as one list."""
    return [f for slot in gx_failure_slots(name, frame, results, parameters, tz) for f in slot]


__all__ = ["KEY_SEPARATOR", "PARSE_CHECKS", "VALUE_WIDTH", "Failure", "fill", "format_values",
           "gx_failure_slots", "gx_failures", "no_failure", "parse_failures"]
