"""The quality gate: a snapshot's frames -> clean frames + quarantine + quality report.

Each table's expectation suite lives in the repo as data (include/config/expectations/<table>.json,
Great Expectations' own suite format) and is evaluated with Great Expectations (GX Core 1.x,
ephemeral context, one pandas batch per table). The suites are generated from revisit.config.schema
(`python -m revisit.quality.gate` rewrites them; a unit test fails when they drift): required -> not
null, key -> unique, enums -> in set, 0/1 flags, ranges, timestamps in order, plausible phone
numbers, e-mail addresses, non-blank names, and the `_parse_errors` column of the snapshot (a
value extract could not parse is a failure carrying extract's text).

Reference checks (a child row pointing at a parent key) are evaluated with vectorised pandas,
not GX: GX re-serialises an `in set` value set tens of times per validation, which costs ~10 s
for 30k parent keys and would cost minutes for a million. They are reported exactly like the
suite's checks.

Cascade: a row whose parent row was quarantined is quarantined too (check
`parent_quarantined`, reason naming the parent). The clean frames are therefore referentially
closed: every reference in a clean row resolves to a clean row, so the visit rules, the SLA
engine and the reports never meet a customer, agent or ticket that the gate removed. A row
counts once toward its table's failure share however many checks it fails; cascaded rows count
too, since they are as absent from today's call lists as the rows that failed themselves.

Decisions:
- a table whose failure share exceeds policy.quality.max_failure_share stops the run (at the
  threshold it goes on); an empty table passes, except departments and agents
  (no list can be assigned without them); an empty customers table is a date before the CRM
  had customers and gives empty lists;
- every removed row has at least one quarantine row (one per failed check) and clean + removed
  rows add up to the input;
- a duplicated key quarantines every row that has it: which copy is right cannot be told;
- a value extract could not parse is reported once, per column, as `parse_error` (not also as
  `required` although the typed value is empty);
- a plausible phone number written oddly (spaces, dashes, brackets, full-width digits, a
  +86 / 0086 prefix) passes and reaches the clean data in the form an agent dials
  (`dial_phone`: 13812345678); a value that is no phone number ('n/a', an extension) fails;
- customers.email is not checked: Revisit never uses it, and a malformed address must not take
  a customer (and by cascade their orders, tickets and visits) off the call lists;
- reasons name the table, the column and the offending id, code, number or timestamp, never a
  name, phone, e-mail or free text: they go into the readable summary and the results database.
  The offending value itself is in quarantine.csv's `value` column (a personal-data file like
  the call lists); the readable summary shows ids and reasons only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.config.paths import INCLUDE_DIR, TEMPLATES_DIR
from revisit.config.policy import Policy
from revisit.config.schema import TABLES, TICKET_STAMPS, Table, a_kind
from revisit.core.patterns import NOT_SPACE, SPACE, SPACE_CHARS
from revisit.io.extract import PARSE_ERRORS
from revisit.io.files import SAFE_NAME_PATTERN, atomic_dir, write_text

log = logging.getLogger(__name__)

SUITES_DIR = INCLUDE_DIR / "config" / "expectations"
SUITE_PREFIX = "revisit."
# Without these, nothing can be assigned or called: an empty one stops the run.
# Without departments or agents no list can be assigned: an empty one is a broken extract. An
# empty customers table is a date before the CRM had customers: empty lists, not an error (a
# customers table whose rows all failed stops the run through the failure share anyway).
NON_EMPTY_TABLES = ("departments", "agents")
QUARANTINE_COLUMNS = ["table", "row_key", "check", "column", "reason", "value"]
SUMMARY_COLUMNS = [
    "table", "rows", "failed_rows", "clean_rows", "cascaded_rows", "failure_share", "passed",
]
CHECK_COLUMNS = ["table", "check", "column", "failed_rows", "description"]
VALUE_WIDTH = 100
EXAMPLES_PER_CHECK = 5
KEY_SEPARATOR = "|"

# Timestamps that must not come before another one of the same row: (later, earlier).
STAMP_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (("updated_at", "created_at"),),
    "orders": (("delivered_at", "ordered_at"),),
    "tickets": (
        *((stamp, "created_at") for stamp in TICKET_STAMPS[1:]),
        ("closed_at", "resolved_at"),
        ("result_fed_back_at", "resolved_at"),
    ),
    "ticket_pauses": (("resumed_at", "paused_at"),),
}
# Inclusive numeric ranges (None = open end); money columns are non-negative on top of these.
RANGES: dict[tuple[str, str], tuple[int | None, int | None]] = {
    ("tickets", "satisfaction"): (1, 5),
    ("visits", "satisfaction"): (1, 10),
    ("agents", "daily_capacity"): (0, None),
}
EMAIL_PATTERN = (rf"^{SPACE}*$|^{SPACE}*[^@{SPACE_CHARS}]+@[^@{SPACE_CHARS}]+"
                 rf"\.[^@.{SPACE_CHARS}]+{SPACE}*$")  # blank counts as absent
NOT_BLANK_PATTERN = NOT_SPACE
PHONE_PARAMETER = "phone_pattern"
# E-mail addresses are not row checks: a malformed one must not take a customer, an agent or
# a whole department (and, by cascade, everything under it) off the call lists. Revisit never
# writes to customers or agents; a head's bad address fails only that head's e-mail, with the
# reason, in the delivery ledger (revisit.delivery.mail).
UNCHECKED_EMAILS = frozenset({("customers", "email"), ("agents", "email"),
                              ("departments", "head_email")})
# Ids that name output files (call_lists/D/<agent_id>.csv, sla/D/digest_<department_id>.csv,
# reports/M/<department_id>.pdf): one that would leave its folder ('../x') is quarantined.
FILE_NAME_KEYS = {"departments": "department_id", "agents": "agent_id"}

_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—.·()/]")
_CN_PREFIX = re.compile(r"^(?:\+86|0086|86(?=1\d{10}$))")


class QualityError(ValueError):
    """The frames or the suites cannot be checked (missing table or column, broken suite)."""


class QualityStop(RuntimeError):
    """The gate stopped the run (a table failed too much, or a needed table is empty)."""


# ================================================================= phone numbers
def dial_phone(values: pd.Series) -> pd.Series:
    """Phone numbers as an agent dials them, vectorised: full-width characters folded to
    ASCII (NFKC), separators (spaces, dashes, dots, brackets, slashes) removed, China's own
    country code (+86, 0086, or 86 before a mobile number) dropped, another country's '+'
    kept. '+86 (138) 1234-5678' and '１３８ １２３４ ５６７８' both become '13812345678'.
    A blank value becomes NA. Returns a nullable string Series on the same index."""
    text = values.astype("string").str.normalize("NFKC")
    text = text.str.replace(_PHONE_SEPARATORS, "", regex=True)
    text = text.str.replace(_CN_PREFIX, "", regex=True)
    return text.mask(text == "")


def normalize_phone(values: pd.Series) -> pd.Series:
    """Phone numbers as bare digits where they are plausible-looking, vectorised: the dial
    form of `dial_phone` without a leading '+'. What is left of a non-phone ('n/a', an
    extension '转 12') keeps its non-digits, so a digits-only pattern rejects it."""
    return dial_phone(values).str.replace(r"^\+", "", regex=True)


def phone_pattern(digits: Sequence[int]) -> str:
    low, high = digits
    return rf"^\d{{{low},{high}}}$"


def _is_phone(column: str) -> bool:
    return column == "phone" or column.endswith("_phone")


def _is_email(column: str) -> bool:
    return column == "email" or column.endswith("_email")


# ================================================================= suites (as data)
def _expectation(kind: str, check: str, column: str, reason: str, /, *,
                 description: str | None = None, **kwargs: Any) -> dict:
    """One expectation in GX's suite JSON; meta says how the gate reports a failing row:
    `check` (a short name), `column`, `reason` (may hold {value}: the row's value of the
    column, and {<parameter>}), and `description` (the check in general; default reason)."""
    meta = {"check": check, "column": column, "reason": reason}
    if description:
        meta["description"] = description
    return {"type": kind, "kwargs": kwargs, "meta": meta}


def build_suite(table: Table) -> dict:
    """The expectation suite of one table, derived from revisit.config.schema (GX suite JSON).

    meta.reason is the text a failing row gets; it may name {value} (the row's value of the
    column, or of the key columns joined by '|'), {value_A} / {value_B} (a column pair) and
    the run's parameters ({phone_digits}). Personal data (names, phones, e-mails, free text)
    is never put in a reason: reasons go into the readable summary."""
    t = table.name
    exps: list[dict] = [
        _expectation("expect_column_values_to_be_null", "parse_error", PARSE_ERRORS,
                     f"{t}: a value does not parse as its column's type", column=PARSE_ERRORS,
                     description=f"{t}: a value does not parse as its column's type"),
    ]
    for col in table.required:
        exps.append(_expectation("expect_column_values_to_not_be_null", "required", col,
                                 f"{t}.{col} is missing", column=col))
    for col in table.required:
        if table.columns[col] in ("id", "text") and col not in table.enums:
            exps.append(_expectation("expect_column_values_to_match_regex", "blank", col,
                                     f"{t}.{col} is blank", column=col, regex=NOT_BLANK_PATTERN))
    if t in FILE_NAME_KEYS:
        col = FILE_NAME_KEYS[t]
        exps.append(_expectation("expect_column_values_to_match_regex", "file_name", col,
                                 f"{t}.{col} {{value}} cannot name a file (it holds '/', '\\', "
                                 "a control character, or is '.' or '..')",
                                 column=col, regex=SAFE_NAME_PATTERN,
                                 description=f"{t}.{col} cannot name an output file"))
    if len(table.key) == 1:
        (col,) = table.key
        exps.append(_expectation("expect_column_values_to_be_unique", "unique_key", col,
                                 f"{t}.{col} {{value}} occurs in more than one row",
                                 column=col,
                                 description=f"{t}.{col} is not unique (every row that "
                                             "shares a key is quarantined)"))
    else:
        cols = ", ".join(table.key)
        exps.append(_expectation("expect_compound_columns_to_be_unique", "unique_key", cols,
                                 f"{t} key ({cols}) = {{value}} occurs in more than one row",
                                 column_list=list(table.key),
                                 description=f"{t} key ({cols}) is not unique (every row "
                                             "that shares a key is quarantined)"))
    for col, values in table.enums.items():
        exps.append(_expectation("expect_column_values_to_be_in_set", "enum", col,
                                 f"{t}.{col} '{{value}}' is not one of {', '.join(values)}",
                                 column=col, value_set=list(values),
                                 description=f"{t}.{col} is not one of {', '.join(values)}"))
    for col in table.columns_of("bool"):
        exps.append(_expectation("expect_column_values_to_be_in_set", "boolean", col,
                                 f"{t}.{col} {{value}} is not 0 or 1", column=col,
                                 value_set=[0, 1], description=f"{t}.{col} is not 0 or 1"))
    for col, kind in table.columns.items():
        low, high = RANGES.get((t, col), (0, None) if kind == "money" else (None, None))
        if low is None and high is None:
            continue
        if high is None:
            rule = "is negative" if low == 0 else f"is below {low}"
        else:
            rule = f"is not between {low} and {high}"
        exps.append(_expectation("expect_column_values_to_be_between", "range", col,
                                 f"{t}.{col} {{value}} {rule}", column=col,
                                 min_value=low, max_value=high,
                                 description=f"{t}.{col} {rule}"))
    for later, earlier in STAMP_ORDER.get(t, ()):
        exps.append(_expectation("expect_column_pair_values_a_to_be_greater_than_b",
                                 "timestamp_order", later,
                                 f"{t}.{later} {{value_A}} is before {earlier} {{value_B}}",
                                 column_A=later, column_B=earlier, or_equal=True,
                                 ignore_row_if="either_value_is_missing",
                                 description=f"{t}.{later} is before {earlier}"))
    for col in table.columns_of("text"):
        if _is_phone(col):
            exps.append(_expectation(
                "expect_column_values_to_match_regex", "phone", col,
                f"{t}.{col} is not a plausible phone number ({{phone_digits}} digits after "
                "removing separators and a +86/0086 prefix)",
                column=col, regex={"$PARAMETER": PHONE_PARAMETER}))
        elif _is_email(col) and (t, col) not in UNCHECKED_EMAILS:
            exps.append(_expectation("expect_column_values_to_match_regex", "email", col,
                                     f"{t}.{col} is not a valid e-mail address",
                                     column=col, regex=EMAIL_PATTERN))
    return {
        "name": f"{SUITE_PREFIX}{t}",
        "meta": {
            "table": t,
            "generated_from": "revisit.config.schema "
                              "(python -m revisit.quality.gate rewrites this file)",
            "parameters": {PHONE_PARAMETER: "from policy.quality.phone_digits"},
        },
        "expectations": exps,
    }


def build_suites() -> dict[str, dict]:
    return {name: build_suite(table) for name, table in TABLES.items()}


def write_suites(folder: Path = SUITES_DIR) -> list[Path]:
    """(Re)write the suites generated from revisit.config.schema as JSON files."""
    written = []
    for name, suite in build_suites().items():
        text = json.dumps(suite, indent=2, ensure_ascii=True) + "\n"
        written.append(write_text(folder / f"{name}.json", text))
    return written


def load_suites(folder: Path = SUITES_DIR) -> dict[str, dict]:
    """The stored suites, one per canonical table, checked for shape."""
    suites = {}
    for name in TABLES:
        path = folder / f"{name}.json"
        try:
            suite = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise QualityError(f"no expectation suite for table {name}: {path} is missing "
                               "(python -m revisit.quality.gate writes the default suites)"
                               ) from None
        except json.JSONDecodeError as error:
            raise QualityError(f"expectation suite {path} is not valid JSON: {error}") from None
        for i, exp in enumerate(suite.get("expectations", [])):
            meta = exp.get("meta") or {}
            if not isinstance(exp.get("type"), str) or not isinstance(exp.get("kwargs"), dict):
                raise QualityError(f"{path}: expectation {i} needs a 'type' and 'kwargs'")
            if not meta.get("check") or not meta.get("reason"):
                raise QualityError(f"{path}: expectation {i} ({exp['type']}) needs meta.check "
                                   "and meta.reason (the text quarantined rows get)")
        suites[name] = suite
    return suites


def _suite_columns(suite: dict) -> list[str]:
    cols: list[str] = []
    for exp in suite["expectations"]:
        kw = exp["kwargs"]
        for name in ("column", "column_A", "column_B"):
            if isinstance(kw.get(name), str):
                cols.append(kw[name])
        cols.extend(kw.get("column_list") or [])
    return list(dict.fromkeys(cols))


# ================================================================= Great Expectations
GX_CHUNK_ROWS = 1_000_000
# Expectations whose verdict on a row depends on that row alone: safe to run chunk by chunk.
# Any other (uniqueness, ordering ...) sees the whole table.
ROW_LOCAL_EXPECTATIONS = frozenset({
    "expect_column_values_to_be_null", "expect_column_values_to_not_be_null",
    "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_regex_list", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_be_between",
    "expect_column_value_lengths_to_be_between", "expect_column_value_lengths_to_equal",
    "expect_column_values_to_match_strftime_format",
    "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_pair_values_to_be_equal",
    "expect_select_column_values_to_be_unique_within_record",
})


@dataclass
class _Outcome:
    """One expectation's result over every chunk (the attributes of GX's result read here)."""

    expectation_config: Any
    success: bool
    result: dict[str, Any]
    exception_info: dict[str, Any]


def _skip_batch_fingerprint() -> None:
    """GX hashes every pandas batch under 1 GB (HASH_THRESHOLD) into a 'pandas_data_fingerprint'
    marker, twice per validation, for a marker nothing here reads: validating the 1.2 M visits
    of 100,000 customers took 2.7 s with it and 1.7 s without. The expectations are
    unaffected."""
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


class _Gx:
    """One ephemeral GX context per gate run: quiet, no files, no analytics."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        for name in ("great_expectations", "great_expectations.core", "great_expectations._docs"):
            logging.getLogger(name).setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        _skip_batch_fingerprint()
        self.gx = gx
        self._config = ExpectationConfiguration
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("revisit_snapshot")
        self._assets = 0

    def validate_table(self, table: str, view: pd.DataFrame, suite: dict,
                       parameters: dict[str, Any]) -> list[_Outcome]:
        """The suite over `view` (positional index), row-local expectations in chunks of
        GX_CHUNK_ROWS: GX makes working copies (masks, converted columns) of the rows it is
        given, so a chunk bounds them whatever the table's size (the gate's peak at a million
        customers is the 11.7 M-row visits table itself, not GX). Expectations over the whole
        table (uniqueness) get the whole table, only their columns."""
        numbered = [{**exp, "meta": {**(exp.get("meta") or {}), "_order": i}}
                    for i, exp in enumerate(suite["expectations"])]
        whole = [e for e in numbered if e["type"] not in ROW_LOCAL_EXPECTATIONS]
        local = [e for e in numbered if e["type"] in ROW_LOCAL_EXPECTATIONS]
        batches: list[list[Any]] = []
        if whole:
            part = {**suite, "expectations": whole}
            batches.append(self.validate(table, view[_suite_columns(part)],
                                         self.suite(table, part), parameters))
        if local:
            part = {**suite, "expectations": local}
            checks = self.suite(table, part)
            columns = _suite_columns(part)
            for start in range(0, len(view), GX_CHUNK_ROWS):
                chunk = view.iloc[start:start + GX_CHUNK_ROWS][columns]
                batches.append(self.validate(table, chunk, checks, parameters))
        merged: dict[int, _Outcome] = {}
        for results in batches:
            for res in results:
                order = (res.expectation_config.meta or {}).get("_order", 0)
                found = (res.result or {}).get("unexpected_index_list")
                outcome = merged.setdefault(order, _Outcome(res.expectation_config, True, {}, {}))
                outcome.success = outcome.success and bool(res.success)
                if found is not None:
                    outcome.result.setdefault("unexpected_index_list", []).extend(found)
                if (res.exception_info or {}).get("raised_exception") \
                        and not outcome.exception_info:
                    outcome.exception_info = res.exception_info
        return [merged[k] for k in sorted(merged)]

    def suite(self, name: str, suite: dict) -> Any:
        """GX's suite of expectations numbered by validate_table (meta _order: their place in
        the whole suite, which errors name and results are sorted by)."""
        expectations = []
        for exp in suite["expectations"]:
            order = exp["meta"]["_order"]
            try:
                expectations.append(self._config(
                    type=exp["type"], kwargs=exp["kwargs"], meta=exp["meta"],
                ).to_domain_obj())
            except Exception as error:  # GX raises several types for a bad configuration
                raise QualityError(f"expectation suite {name}: expectation {order} "
                                   f"({exp['type']}) is invalid: {error}") from None
        return self.gx.ExpectationSuite(name=suite.get("name") or name,
                                        expectations=expectations)

    def validate(self, table: str, frame: pd.DataFrame, suite: Any,
                 parameters: dict[str, Any]) -> list[Any]:
        self._assets += 1  # one asset per validation: a table may be validated in chunks
        asset = self.source.add_dataframe_asset(f"{table}_{self._assets}")
        batch = asset.add_batch_definition_whole_dataframe(table).get_batch(
            batch_parameters={"dataframe": frame}
        )
        result = batch.validate(
            suite,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
            expectation_parameters=parameters,
        )
        return list(result.results)


