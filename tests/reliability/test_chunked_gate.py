"""The daily quality gate over a real snapshot, chunk by chunk (scale.gate_chunk_rows), gives
the quality report of the whole-table gate byte for byte and the same clean tables: on the demo
CRM with entry errors (duplicate keys, orphans, unparseable values, cascades), read back from
Parquet chunk by chunk (a chunk without a null of an integer column still reads it as the
whole table does)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

from revisit.io.extract import SnapshotTables, extract_snapshot
from revisit.quality.gate import run_quality_gate
from revisit.stages.daily import read_clean, run_quality
from revisit.stages.partitions import DayPartitions
from tests.reliability.conftest import Crm, D, copy_crm
from tests.unit.quality.test_chunked import assert_same_outcome, chunked


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_snapshot_gated_in_chunks_gives_the_whole_tables_report(
        demo_crm_file, tmp_path, policy) -> None:
    from tooling.demo_crm import add_entry_errors

    crm = copy_crm(demo_crm_file, tmp_path / "crm")
    add_entry_errors(f"sqlite:///{crm}", 0.01)
    rows = Crm(crm)
    first, last = (rows.conn.execute(f"SELECT {f}(visit_id) FROM visits").fetchone()[0]
                   for f in ("MIN", "MAX"))
    rows.copy("visits", first, notes="copied")  # one key, chunks apart
    rows.copy("visits", first, visit_id=last, notes="second")
    rows.copy("visits", first, visit_id=last, notes="third")
    rows.copy("visits", first, visit_id="V-ORPHAN", customer_id="C-NOBODY")
    rows.close()
    whole = DayPartitions(tmp_path / "whole", D)
    extract_snapshot(f"sqlite:///{crm}", D, whole.snapshot,
                     business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    tables = SnapshotTables(whole.snapshot)
    assert tables.rows("visits") > 5000
    result = run_quality_gate(tables, policy)
    assert {"unique_key", "reference", "parent_quarantined"} <= set(result.quarantine["check"])
    assert_same_outcome(run_quality_gate(tables, chunked(policy, 997)), result)

    parts = DayPartitions(tmp_path / "chunks", D)
    parts.snapshot.parent.mkdir(parents=True)
    shutil.copytree(whole.snapshot, parts.snapshot)
    run_quality(whole, policy)
    run_quality(parts, chunked(policy, 997))
    assert _digests(parts.quality) == _digests(whole.quality)
    got, expected = read_clean(parts), read_clean(whole)
    assert list(got) == list(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
