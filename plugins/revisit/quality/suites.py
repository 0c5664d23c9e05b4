"""The expectation suites as data: built from revisit.config.schema, written to and loaded from
include/config/expectations/<table>.json (Great Expectations' own suite JSON).

Every expectation carries in its meta how the gate reports a failing row: `check` (a short
name), `column`, `reason` (the text a quarantined row gets) and `description` (the check in
general). `python -m revisit.quality.gate` rewrites the files; a unit test fails when they
drift from the schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from revisit.config.paths import INCLUDE_DIR
from revisit.config.schema import (
    IN_SPREADSHEET,
    SPREADSHEET_CELL_CHARS,
    TABLES,
    TICKET_STAMPS,
    Table,
    stored_widths,
)
from revisit.core.patterns import NOT_SPACE, SPACE, SPACE_CHARS
from revisit.io.extract import PARSE_ERRORS
from revisit.io.files import SAFE_NAME_PATTERN, write_text
from revisit.quality.errors import QualityError

SUITES_DIR = INCLUDE_DIR / "config" / "expectations"
SUITE_PREFIX = "revisit."

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
# reports/M/<department_id>.pdf): one that would leave its folder ('../x') is quarantined, and
# so is one too long for a file name or one that names the same file as another id on a
# case-insensitive file system (revisit.quality.constraints).
FILE_NAME_KEYS = {"departments": "department_id", "agents": "agent_id"}
# Timestamps the SLA engine reads with the business calendar, which covers only its years
# (revisit.rules.calendar.DEFAULT_YEARS): checked by revisit.quality.constraints. The visit
# rules read the other tables' stamps with Monday-Friday arithmetic outside those years (a
# customer cooperating since 2005 is no error), so those are not limited.
CALENDAR_STAMPS = {"tickets": TICKET_STAMPS, "ticket_pauses": ("paused_at", "resumed_at")}


# ================================================================= parameters and columns
def phone_pattern(digits: Sequence[int]) -> str:
    """The regex a normalised phone (revisit.core.phones.normalise_phone) must match."""
    low, high = digits
    return rf"^\d{{{low},{high}}}$"


def suite_parameters(phone_digits: Sequence[int]) -> dict[str, str]:
    """A run's values for the suites' {"$PARAMETER": ...} kwargs and the {names} in their
    reasons: the phone rule comes from the policy, so the suites on disk need not change
    when policy.quality.phone_digits does."""
    low, high = phone_digits
    return {PHONE_PARAMETER: phone_pattern((low, high)),
            "phone_digits": f"{low} to {high}" if low != high else str(low)}


def is_phone(column: str) -> bool:
    """A phone column by its name: checked as digits, kept as dialled."""
    return column == "phone" or column.endswith("_phone")


def is_email(column: str) -> bool:
    """An e-mail column by its name (checked unless in UNCHECKED_EMAILS)."""
    return column == "email" or column.endswith("_email")


def suite_columns(suite: dict) -> list[str]:
    """The columns a suite's expectations name, in order, once each: the part of a table GX
    is given."""
    cols: list[str] = []
    for exp in suite["expectations"]:
        kw = exp["kwargs"]
        for name in ("column", "column_A", "column_B"):
            if isinstance(kw.get(name), str):
                cols.append(kw[name])
        cols.extend(kw.get("column_list") or [])
    return list(dict.fromkeys(cols))


# ================================================================= building from the schema
def _expectation(kind: str, check: str, column: str, reason: str, /, *,
                 description: str | None = None, **kwargs: Any) -> dict:
    """One expectation in GX's suite JSON; meta says how the gate reports a failing row:
    `check` (a short name), `column`, `reason` (may hold {value}: the row's value of the
    column, and {<parameter>}), and `description` (the check in general; default reason)."""
    meta = {"check": check, "column": column, "reason": reason}
    if description:
        meta["description"] = description
    return {"type": kind, "kwargs": kwargs, "meta": meta}


def _presence(table: Table) -> list[dict]:
    """Values that are there: parsed by extract, required ones not null and not blank (a
    blank id or name is as unusable as a missing one)."""
    t = table.name
    exps = [_expectation("expect_column_values_to_be_null", "parse_error", PARSE_ERRORS,
                         f"{t}: a value does not parse as its column's type", column=PARSE_ERRORS,
                         description=f"{t}: a value does not parse as its column's type")]
    for col in table.required:
        exps.append(_expectation("expect_column_values_to_not_be_null", "required", col,
                                 f"{t}.{col} is missing", column=col))
    for col in table.required:
        if table.columns[col] in ("id", "text") and col not in table.enums:
            exps.append(_expectation("expect_column_values_to_match_regex", "blank", col,
                                     f"{t}.{col} is blank", column=col, regex=NOT_BLANK_PATTERN))
    return exps


def _keys(table: Table) -> list[dict]:
    """Keys that can name an output file (FILE_NAME_KEYS) and that are unique."""
    t, exps = table.name, []
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
    return exps


def _widths(table: Table) -> list[dict]:
    """Values the results database stores fit its columns (widths read from
    include/sql/results/schema.sql: a server database refuses a longer value, which would
    fail the publish task)."""
    t, exps = table.name, []
    for (name, col), (width, stored) in stored_widths().items():
        if name == t:
            exps.append(_expectation(
                "expect_column_value_lengths_to_be_between", "width", col,
                f"{t}.{col} {{value}} is longer than {width} characters (the results database "
                f"column {stored} holds {width})",
                column=col, max_value=width,
                description=f"{t}.{col} is longer than the {width} characters of the results "
                            f"database column {stored}"))
    return exps


def _cells(table: Table) -> list[dict]:
    """Texts the agent's XLSX shows fit one spreadsheet cell: a longer one would be cut there
    without a word (and whole in the CSV), so the gate quarantines it with that reason."""
    t, limit = table.name, SPREADSHEET_CELL_CHARS
    return [_expectation(
        "expect_column_value_lengths_to_be_between", "cell_length", col,
        f"{t}.{col} is longer than the {limit:,} characters a spreadsheet cell holds (the "
        "agent's XLSX would cut it)",
        column=col, max_value=limit,
        description=f"{t}.{col} is longer than a spreadsheet cell ({limit:,} characters)")
        for name, col in IN_SPREADSHEET if name == t]


def _value_sets(table: Table) -> list[dict]:
    """Codes from their enum (revisit.config.schema) and flags that are 0 or 1."""
    t, exps = table.name, []
    for col, values in table.enums.items():
        exps.append(_expectation("expect_column_values_to_be_in_set", "enum", col,
                                 f"{t}.{col} '{{value}}' is not one of {', '.join(values)}",
                                 column=col, value_set=list(values),
                                 description=f"{t}.{col} is not one of {', '.join(values)}"))
    for col in table.columns_of("bool"):
        exps.append(_expectation("expect_column_values_to_be_in_set", "boolean", col,
                                 f"{t}.{col} {{value}} is not 0 or 1", column=col,
                                 value_set=[0, 1], description=f"{t}.{col} is not 0 or 1"))
    return exps


def _ranges(table: Table) -> list[dict]:
    """Numbers in their RANGES; money is never negative."""
    t, exps = table.name, []
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
    return exps


def _stamp_order(table: Table) -> list[dict]:
    """Timestamps in their STAMP_ORDER (a missing one is not compared)."""
    t = table.name
    return [_expectation("expect_column_pair_values_a_to_be_greater_than_b",
                         "timestamp_order", later,
                         f"{t}.{later} {{value_A}} is before {earlier} {{value_B}}",
                         column_A=later, column_B=earlier, or_equal=True,
                         ignore_row_if="either_value_is_missing",
                         description=f"{t}.{later} is before {earlier}")
            for later, earlier in STAMP_ORDER.get(t, ())]


def _contacts(table: Table) -> list[dict]:
    """Plausible phone numbers (the digit count is a run parameter from the policy) and
    e-mail addresses other than UNCHECKED_EMAILS."""
    t, exps = table.name, []
    for col in table.columns_of("text"):
        if is_phone(col):
            exps.append(_expectation(
                "expect_column_values_to_match_regex", "phone", col,
                f"{t}.{col} is not a plausible phone number ({{phone_digits}} digits after "
                "removing separators and a +86/0086 prefix)",
                column=col, regex={"$PARAMETER": PHONE_PARAMETER}))
        elif is_email(col) and (t, col) not in UNCHECKED_EMAILS:
            exps.append(_expectation("expect_column_values_to_match_regex", "email", col,
                                     f"{t}.{col} is not a valid e-mail address",
                                     column=col, regex=EMAIL_PATTERN))
    return exps


def build_suite(table: Table) -> dict:
    """The expectation suite of one table, derived from revisit.config.schema (GX suite JSON).

    meta.reason is the text a failing row gets; it may name {value} (the row's value of the
    column, or of the key columns joined by '|'), {value_A} / {value_B} (a column pair) and
    the run's parameters ({phone_digits}). Personal data (names, phones, e-mails, free text)
    is never put in a reason: reasons go into the readable summary."""
    return {
        "name": f"{SUITE_PREFIX}{table.name}",
        "meta": {
            "table": table.name,
            "generated_from": "revisit.config.schema "
                              "(python -m revisit.quality.gate rewrites this file)",
            "parameters": {PHONE_PARAMETER: "from policy.quality.phone_digits"},
        },
        "expectations": [*_presence(table), *_keys(table), *_widths(table), *_cells(table),
                         *_value_sets(table), *_ranges(table), *_stamp_order(table),
                         *_contacts(table)],
    }


def build_suites() -> dict[str, dict]:
    """Every canonical table's suite: what the files on disk must equal."""
    return {name: build_suite(table) for name, table in TABLES.items()}