# ================================================================= the gate
@dataclass
class QualityResult:
    """What the gate decided. `quarantine` has one row per (removed row, failed check)."""

    clean: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    summary: pd.DataFrame  # one row per table
    checks: pd.DataFrame  # one row per check: table, check, column, failed_rows, description
    stopped: bool = False
    stop_reason: str = ""  # empty unless stopped
    timings: dict[str, float] = field(default_factory=dict)  # seconds per table

    def raise_if_stopped(self) -> None:
        if self.stopped:
            raise QualityStop(f"quality gate stopped the run: {self.stop_reason}")


@dataclass
class _Failure:
    check: str
    column: str
    description: str
    positions: np.ndarray
    reason: str | pd.Series  # a constant text, or one per position
    value: pd.Series  # one per position


def table_order() -> list[str]:
    """Parents before children, otherwise in schema order (departments, agents, customers,
    orders, tickets, ticket_pauses, visits)."""
    parents = {name: set(table.references.values()) - {name} for name, table in TABLES.items()}
    TopologicalSorter(parents).prepare()  # raises CycleError on a reference cycle
    order: list[str] = []
    while len(order) < len(TABLES):
        order.append(next(n for n in TABLES if n not in order and parents[n] <= set(order)))
    return order


def _empty_frame(table: Table) -> pd.DataFrame:
    return pd.DataFrame({
        col: pd.Series(dtype="string" if kind in ("id", "text") else
                       "Int64" if kind == "int" else "Int8" if kind == "bool" else
                       "float64" if kind == "money" else "datetime64[us]")
        for col, kind in table.columns.items()
    })


