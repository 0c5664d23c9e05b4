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
suite's checks. So are the checks of what the later stages rely on that GX cannot express
(revisit.quality.constraints: ids too long for a file name, ids that name the same file on a
case-insensitive file system, ticket stamps outside the business calendar's years).

The gate knows what the later stages need: every constraint a stage relies on is checked here,
so a row that would stop a stage is quarantined with its true reason and the stage never sees
it (ids that name files, widths of the results database's columns, the calendar's years,
timestamps every zone can hold).

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
  (revisit.core.phones.dial_phone: 13812345678); a value that is no phone number ('n/a', an
  extension) fails;
- customers.email is not checked: Revisit never uses it, and a malformed address must not take
  a customer (and by cascade their orders, tickets and visits) off the call lists;
- reasons name the table, the column and the offending id, code, number or timestamp, never a
  name, phone, e-mail or free text: they go into the readable summary and the results database.
  The offending value itself is in quarantine.csv's `value` column (a personal-data file like
  the call lists); the readable summary shows ids and reasons only.

The parts: revisit.quality.suites (the suites as data), .validation (running them with GX),
.failures (GX results -> failing rows with reasons), .references (reference checks and the
cascade), .tables (the input tables), .quarantine (the quarantine frame), .summary (the
written report); this module runs them table by table and decides whether the run stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.config.policy import Policy
from revisit.config.schema import TABLES
from revisit.core.phones import dial_phone, normalise_phone
from revisit.io.extract import PARSE_ERRORS, REPLACED_KEY
from revisit.quality.chunked import (
    FailureMerge,
    chunk_outcomes,
    chunk_references,
    chunkable,
    count_kinds,
    reference_outcomes,
    uniqueness_outcomes,
)
from revisit.quality.constraints import constraint_failures
from revisit.quality.errors import QualityError, QualityStop
from revisit.quality.failures import Failure, gx_failure_slots, no_failure
from revisit.quality.quarantine import QUARANTINE_COLUMNS, quarantine_frame, quarantine_parts
from revisit.quality.references import reference_failures, remember_keys
from revisit.quality.suites import (
    SUITES_DIR,
    build_suite,
    build_suites,
    is_phone,
    load_suites,
    phone_pattern,
    suite_columns,
    suite_parameters,
    write_suites,
)
from revisit.quality.summary import render_summary, write_quality_outputs
from revisit.quality.tables import table_chunks, table_input, table_order, table_rows
from revisit.quality.validation import GxValidator, Outcome

log = logging.getLogger(__name__)

# Without departments or agents no list can be assigned: an empty one is a broken extract. An
# empty customers table is a date before the CRM had customers: empty lists, not an error (a
# customers table whose rows all failed stops the run through the failure share anyway).
NON_EMPTY_TABLES = ("departments", "agents")
SUMMARY_COLUMNS = [
    "table", "rows", "failed_rows", "clean_rows", "cascaded_rows", "failure_share", "passed",
]
CHECK_COLUMNS = ["table", "check", "column", "failed_rows", "description"]
REPLACED_COLUMNS = ["table", "column", "change", "values", "keys"]
# The American spelling the gate used to have: the same function as normalise_phone.
normalize_phone = normalise_phone


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
    # Values extract changed (revisit.io.extract.REPLACED_KEY): one row per (table, column,
    # change) with how many values and the first row keys (`keys`, a list).
    replaced: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=REPLACED_COLUMNS))

    def raise_if_stopped(self) -> None:
        """For a caller that ran the gate itself (gate_or_stop raises on its own)."""
        if self.stopped:
            raise QualityStop(f"quality gate stopped the run: {self.stop_reason}")


# Takes one clean table as soon as it is gated (name, frame): a caller that writes the tables
# out holds one table at a time instead of the whole clean snapshot.
Sink = Callable[[str, pd.DataFrame], None]


