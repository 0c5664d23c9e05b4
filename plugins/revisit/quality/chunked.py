"""A large table gated chunk by chunk (policy `scale.gate_chunk_rows` rows at a time), with the
same verdicts, quarantine rows, checks and summary as the table gated whole.

Why: the gate's memory is the table it holds; at a million customers the visits table alone is
13 M rows (2 GiB in Arrow, several in pandas) and it grows with the CRM (DESIGN.md "Deployment":
scale-out). Every check but one sees a row on its own, so it gives the same verdict on a chunk
as on the table. The exception is a key's uniqueness: `duplicate_positions` finds the rows
whose key occurs more than once over the whole table, from 64-bit hashes of the key columns
read chunk by chunk (8 bytes per row), confirmed on the few candidate rows' real values.

`FailureMerge` puts the chunks' failures back in the order the whole table lists them: each
expectation keeps its place (slot); within a slot (the parse check's one failure per column
and problem) by first appearance over the table, the text extract wrote in no known shape
last, as revisit.quality.failures.parse_failures orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from revisit.config.schema import TABLES
from revisit.io.extract import PARSE_ERRORS
from revisit.quality.failures import Failure
from revisit.quality.references import reference_positions
from revisit.quality.suites import FILE_NAME_KEYS
from revisit.quality.validation import ROW_LOCAL_EXPECTATIONS, Outcome

UNIQUE_EXPECTATIONS = {  # the non-row-local expectations duplicate_positions evaluates
    "expect_column_values_to_be_unique": "column",
    "expect_compound_columns_to_be_unique": "column_list",
}


def chunkable(name: str, suite: dict) -> bool:
    """Whether every check of table `name` can be made chunk by chunk: its suite's
    expectations are row-local or uniqueness, and no id of it names files (the case
    collision check of revisit.quality.constraints compares every id with every other; those
    tables are small: departments, agents)."""
    return name not in FILE_NAME_KEYS and all(
        e["type"] in ROW_LOCAL_EXPECTATIONS or e["type"] in UNIQUE_EXPECTATIONS
        for e in suite["expectations"])


def duplicate_positions(chunks: Callable[[], Iterator[pd.DataFrame]], columns: list[str],
                        compound: bool) -> np.ndarray:
    """Positions (over the whole table) of the rows whose key occurs in another row too, as
    GX's uniqueness expectations count them: one column ignores missing values, a compound
    key ignores only rows missing all of its columns (missing values then compare equal).

    `chunks()` gives the table's key columns in consecutive chunks, and is called twice: once
    to find the hashes that occur more than once, once to read the rows that have one and
    confirm them on their real values.

    Why two passes: the table's only whole-length array is then one 64-bit hash per keyed
    row, sorted in place (at 3 M customers the 38 M visits: 0.3 GB; an argsort with its
    index arrays held five times that)."""
    digests = [_key_hashes(chunk, columns, compound)[1] for chunk in chunks()]
    if not digests:
        return np.empty(0, dtype=np.int64)
    digest = np.concatenate(digests)
    del digests
    digest.sort()
    repeated = np.unique(digest[1:][digest[1:] == digest[:-1]])
    del digest
    if not len(repeated):
        return np.empty(0, dtype=np.int64)
    found, values, start = [], [], 0
    for chunk in chunks():
        present, hashes = _key_hashes(chunk, columns, compound)
        rows = np.flatnonzero(present)
        at = np.minimum(np.searchsorted(repeated, hashes), len(repeated) - 1)
        rows = rows[repeated[at] == hashes]
        found.append(rows + start)
        values.append(chunk[columns].iloc[rows])
        start += len(chunk)
    candidates = np.concatenate(found)
    exact = pd.concat(values, ignore_index=True).duplicated(keep=False).to_numpy(bool)
    return candidates[exact].astype(np.int64)


def _key_hashes(chunk: pd.DataFrame, columns: list[str], compound: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """(which rows count: their key is present, the 64-bit hashes of those rows' keys)."""
    keys = chunk[columns]
    present = (keys.notna().any(axis=1) if compound else keys.notna().all(axis=1))
    present = present.to_numpy(bool)
    return present, pd.util.hash_pandas_object(keys[present], index=False).to_numpy()


def uniqueness_outcomes(suite: dict, chunks: Callable[[list[str]], Iterator[pd.DataFrame]]
                        ) -> list[tuple[int, dict, np.ndarray]]:
    """(place in the suite, expectation, failing positions over the table) of each uniqueness
    expectation of `suite`; `chunks(columns)` gives those columns of the table in chunks."""
    found = []
    for order, exp in enumerate(suite["expectations"]):
        kind = UNIQUE_EXPECTATIONS.get(exp["type"])
        if kind is None:
            continue
        columns = [exp["kwargs"]["column"]] if kind == "column" else \
            list(exp["kwargs"]["column_list"])
        found.append((order, exp, duplicate_positions(
            lambda columns=columns: chunks(columns), columns, kind == "column_list")))
    return found


def chunk_outcomes(unique: list[tuple[int, dict, np.ndarray]], start: int, size: int
                   ) -> list[Outcome]:
    """The uniqueness outcomes as GX results of one chunk (rows start..start+size), for
    revisit.quality.failures.gx_failure_slots."""
    out = []
    for order, exp, positions in unique:
        lo, hi = np.searchsorted(positions, [start, start + size])
        local = (positions[lo:hi] - start).tolist()
        config = SimpleNamespace(type=exp["type"], kwargs=exp["kwargs"],
                                 meta={**(exp.get("meta") or {}), "_order": order})
        out.append(Outcome(config, not local, {"unexpected_index_list": local}, {}))
    return out


# Rows of a chunked table's reference columns looked up at a time (reference_outcomes): each
# look-up hashes the parent's keys once, so a few large batches instead of one per chunk.
REFERENCE_BATCH_CHUNKS = 8


def reference_outcomes(name: str, chunks: Callable[[list[str]], Iterator[pd.DataFrame]],
                       all_keys: dict, failed_keys: dict
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """revisit.quality.references.reference_positions over the whole table (positions over
    the table), its reference columns read REFERENCE_BATCH_CHUNKS chunks at a time."""
    columns = list(TABLES[name].references)
    found: dict[str, tuple[list, list]] = {c: ([], []) for c in columns}
    start, batch = 0, []

    def look_up() -> None:
        nonlocal start, batch
        if not batch:
            return
        rows = pd.concat(batch, ignore_index=True)
        for col, (orphan, cascaded) in reference_positions(name, rows, all_keys,
                                                           failed_keys).items():
            found[col][0].append(orphan + start)
            found[col][1].append(cascaded + start)
        start, batch = start + len(rows), []

    if columns:
        for chunk in chunks(columns):
            batch.append(chunk)
            if len(batch) == REFERENCE_BATCH_CHUNKS:
                look_up()
        look_up()
    return {c: tuple(np.concatenate(p) if p else np.empty(0, np.int64) for p in found[c])
            for c in columns}


def chunk_references(found: dict[str, tuple[np.ndarray, np.ndarray]], start: int, size: int
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """reference_outcomes' rows of one chunk (rows start..start+size), from its row 0."""
    def part(positions: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(positions, [start, start + size])
        return positions[lo:hi] - start

    return {col: (part(orphan), part(cascaded)) for col, (orphan, cascaded) in found.items()}


@dataclass
class _Entry:
    check: str
    column: str
    description: str
    failed_rows: int = 0
    first: int = -1  # position (over the table) of its first failing row; -1: none


@dataclass
class FailureMerge:
    """The failures of a table's chunks as the whole table's list of checks."""

    slots: list[dict[tuple[str, str], _Entry]] = field(default_factory=list)

    def add(self, slots: list[list[Failure]], start: int) -> list[tuple[int, tuple[str, str]]]:
        """One chunk's failures (per slot; rows from `start`); returns each failure's id
        (slot, (check, column)), in the chunk's flat order, for `order`."""
        if not self.slots:
            self.slots = [{} for _ in slots]
        if len(slots) != len(self.slots):
            raise ValueError(f"a chunk gave {len(slots)} check slots, the first {len(self.slots)}")
        ids = []
        for i, slot in enumerate(slots):
            for f in slot:
                key = (f.check, f.column)
                entry = self.slots[i].setdefault(key, _Entry(f.check, f.column, f.description))
                if len(f.positions):
                    if entry.first < 0:
                        entry.first = start + int(f.positions.min())
                    entry.failed_rows += len(f.positions)
                ids.append((i, key))
        return ids

    def entries(self) -> list[_Entry]:
        """Every check, in the whole table's order: per slot its failing entries by first
        failing row (the unknown-shape parse text last), or its one passing entry."""
        out = []
        for slot in self.slots:
            failing = [e for e in slot.values() if e.failed_rows]
            if not failing:
                out.append(next(iter(slot.values())))
                continue
            out += sorted(failing, key=lambda e: (e.column == PARSE_ERRORS, e.first))
        return out

    def order(self) -> dict[tuple[int, tuple[str, str]], int]:
        """Each failure id's place in entries() (the quarantine's check order)."""
        place = {id(e): n for n, e in enumerate(self.entries())}
        return {(i, key): place[id(e)] for i, slot in enumerate(self.slots)
                for key, e in slot.items() if id(e) in place}


def count_kinds(totals: dict[str, Any], failed: np.ndarray, own: np.ndarray) -> None:
    """Add one chunk's row counts to a table's totals (rows, failed, cascaded)."""
    totals["rows"] += len(failed)
    totals["failed"] += int(failed.sum())
    totals["cascaded"] += int((failed & ~own).sum())


__all__ = [
    "REFERENCE_BATCH_CHUNKS", "UNIQUE_EXPECTATIONS", "FailureMerge", "chunk_outcomes",
    "chunk_references", "chunkable", "count_kinds", "duplicate_positions",
    "reference_outcomes", "uniqueness_outcomes",
]