_NUMERIC_KINDS = ("int", "bool", "money")


def _check_columns(name: str, frame: pd.DataFrame, suite: dict) -> None:
    """Every canonical column (and every column the suite names) is there, and typed: a
    timestamp held as text would be compared as text, so that is refused too."""
    expected = [*TABLES[name].columns, *_suite_columns(suite)]
    for col in dict.fromkeys(expected):
        if col != PARSE_ERRORS and col not in frame.columns:
            raise QualityError(f"table {name} has no column {col} (the quality gate needs the "
                               "canonical columns of revisit.config.schema)")
    for col, kind in TABLES[name].columns.items():
        series = frame[col]
        if kind == "datetime":
            typed = pd.api.types.is_datetime64_any_dtype(series)
        elif kind == "date":  # Parquet date32 reads back as datetime.date objects
            typed = not pd.api.types.is_string_dtype(series) or series.dtype == object
        elif kind in _NUMERIC_KINDS:
            typed = pd.api.types.is_numeric_dtype(series)
        else:
            continue
        if not typed and series.notna().any():
            raise QualityError(f"table {name} column {col} holds {series.dtype} values, not "
                               f"{kind} (pass frames typed as read_snapshot returns them)")


def _format_values(series: pd.Series, tz: str, kind: str | None = None) -> pd.Series:
    """Offending values as text, vectorised: timestamps ISO 8601 with the business zone's
    offset, dates ISO, missing values empty, at most VALUE_WIDTH characters."""
    series = series.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(series):
        if kind == "date":
            out = series.dt.strftime("%Y-%m-%d").astype("string")
        else:
            naive = series.dt.tz_localize(None) if series.dt.tz is not None else series
            local = (series.dt.tz_convert(tz) if series.dt.tz is not None else
                     series.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT"))
            out = local.astype("string").where(local.notna(), naive.astype("string"))
            out = out.str.replace(" ", "T", n=1, regex=False)
    elif kind in ("int", "bool") and pd.api.types.is_float_dtype(series) \
            and bool((series.dropna() % 1 == 0).all()):
        # A nullable integer column reads back from Parquet as floats: 7, not 7.0.
        out = series.astype("Int64").astype("string")
    else:
        out = series.astype("string")
    return out.fillna("").str.slice(0, VALUE_WIDTH)


def _row_keys(frame: pd.DataFrame, table: Table, positions: np.ndarray) -> np.ndarray:
    """The key value(s) of the rows at `positions` joined by '|' (timestamps ISO), or
    '<row N>' (N from 1 in the frame's order) when a key value is missing or blank."""
    parts = []
    for col in table.key:
        part = frame[col].iloc[positions]
        if pd.api.types.is_datetime64_any_dtype(part):
            part = part.where(part.notna()).astype("string").str.replace(" ", "T", n=1)
            if table.columns.get(col) == "date":
                part = part.str.slice(0, 10)
        parts.append(part.astype("string").reset_index(drop=True))
    missing = pd.Series(False, index=range(len(positions)))
    for part in parts:
        missing |= part.isna() | (part.str.strip() == "").fillna(True)
    joined = parts[0].fillna("")
    for part in parts[1:]:
        joined = joined + KEY_SEPARATOR + part.fillna("")
    fallback = "<row " + pd.Series(positions + 1).astype("string") + ">"
    return joined.where(~missing, fallback).to_numpy(dtype=object)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(text: str, parameters: dict[str, Any],
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


def _no_failure(meta: dict, parameters: dict[str, Any]) -> _Failure:
    description = str(_fill(str(meta.get("description") or meta["reason"]), parameters))
    return _Failure(str(meta["check"]), str(meta["column"]), description,
                    np.empty(0, dtype=np.int64), "", pd.Series([], dtype="string"))


def _parse_failures(name: str, frame: pd.DataFrame, positions: np.ndarray,
                    description: str) -> list[_Failure]:
    """One failure per column named in `_parse_errors` (extract writes
    "<column>: not a/an <kind> (<raw value>)" joined by '; '); text in another shape is
    reported whole against the `_parse_errors` column."""
    text = frame[PARSE_ERRORS].iloc[positions].astype("string").reset_index(drop=True)
    names = "|".join(re.escape(c) for c in sorted(TABLES[name].columns, key=len, reverse=True))
    head = rf"(?P<column>{names}): not (?P<kind>an? \w+) \("
    found = text.str.extractall(rf"(?:^|; ){head}(?P<raw>.*?)\)(?=; (?:{names}): not an? |$)")
    failures = []
    if len(found):
        found = found.reset_index(level=0).rename(columns={"level_0": "row"})
        for col, part in found.groupby("column", sort=False):
            rows = part["row"].to_numpy()
            raw = part["raw"].astype("string").reset_index(drop=True)
            kind = part["kind"].astype("string").reset_index(drop=True)  # with its article
            reason = f"{name}.{col}: not " + kind + " (" + raw + ")"
            failures.append(_Failure("parse_error", str(col),
                                     f"{name}.{col}: a value does not parse as "
                                     f"{a_kind(TABLES[name].columns[str(col)])}",
                                     positions[rows],
                                     reason, raw.str.slice(0, VALUE_WIDTH)))
    unmatched = np.setdiff1d(np.arange(len(text)),
                             found["row"].to_numpy() if len(found) else [])
    if len(unmatched):
        rest = text.iloc[unmatched].reset_index(drop=True)
        failures.append(_Failure("parse_error", PARSE_ERRORS, description,
                                 positions[unmatched], f"{name}: " + rest.fillna(""),
                                 rest.fillna("").str.slice(0, VALUE_WIDTH)))
    return failures


def _without(failure: _Failure, positions: np.ndarray) -> _Failure:
    """`failure` minus the rows at `positions`."""
    keep = ~np.isin(failure.positions, positions)
    reason = failure.reason
    if not isinstance(reason, str):
        reason = reason[keep].reset_index(drop=True)
    return _Failure(failure.check, failure.column, failure.description,
                    failure.positions[keep], reason,
                    failure.value[keep].reset_index(drop=True))


def _gx_failures(name: str, frame: pd.DataFrame, results: Iterable[Any],
                 parameters: dict[str, Any], tz: str) -> list[_Failure]:
    kinds = TABLES[name].columns
    failures: list[_Failure] = []
    for res in sorted(results, key=lambda r: (r.expectation_config.meta or {}).get("_order", 0)):
        config = res.expectation_config
        meta = config.meta or {}
        info = res.exception_info or {}
        if info.get("raised_exception"):
            raise QualityError(f"table {name}: expectation {config.type} "
                               f"({meta.get('column', '')}) could not run: "
                               f"{info.get('exception_message')}")
        kwargs = config.kwargs
        if res.success:
            failures.append(_no_failure(meta, parameters))
            continue
        description = str(_fill(str(meta.get("description") or meta["reason"]), parameters))
        index = (res.result or {}).get("unexpected_index_list")
        if index is None:
            raise QualityError(f"table {name}: expectation {config.type} failed without "
                               "telling which rows (not a row-level expectation?)")
        positions = np.asarray(index, dtype=np.int64)
        if meta["check"] == "parse_error" and kwargs.get("column") == PARSE_ERRORS:
            failures += _parse_failures(name, frame, positions, description)
            continue

        def shown(col: str, positions: np.ndarray = positions) -> pd.Series:
            return _format_values(frame[col].iloc[positions], tz, kinds.get(col))

        if "column_A" in kwargs:
            a, b = kwargs["column_A"], kwargs["column_B"]
            fields = {"value_A": shown(a), "value_B": shown(b)}
            value = f"{a}=" + fields["value_A"] + f", {b}=" + fields["value_B"]
        elif "column_list" in kwargs:
            cols = kwargs["column_list"]
            each = [shown(col) for col in cols]
            joined = each[0]
            value = f"{cols[0]}=" + each[0]
            for col, part in zip(cols[1:], each[1:], strict=True):
                joined = joined + KEY_SEPARATOR + part
                value = value + f", {col}=" + part
            fields = {"value": joined}
        else:
            value = shown(kwargs["column"])
            fields = {"value": value}
        reason = _fill(str(meta["reason"]), parameters, fields)
        failures.append(_Failure(str(meta["check"]), str(meta["column"]), description,
                                 positions, reason, value.str.slice(0, VALUE_WIDTH)))
    # A value that did not parse is reported as such, not also as missing.
    unparsed = {f.column: f.positions for f in failures
                if f.check == "parse_error" and len(f.positions)}
    return [_without(f, unparsed[f.column]) if f.check == "required" and f.column in unparsed
            else f for f in failures]


def _key_set(values: pd.Series) -> pa.Array:
    """Distinct non-null ids as an Arrow array (the value set of a reference check)."""
    return pa.array(pd.unique(values.dropna()), type=pa.large_string())


def _isin(values: pd.Series, keys: pa.Array) -> np.ndarray:
    """values.isin(keys) via Arrow: ~10x faster than pandas for millions of string ids."""
    if not len(keys):
        return np.zeros(len(values), dtype=bool)
    arr = pa.array(values.astype("string").array, type=pa.large_string())
    return pc.is_in(arr, value_set=keys).fill_null(False).to_numpy(zero_copy_only=False)


def _reference_failures(name: str, frame: pd.DataFrame, all_keys: dict[str, pa.Array],
                        failed_keys: dict[str, pa.Array]) -> list[_Failure]:
    failures = []
    for col, parent in TABLES[name].references.items():
        values = frame[col]
        present = values.notna().to_numpy()
        known = _isin(values, all_keys[parent])
        orphan = np.flatnonzero(present & ~known)
        shown = _format_values(values.iloc[orphan], "UTC")  # ids: the zone is never used
        failures.append(_Failure(
            "reference", col, f"{name}.{col} points at a row of {parent} that does not exist",
            orphan, f"{name}.{col} " + shown + f" does not exist in {parent}", shown))
        cascaded = np.flatnonzero(present & _isin(values, failed_keys[parent]))
        shown = _format_values(values.iloc[cascaded], "UTC")
        failures.append(_Failure(
            "parent_quarantined", col,
            f"{name}.{col} points at a row of {parent} that was quarantined",
            cascaded, f"{name}.{col} " + shown + f" points at a quarantined row of {parent}",
            shown))
    return failures


def run_quality_gate(frames: Mapping[str, pd.DataFrame], policy: Policy, *,
                     suites: dict[str, dict] | None = None) -> QualityResult:
    """Check every canonical table; remove failing rows (and rows whose parent failed).

    `frames` as read_snapshot returns them (a `_parse_errors` column is optional;
    ticket_pauses may be absent, as the optional table). Raises QualityError when a table or a
    column the checks need is missing; returns a QualityResult whose `stopped` says whether
    the run must stop."""
    suites = suites if suites is not None else load_suites()
    threshold = policy.quality.max_failure_share
    tz = policy.calendar.timezone
    low, high = policy.quality.phone_digits
    parameters = {PHONE_PARAMETER: phone_pattern((low, high)),
                  "phone_digits": f"{low} to {high}" if low != high else str(low)}
    for name in frames:
        if name not in TABLES:
            log.warning("quality gate: ignoring frame %r (not a canonical table)", name)
    gx: _Gx | None = None

    clean: dict[str, pd.DataFrame] = {}
    parts: list[pd.DataFrame] = []
    summary_rows: list[dict[str, Any]] = []
    check_rows: list[dict[str, Any]] = []
    all_keys: dict[str, pa.Array] = {}
    failed_keys: dict[str, pa.Array] = {}
    timings: dict[str, float] = {}
    stop: list[str] = []

    for name in table_order():
        started = time.perf_counter()
        table = TABLES[name]
        if name in frames:
            frame = frames[name]
        elif name == "ticket_pauses":
            frame = _empty_frame(table)
        else:
            raise QualityError(f"no frame for table {name} (the snapshot must hold every "
                               "canonical table)")
        suite = suites.get(name)
        if suite is None:
            raise QualityError(f"no expectation suite for table {name}")
        _check_columns(name, frame, suite)
        frame = frame.reset_index(drop=True)
        if PARSE_ERRORS not in frame.columns:
            frame = frame.assign(**{PARSE_ERRORS: pd.Series(pd.NA, index=frame.index,
                                                             dtype="string")})

        failures: list[_Failure] = []
        if len(frame):
            view = frame[_suite_columns(suite)]
            phones = [c for c in view.columns if _is_phone(c)]
            if phones:
                view = view.assign(**{c: normalize_phone(view[c]) for c in phones})
            if gx is None:
                gx = _Gx()
            results = gx.validate_table(name, view, suite, parameters)
            failures += _gx_failures(name, frame, results, parameters, tz)
            failures += _reference_failures(name, frame, all_keys, failed_keys)
        else:  # nothing to validate; the checks are listed with no failures
            failures += [_no_failure(e["meta"], parameters) for e in suite["expectations"]]
            failures += _reference_failures(name, frame, all_keys, failed_keys)

        failed = np.zeros(len(frame), dtype=bool)
        own_failed = np.zeros(len(frame), dtype=bool)
        all_positions = [f.positions for f in failures if len(f.positions)]
        for f in failures:
            failed[f.positions] = True
            if f.check != "parent_quarantined":
                own_failed[f.positions] = True
            check_rows.append({"table": name, "check": f.check, "column": f.column,
                               "failed_rows": len(f.positions), "description": f.description})
        if all_positions:
            positions = np.unique(np.concatenate(all_positions))
            keys = pd.Series(_row_keys(frame, table, positions), index=positions)
            for order, f in enumerate(failures):
                if not len(f.positions):
                    continue
                parts.append(pd.DataFrame({
                    "table": name,
                    "row_key": keys.loc[f.positions].to_numpy(),
                    "check": f.check,
                    "column": f.column,
                    "reason": f.reason if isinstance(f.reason, str) else f.reason.to_numpy(),
                    "value": f.value.to_numpy(),
                    "_table": len(summary_rows),
                    "_pos": f.positions,
                    "_order": order,
                }))

        kept = frame.drop(columns=[PARSE_ERRORS])
        if failed.any():  # else no copy: with a clean table that is the whole visits table
            kept = kept.loc[~failed].reset_index(drop=True)
        phones = [c for c in kept.columns if _is_phone(c)]
        if phones:  # a plausible number written oddly is kept, in the form an agent dials
            kept = kept.assign(**{c: dial_phone(kept[c]) for c in phones})
        clean[name] = kept
        if len(table.key) == 1:
            (key,) = table.key
            all_keys[name] = _key_set(frame[key])
            bad = frame.loc[failed, key]
            failed_keys[name] = _key_set(bad[~_isin(bad, _key_set(kept[key]))])

        rows, n_failed = len(frame), int(failed.sum())
        n_cascaded = int((failed & ~own_failed).sum())
        share = n_failed / rows if rows else 0.0
        passed = share <= threshold
        if share > threshold:
            why = (f", {n_cascaded} of them because a row they point at was quarantined"
                   if n_cascaded else "")
            stop.append(f"{name}: {n_failed} of {rows} rows failed ({share:.1%}{why}), more "
                        f"than the limit of {threshold:.1%} (policy quality.max_failure_share)")
        if name in NON_EMPTY_TABLES and not len(kept):
            passed = False
            stop.append(f"{name}: no usable rows" + (" (the table is empty)" if not rows else "")
                        + "; call lists need departments and agents")
        summary_rows.append({
            "table": name, "rows": rows, "failed_rows": n_failed, "clean_rows": len(kept),
            "cascaded_rows": n_cascaded, "failure_share": share,
            "passed": passed,
        })
        timings[name] = time.perf_counter() - started
        log.info("quality %s: %d rows, %d failed (%.2f%%) in %.1f s", name, rows, n_failed,
                 100 * share, timings[name])

    if parts:
        quarantine = pd.concat(parts, ignore_index=True)
        quarantine = quarantine.sort_values(["_table", "_pos", "_order"], kind="stable")
        quarantine = quarantine[QUARANTINE_COLUMNS].reset_index(drop=True)
    else:
        quarantine = pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS})
    quarantine = quarantine.astype(dict.fromkeys(QUARANTINE_COLUMNS, "string"))
    result = QualityResult(
        clean=clean,
        quarantine=quarantine,
        summary=pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS),
        checks=pd.DataFrame(check_rows, columns=CHECK_COLUMNS),
        stopped=bool(stop),
        stop_reason="; ".join(stop),
        timings=timings,
    )
    if result.stopped:
        log.warning("quality gate stops the run: %s", result.stop_reason)
    return result