# ================================================================= files
def write_suites(folder: Path = SUITES_DIR) -> list[Path]:
    """(Re)write the suites generated from revisit.config.schema as JSON files."""
    written = []
    for name, suite in build_suites().items():
        text = json.dumps(suite, indent=2, ensure_ascii=True) + "\n"
        written.append(write_text(folder / f"{name}.json", text))
    return written


def _read_suite(path: Path, name: str) -> dict:
    """One suite file; a missing or broken one is a QualityError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QualityError(f"no expectation suite for table {name}: {path} is missing "
                           "(python -m revisit.quality.gate writes the default suites)"
                           ) from None
    except json.JSONDecodeError as error:
        raise QualityError(f"expectation suite {path} is not valid JSON: {error}") from None


def _check_shape(path: Path, suite: dict) -> None:
    """A suite edited by hand fails here, naming the expectation, rather than mid-run with
    a KeyError: every expectation needs what the gate reads to report a failing row."""
    for i, exp in enumerate(suite.get("expectations", [])):
        meta = exp.get("meta") or {}
        if not isinstance(exp.get("type"), str) or not isinstance(exp.get("kwargs"), dict):
            raise QualityError(f"{path}: expectation {i} needs a 'type' and 'kwargs'")
        if not meta.get("check") or not meta.get("reason"):
            raise QualityError(f"{path}: expectation {i} ({exp['type']}) needs meta.check "
                               "and meta.reason (the text quarantined rows get)")


def load_suites(folder: Path = SUITES_DIR) -> dict[str, dict]:
    """The stored suites, one per canonical table, checked for shape."""
    suites = {}
    for name in TABLES:
        path = folder / f"{name}.json"
        suite = _read_suite(path, name)
        _check_shape(path, suite)
        suites[name] = suite
    return suites


__all__ = [
    "CALENDAR_STAMPS", "EMAIL_PATTERN", "FILE_NAME_KEYS", "PHONE_PARAMETER", "RANGES",
    "STAMP_ORDER", "SUITES_DIR",
    "UNCHECKED_EMAILS", "build_suite", "build_suites", "is_email", "is_phone", "load_suites",
    "phone_pattern", "suite_columns", "suite_parameters", "write_suites",
]