@dataclass
class _Run:
    """What a gate run has gathered so far. Tables are checked one at a time, parents first:
    a child's reference checks need its parents' keys (all, and the quarantined ones)."""

    parameters: dict[str, Any]
    timezone: str
    threshold: float
    clean: dict[str, pd.DataFrame] = field(default_factory=dict)
    parts: list[pd.DataFrame] = field(default_factory=list)  # quarantine rows, per failure
    summary_rows: list[dict[str, Any]] = field(default_factory=list)
    check_rows: list[dict[str, Any]] = field(default_factory=list)
    all_keys: dict[str, pa.Array] = field(default_factory=dict)
    failed_keys: dict[str, pa.Array] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)
    replaced_rows: list[dict[str, Any]] = field(default_factory=list)
    validator: GxValidator | None = None
    sink: Sink | None = None  # takes each clean table instead of `clean`

    def gx(self) -> GxValidator:
        """GX starts with the first table that has rows: a run over empty tables needs none."""
        if self.validator is None:
            self.validator = GxValidator()
        return self.validator


def run_quality_gate(frames: Mapping[str, pd.DataFrame], policy: Policy, *,
                     suites: dict[str, dict] | None = None,
                     sink: Sink | None = None) -> QualityResult:
    """Check every canonical table; remove failing rows (and rows whose parent failed).

    `frames` as read_snapshot returns them (a `_parse_errors` column is optional;
    ticket_pauses may be absent, as the optional table). Raises QualityError when a table or a
    column the checks need is missing; returns a QualityResult whose `stopped` says whether
    the run must stop. With a `sink`, each clean table goes to it when its table is done (a
    large one chunk by chunk) and the result's `clean` holds only departments and agents
    (the summary counts the rows of all)."""
    suites = suites if suites is not None else load_suites()
    run = _Run(suite_parameters(policy.quality.phone_digits), policy.calendar.timezone,
               policy.quality.max_failure_share, sink=sink)
    for name in frames:
        if name not in TABLES:
            log.warning("quality gate: ignoring frame %r (not a canonical table)", name)
    size = policy.scale.gate_chunk_rows
    for name in table_order():
        started = time.perf_counter()
        suite = suites.get(name)
        if suite is not None and table_rows(frames, name) > size and chunkable(name, suite):
            _gate_in_chunks(run, name, frames, suite, size)
        else:
            frame, suite = table_input(frames, suites, name)
            _record_replaced(run, name, frame)
            _gate_table(run, name, frame, _table_failures(run, name, frame, suite))
        run.timings[name] = time.perf_counter() - started
        summary = run.summary_rows[-1]
        log.info("quality %s: %d rows, %d failed (%.2f%%) in %.1f s", name, summary["rows"],
                 summary["failed_rows"], 100 * summary["failure_share"], run.timings[name])
    return _result(run)


def _record_replaced(run: _Run, name: str, frame: pd.DataFrame) -> None:
    run.replaced_rows += [{"table": name, **{c: r.get(c) for c in REPLACED_COLUMNS[1:]}}
                          for r in frame.attrs.get(REPLACED_KEY) or ()]


def _table_failures(run: _Run, name: str, frame: pd.DataFrame, suite: dict) -> list[Failure]:
    """Every check of one table, in suite order then references."""
    return [f for slot in _failure_slots(run, name, frame, suite) for f in slot]