# ================================================================= outputs
_PARSE_REASON = re.compile(r"^(\S+: not an? \w+) \(.*\)$", re.DOTALL)


def _safe_reason(check: str, reason: str) -> str:
    """A reason fit for the readable summary: parse errors lose the raw value they quote
    (it may be anything, even personal data); the other reasons hold ids, codes, numbers and
    timestamps only."""
    if check != "parse_error":
        return reason
    match = _PARSE_REASON.match(reason)
    return match.group(1) if match else "a value does not parse (see quarantine.csv)"


def _render_context(result: QualityResult, call_date: dt.date | str) -> dict[str, Any]:
    q = result.quarantine
    checks = []
    failing = result.checks[result.checks["failed_rows"] > 0]
    for row in failing.itertuples(index=False):
        sample = q[(q["table"] == row.table) & (q["check"] == row.check)
                   & (q["column"] == row.column)].head(EXAMPLES_PER_CHECK)
        checks.append({
            "table": row.table, "check": row.check, "column": row.column,
            "failed_rows": int(row.failed_rows), "description": row.description,
            "examples": [{"row_key": str(k), "reason": _safe_reason(row.check, str(r))}
                         for k, r in zip(sample["row_key"], sample["reason"], strict=True)],
        })
    return {
        "call_date": str(call_date),
        "stopped": result.stopped,
        "stop_reason": result.stop_reason or "",
        "tables": result.summary.to_dict("records"),
        "checks": checks,
        "checks_run": len(result.checks),
        "checks_clean": int((result.checks["failed_rows"] == 0).sum()),
        "quarantine_rows": len(q),
        "examples_per_check": EXAMPLES_PER_CHECK,
    }


