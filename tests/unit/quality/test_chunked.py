"""A table gated chunk by chunk (policy scale.gate_chunk_rows) gets the verdicts, quarantine
rows, checks, summary and clean rows of the table gated whole (revisit.quality.chunked)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from revisit.quality.chunked import FailureMerge, duplicate_positions
from revisit.quality.failures import Failure
from revisit.quality.gate import run_quality_gate
from tests.unit.quality.test_quality import (
    BAD_VALUES,
    _bad_copy,
    add_copy,
    crm_rows,
    frames_of,
)


def chunked(policy, rows: int):
    return policy.model_copy(
        update={"scale": policy.scale.model_copy(update={"gate_chunk_rows": rows})})


def assert_same_outcome(got, whole) -> None:
    for name in ("quarantine", "summary", "checks", "replaced"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(whole, name), obj=name)
    assert got.stopped == whole.stopped and got.stop_reason == whole.stop_reason
    assert list(got.clean) == list(whole.clean)
    for name, frame in whole.clean.items():
        pd.testing.assert_frame_equal(got.clean[name], frame, obj=f"clean {name}")


def hard_rows() -> dict[str, list[dict]]:
    """Every bad value of the one-check tests, plus what only the whole table can tell: keys
    repeated across chunk boundaries (once with a missing key), a compound key repeated,
    parse problems of different columns first met in different chunks, text extract wrote
    in no known shape, and a child of a quarantined parent in a later chunk."""
    rows = crm_rows()
    for n, case in enumerate(BAD_VALUES):
        table, changes = case.values[:2]
        _bad_copy(rows, table, f"B{n}", dict(changes))
    for n in range(7):
        add_copy(rows, "visits", visit_id=f"VX{n}", notes=f"copy {n}")
    add_copy(rows, "visits", notes="second V1")  # V1 again, chunks apart
    add_copy(rows, "visits", visit_id=None, notes="no key")
    add_copy(rows, "visits", visit_id="VX3", notes="VX3 again")
    add_copy(rows, "ticket_pauses", resumed_at="2026-10-01 17:00:00")  # same (T1, paused_at)
    add_copy(rows, "visits", visit_id="VLATE", ticket_id="B1")  # B1: a quarantined ticket
    return rows


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_table_gated_in_chunks_gets_the_outcome_of_the_whole_table(policy, size) -> None:
    rows = hard_rows()
    whole = run_quality_gate(frames_of(rows), policy)
    assert len(whole.quarantine) > len(BAD_VALUES)
    assert {"unique_key", "parse_error", "parent_quarantined"} <= set(whole.quarantine["check"])
    got = run_quality_gate(frames_of(rows), chunked(policy, size))
    assert_same_outcome(got, whole)


def test_chunks_stream_into_the_sink_in_order(policy) -> None:
    rows = hard_rows()
    whole = run_quality_gate(frames_of(rows), policy)
    seen: dict[str, list[pd.DataFrame]] = {}
    got = run_quality_gate(frames_of(rows), chunked(policy, 2),
                           sink=lambda name, frame: seen.setdefault(name, []).append(frame))
    assert set(got.clean) == {"departments", "agents"}  # what the report reads
    assert len(seen["visits"]) > 3  # one call per chunk
    for name, frame in whole.clean.items():
        pd.testing.assert_frame_equal(pd.concat(seen[name], ignore_index=True), frame)


def test_duplicates_over_chunks_match_pandas_and_ignore_missing_keys() -> None:
    rng = np.random.default_rng(3)
    ids = pd.Series(rng.integers(0, 400, 1000).astype(str), dtype="string")
    ids[rng.integers(0, 1000, 50)] = pd.NA
    frame = pd.DataFrame({"id": ids, "at": pd.Series(rng.integers(0, 3, 1000))})

    def chunks(size):
        return lambda: (frame.iloc[s:s + size] for s in range(0, len(frame), size))

    present = frame["id"].notna()
    expected = np.flatnonzero(present & frame["id"].where(present).duplicated(keep=False)
                              & present)
    for size in (1, 13, 1000):
        got = duplicate_positions(chunks(size), ["id"], compound=False)
        np.testing.assert_array_equal(got, expected)
    # a compound key skips only rows missing every column; missing values compare equal
    keyed = frame.assign(id=frame["id"].where(frame.index % 2 == 0))
    rows = keyed[["id", "at"]].notna().any(axis=1)
    expected = np.flatnonzero(rows & keyed[["id", "at"]][rows].duplicated(keep=False)
                              .reindex(keyed.index, fill_value=False))
    got = duplicate_positions(lambda: (keyed.iloc[s:s + 7] for s in range(0, 1000, 7)),
                              ["id", "at"], compound=True)
    np.testing.assert_array_equal(got, expected)


def test_merged_parse_failures_keep_the_order_of_first_appearance() -> None:
    def failure(check, column, positions):
        return Failure(check, column, "d", np.asarray(positions, dtype=np.int64), "r",
                       pd.Series(["v"] * len(positions), dtype="string"))

    merge = FailureMerge()
    # chunk 1 (rows 0-9): only a datetime problem in b; chunk 2 (rows 10-19): a in row 11,
    # text of no known shape in row 12, b again; as the whole table lists them: b, a, text.
    merge.add([[failure("parse_error", "b", [4])], [failure("required", "x", [])]], 0)
    merge.add([[failure("parse_error", "a", [1]), failure("parse_error", "_parse_errors", [2]),
                failure("parse_error", "b", [5])], [failure("required", "x", [])]], 10)
    entries = merge.entries()
    assert [(e.column, e.failed_rows) for e in entries] == [
        ("b", 2), ("a", 1), ("_parse_errors", 1), ("x", 0)]


def test_gx_forgets_every_batch_it_validated_and_the_metrics_of_it(policy, monkeypatch) -> None:
    # GX's execution engine caches each batch's data, and every metric resolved over it (a
    # row mask per expectation), for the context's life: a table checked in chunks would
    # otherwise be held whole by the end, and its masks with it.
    import revisit.quality.validation as validation
    from revisit.quality.suites import load_suites, suite_columns, suite_parameters

    monkeypatch.setattr(validation, "GX_CHUNK_ROWS", 2)
    frames = frames_of(hard_rows())
    suite = load_suites()["visits"]
    gx = validation.GxValidator()
    gx.validate_table("visits", frames["visits"][suite_columns(suite)], suite,
                      suite_parameters(policy.quality.phone_digits))
    engine = gx.source.get_execution_engine()
    assert gx._assets > 3  # several batches were validated
    assert not engine.batch_manager.batch_data_cache and not gx.source.assets
    assert engine._caching and not engine._metric_cache  # cached within a validation only