def _failure_slots(run: _Run, name: str, frame: pd.DataFrame, suite: dict,
                   uniqueness: list[Outcome] | None = None,
                   references: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> list[list[Failure]]:
    """Every check of one table (or chunk), one list per check: the suite's in suite order,
    then the constraints and references. GX sees phones as their digits (normalise_phone),
    so a number written with spaces or +86 matches the digit rule; an empty table lists its
    checks with no failures (no GX). `uniqueness`: a chunk's uniqueness verdicts over the
    whole table (revisit.quality.chunked), GX then checks the row-local expectations only;
    `references`: the chunk's reference rows, looked up over the whole table."""
    if len(frame):
        view = frame[suite_columns(suite)]
        phones = [c for c in view.columns if is_phone(c)]
        if phones:
            view = view.assign(**{c: normalise_phone(view[c]) for c in phones})
        results = run.gx().validate_table(name, view, suite, run.parameters,
                                          row_local_only=uniqueness is not None)
        slots = gx_failure_slots(name, frame, [*results, *(uniqueness or ())], run.parameters,
                                 run.timezone)
    else:
        slots = [[no_failure(e["meta"], run.parameters)] for e in suite["expectations"]]
    return slots + [[f] for f in (
        constraint_failures(name, frame, run.timezone)
        + reference_failures(name, frame, run.all_keys, run.failed_keys, references))]


def _failed_rows(size: int, failures: list[Failure]) -> tuple[np.ndarray, np.ndarray]:
    """(rows that failed a check, rows that failed one of their own: not only a parent's)."""
    failed = np.zeros(size, dtype=bool)
    own_failed = np.zeros(size, dtype=bool)
    for f in failures:
        failed[f.positions] = True
        if f.check != "parent_quarantined":
            own_failed[f.positions] = True
    return failed, own_failed


def _gate_table(run: _Run, name: str, frame: pd.DataFrame, failures: list[Failure]) -> None:
    """Record one table's failures (checks.csv rows, quarantine rows), keep its clean rows
    and its keys for the children, and add its summary row."""
    failed, own_failed = _failed_rows(len(frame), failures)
    run.check_rows += [{"table": name, "check": f.check, "column": f.column,
                        "failed_rows": len(f.positions), "description": f.description}
                       for f in failures]
    run.parts += quarantine_parts(TABLES[name], frame, failures, len(run.summary_rows))
    kept = _clean_rows(frame, failed)
    remember_keys(name, frame, kept, failed, run.all_keys, run.failed_keys)
    _keep(run, name, kept)
    _summarise(run, name, len(frame), len(kept), int(failed.sum()),
               int((failed & ~own_failed).sum()))


def _keep(run: _Run, name: str, kept: pd.DataFrame) -> None:
    """A table's clean rows to the sink, else into the result; the small tables the report
    reads (NON_EMPTY_TABLES: departments, agents) into the result in any case."""
    if run.sink is not None:
        run.sink(name, kept)
    if run.sink is None or name in NON_EMPTY_TABLES:
        run.clean[name] = kept


def _gate_in_chunks(run: _Run, name: str, frames: Mapping[str, pd.DataFrame], suite: dict,
                    size: int) -> None:
    """_gate_table over a table too large to hold, `size` rows at a time, with the same
    outcome (revisit.quality.chunked): uniqueness over the whole table first, then each
    chunk's checks, quarantine rows and clean rows; the checks in the whole table's order."""
    table, index = TABLES[name], len(run.summary_rows)
    def columns_of(columns: list[str]):
        return table_chunks(frames, suite, name, size, columns)

    unique = uniqueness_outcomes(suite, columns_of)
    references = reference_outcomes(name, columns_of, run.all_keys, run.failed_keys)
    merge, totals, parts = FailureMerge(), {"rows": 0, "failed": 0, "cascaded": 0}, []
    keys: tuple[dict, dict] = ({}, {})
    start, kept_rows, held = 0, 0, []
    for chunk in table_chunks(frames, suite, name, size):
        if start == 0:
            _record_replaced(run, name, chunk)
        slots = _failure_slots(run, name, chunk, suite, chunk_outcomes(unique, start, len(chunk)),
                               chunk_references(references, start, len(chunk)))
        ids = merge.add(slots, start)
        failures = [f for slot in slots for f in slot]
        failed, own = _failed_rows(len(chunk), failures)
        parts += [(part, ids) for part in quarantine_parts(table, chunk, failures, index, start)]
        kept = _clean_rows(chunk, failed)
        _remember_chunk(name, chunk, kept, failed, keys)
        if run.sink is not None:
            run.sink(name, kept)
        else:  # the caller holds the clean tables: put together once, at the end
            held.append(kept)
        count_kinds(totals, failed, own)
        start, kept_rows = start + len(chunk), kept_rows + len(kept)
    if run.sink is None:
        run.clean[name] = pd.concat(held, ignore_index=True)
    order = merge.order()
    run.parts += [part.assign(_order=order[ids[int(part["_order"].iloc[0])]])
                  for part, ids in parts]
    run.check_rows += [{"table": name, "check": e.check, "column": e.column,
                        "failed_rows": e.failed_rows, "description": e.description}
                       for e in merge.entries()]
    for target, found in zip((run.all_keys, run.failed_keys), keys, strict=True):
        if name in found:
            target[name] = pc.unique(pa.concat_arrays(found[name]))
    _summarise(run, name, totals["rows"], kept_rows, totals["failed"], totals["cascaded"])


def _remember_chunk(name: str, chunk: pd.DataFrame, kept: pd.DataFrame, failed: np.ndarray,
                    keys: tuple[dict, dict]) -> None:
    """remember_keys of one chunk, added to `keys` (all, failed) when `name` is a parent:
    a quarantined key is kept by no other chunk, since the key is unique (a duplicated one
    is quarantined in every copy)."""
    if not any(name in t.references.values() for t in TABLES.values()):
        return  # no table points at it: its keys would only cost memory
    one: tuple[dict, dict] = ({}, {})
    remember_keys(name, chunk, kept, failed, *one)
    for target, found in zip(keys, one, strict=True):
        if name in found:
            target.setdefault(name, []).append(found[name])


def _clean_rows(frame: pd.DataFrame, failed: np.ndarray) -> pd.DataFrame:
    """The rows that passed, without `_parse_errors`, phones in the form an agent dials (a
    plausible number written oddly is kept, written as dialled)."""
    kept = frame.drop(columns=[PARSE_ERRORS])
    kept.attrs.pop(REPLACED_KEY, None)  # reported in the summary, not carried on
    if failed.any():  # else no copy: with a clean table that is the whole visits table
        kept = kept.loc[~failed].reset_index(drop=True)
    phones = [c for c in kept.columns if is_phone(c)]
    if phones:
        kept = kept.assign(**{c: dial_phone(kept[c]) for c in phones})
    return kept


def _summarise(run: _Run, name: str, rows: int, clean_rows: int, n_failed: int,
               n_cascaded: int) -> None:
    """One table's summary row, and why it stops the run if it does: too many failed rows
    (cascaded ones count, they are as absent from the lists), or no usable departments or
    agents."""
    share = n_failed / rows if rows else 0.0
    passed = share <= run.threshold
    if share > run.threshold:
        why = (f", {n_cascaded} of them because a row they point at was quarantined"
               if n_cascaded else "")
        run.stop.append(f"{name}: {n_failed} of {rows} rows failed ({share:.1%}{why}), more "
                        f"than the limit of {run.threshold:.1%} (policy "
                        "quality.max_failure_share)")
    if name in NON_EMPTY_TABLES and not clean_rows:
        passed = False
        run.stop.append(f"{name}: no usable rows" + (" (the table is empty)" if not rows else "")
                        + "; call lists need departments and agents")
    run.summary_rows.append({
        "table": name, "rows": rows, "failed_rows": n_failed, "clean_rows": clean_rows,
        "cascaded_rows": n_cascaded, "failure_share": share, "passed": passed,
    })


def _result(run: _Run) -> QualityResult:
    """The run's result; a stop is logged here (gate_or_stop raises it)."""
    result = QualityResult(
        clean=run.clean,
        quarantine=quarantine_frame(run.parts),
        summary=pd.DataFrame(run.summary_rows, columns=SUMMARY_COLUMNS),
        checks=pd.DataFrame(run.check_rows, columns=CHECK_COLUMNS),
        stopped=bool(run.stop),
        stop_reason="; ".join(run.stop),
        timings=run.timings,
        replaced=pd.DataFrame(run.replaced_rows, columns=REPLACED_COLUMNS),
    )
    if result.stopped:
        log.warning("quality gate stops the run: %s", result.stop_reason)
    return result


def gate_or_stop(frames: Mapping[str, pd.DataFrame], policy: Policy, folder: Path,
                 period: dt.date | str, run_info: dict | None = None,
                 sink: Sink | None = None) -> QualityResult:
    """The gate over a snapshot with its report written to `folder` (quality/<period>/) first,
    so a stop (QualityStop, naming the period and the report) always leaves the reasons;
    `run_info` goes with the report as its run.json; `sink` as in run_quality_gate."""
    result = run_quality_gate(frames, policy, sink=sink)
    write_quality_outputs(result, folder, period, run_info)
    if result.stopped:
        raise QualityStop(f"quality gate stopped the run for {period}: {result.stop_reason} "
                          f"(see {folder})")
    return result


# ================================================================= CLI
def main(argv: Sequence[str] | None = None) -> int:
    """`python -m revisit.quality.gate`: rewrite include/config/expectations/ from the schema."""
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
    "normalise_phone", "normalize_phone", "phone_pattern", "render_summary", "run_quality_gate",
    "table_order", "write_quality_outputs", "write_suites",
]

if __name__ == "__main__":
    raise SystemExit(main())