def _md_cell(value: object) -> str:
    """Text for a Markdown cell: a viewer renders inline HTML, so '<' and '&' are escaped."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace("\\", "\\\\")
            .replace("|", "\\|").replace("\n", " "))


def render_summary(result: QualityResult, call_date: dt.date | str, fmt: str = "md") -> str:
    """The readable quality summary (fmt 'md' or 'html'), from include/templates/."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=fmt == "html",
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    env.filters["pct"] = lambda share: f"{100 * share:.2f} %"
    return env.get_template(f"quality_summary.{fmt}.j2").render(
        **_render_context(result, call_date)
    )


def write_quality_outputs(result: QualityResult, folder: Path,
                          call_date: dt.date | str) -> dict[str, Path]:
    """Write quarantine.csv, summary.csv (per table), checks.csv (per check), summary.md and
    summary.html into `folder` (quality/D), replacing the folder whole and atomically."""
    names = {"quarantine": "quarantine.csv", "summary": "summary.csv", "checks": "checks.csv",
             "summary_md": "summary.md", "summary_html": "summary.html"}
    md = render_summary(result, call_date, "md")
    html = render_summary(result, call_date, "html")
    with atomic_dir(folder) as tmp:
        result.quarantine.to_csv(tmp / names["quarantine"], index=False, encoding="utf-8")
        result.summary.to_csv(tmp / names["summary"], index=False, encoding="utf-8")
        result.checks.to_csv(tmp / names["checks"], index=False, encoding="utf-8")
        (tmp / names["summary_md"]).write_text(md, encoding="utf-8")
        (tmp / names["summary_html"]).write_text(html, encoding="utf-8")
    return {key: folder / name for key, name in names.items()}


def gate_or_stop(frames: Mapping[str, pd.DataFrame], policy: Policy, folder: Path,
                 period: dt.date | str) -> QualityResult:
    """The gate over a snapshot with its report written to `folder` (quality/<period>/) first,
    so a stop (QualityStop, naming the period and the report) always leaves the reasons."""
    result = run_quality_gate(frames, policy)
    write_quality_outputs(result, folder, period)
    if result.stopped:
        raise QualityStop(f"quality gate stopped the run for {period}: {result.stop_reason} "
                          f"(see {folder})")
    return result


# ================================================================= CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revisit.quality.gate",
        description="Write the expectation suites generated from revisit.config.schema.",
    )
    parser.add_argument("--folder", type=Path, default=SUITES_DIR)
    args = parser.parse_args(argv)
    for path in write_suites(args.folder):
        print(path)
    return 0


__all__ = [
    "NON_EMPTY_TABLES", "QUARANTINE_COLUMNS", "SUITES_DIR", "QualityError", "QualityResult",
    "QualityStop", "build_suite", "build_suites", "dial_phone", "gate_or_stop", "load_suites",
    "normalize_phone",
    "phone_pattern", "render_summary", "run_quality_gate", "table_order", "write_quality_outputs",
    "write_suites",
]

if __name__ == "__main__":
    raise SystemExit(main())
