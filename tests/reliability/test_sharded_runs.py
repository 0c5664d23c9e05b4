"""A sharded run gives the same bytes as an unsharded one (DESIGN.md "Deployment": scale-out):
the SLA status and the visit obligations computed per shard (whole departments up to
scale.max_customers_per_shard customers, hash buckets of a larger one) and merged give
sla/D, call_lists/D and the quality summary's SLA section byte for byte, and their hand-offs
row for row (a merge writes its hand-off in parts: the file's row groups differ), on
the demo CRM and on one with entry errors the gate quarantines, for shard sizes from one
customer (every department cut into buckets) to one shard for everything."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from revisit.stages.daily import (
    run_call_lists,
    run_obligations_shard,
    run_quality,
    run_sla,
    run_sla_shard,
    shard_plan,
)
from revisit.stages.partitions import DayPartitions
from tests.reliability.conftest import D, copy_crm

SIZES = (1, 37, 150, 10**6)  # customers per shard; the demo has 800 in 6 departments


def _digests(root: Path) -> dict[str, str]:
    day = D.isoformat()
    folders = [root / "sla" / day, root / "quality" / day, root / "call_lists" / day]
    files = [p for f in folders for p in sorted(f.rglob("*"))]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files if p.is_file()}


def _assert_same_handoffs(root: Path, expected: Path) -> None:
    """The hand-offs publish reads hold the same rows, columns and types."""
    import pandas as pd
    import pyarrow.parquet as pq

    for name in ("sla_status", "call_list"):
        got, want = (r / "handoff" / D.isoformat() / f"{name}.parquet" for r in (root, expected))
        assert pq.read_schema(got).remove_metadata() == pq.read_schema(want).remove_metadata()
        pd.testing.assert_frame_equal(pd.read_parquet(got), pd.read_parquet(want))


@pytest.fixture(scope="module", params=[0.0, 0.01], ids=["demo", "entry-errors"])
def gated(request, demo_crm_file, tmp_path_factory, policy):
    """The day's snapshot and gate, once per CRM (shared by every shard size)."""
    from revisit.io.extract import extract_snapshot
    from tooling.demo_crm import add_entry_errors

    folder = tmp_path_factory.mktemp(f"gated-{request.param_index}")
    crm = copy_crm(demo_crm_file, folder / "crm", drop_keys=False)
    add_entry_errors(f"sqlite:///{crm}", request.param)
    parts = DayPartitions(folder / "gated", D)
    extract_snapshot(f"sqlite:///{crm}", D, parts.snapshot,
                     business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    run_quality(parts, policy)
    return parts


@pytest.fixture(scope="module")
def unsharded(gated, tmp_path_factory, policy, calendar) -> Path:
    root = tmp_path_factory.mktemp("unsharded") / "out"
    shutil.copytree(gated.root, root)
    run_sla(DayPartitions(root, D), policy, calendar)
    run_call_lists(DayPartitions(root, D), policy, calendar)
    return root


@pytest.mark.parametrize("size", SIZES)
def test_a_sharded_run_gives_the_bytes_of_an_unsharded_one(size, gated, unsharded, tmp_path,
                                                           policy, calendar):
    sharded_policy = policy.model_copy(update={"scale": policy.scale.model_copy(
        update={"max_customers_per_shard": size})})
    root = tmp_path / "out"
    shutil.copytree(gated.root, root)
    parts = DayPartitions(root, D)
    run_quality(parts, sharded_policy)  # the gate splits the rows by the policy's shards
    shards = shard_plan(parts).shard_ids
    rows = sum(run_sla_shard(parts, sharded_policy, calendar, s)["rows"] for s in shards)
    run_sla(parts, sharded_policy, calendar, shards)
    obligations = sum(run_obligations_shard(parts, sharded_policy, calendar, s)["obligations"]
                      for s in shards)
    run_call_lists(parts, sharded_policy, calendar, shards)
    assert obligations > 0
    assert _digests(root) == _digests(unsharded)
    _assert_same_handoffs(root, unsharded)
    assert rows > 0
    if size == 1:
        assert len(shards) > 50  # every department in buckets: the merge really merges
    if size == 10**6:
        assert shards == ["000"]


@pytest.mark.parametrize("sharded", [False, True], ids=["unsharded", "shards-of-37"])
def test_an_sla_merged_a_hundred_rows_at_a_time_gives_the_same_bytes(sharded, gated, unsharded,
                                                                     tmp_path, policy, calendar):
    """scale.merge_rows at its least: sla_status.csv, its hand-off, the digests and the unknown
    section are written and gathered over some 25 parts, not one."""
    scale = {"merge_rows": 100, **({"max_customers_per_shard": 37} if sharded else {})}
    small = policy.model_copy(update={"scale": policy.scale.model_copy(update=scale)})
    root = tmp_path / "out"
    shutil.copytree(gated.root, root)
    parts = DayPartitions(root, D)
    shards = None
    if sharded:
        run_quality(parts, small)
        shards = shard_plan(parts).shard_ids
        for shard in shards:
            run_sla_shard(parts, small, calendar, shard)
    summary = run_sla(parts, small, calendar, shards)
    assert summary["rows"] > 20 * small.scale.merge_rows
    sla = {k: v for k, v in _digests(root).items() if k.startswith(("sla/", "quality/"))}
    assert sla == {k: v for k, v in _digests(unsharded).items()
                   if k.startswith(("sla/", "quality/"))}
    import pandas as pd

    got, want = (pd.read_parquet(r / "handoff" / D.isoformat() / "sla_status.parquet")
                 for r in (root, unsharded))
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("run_shard", [run_sla_shard, run_obligations_shard])
def test_a_shard_outside_the_day_s_plan_is_refused(run_shard, gated, policy, calendar,
                                                   tmp_path):
    from revisit.core.errors import RevisitError

    root = tmp_path / "out"
    shutil.copytree(gated.root, root)
    with pytest.raises(RevisitError, match="not in the plan"):
        run_shard(DayPartitions(root, D), policy, calendar, "999")


def test_a_day_whose_crm_has_no_department_yet_has_one_empty_shard(policy, calendar,
                                                                   tmp_path):
    import pandas as pd

    from revisit.io.files import atomic_dir
    from revisit.rules.visits import empty_table
    from revisit.stages.shard_rows import SHARD_ROWS, ShardRows

    parts = DayPartitions(tmp_path / "out", D)
    with atomic_dir(parts.clean) as tmp, atomic_dir(parts.handoff / SHARD_ROWS) as rows, \
            ShardRows(rows, policy.scale.max_customers_per_shard) as split:
        for name in ("departments", "customers", "tickets", "ticket_pauses"):
            empty_table(name).to_parquet(tmp / f"{name}.parquet", index=False)
            split(name, empty_table(name))
    assert shard_plan(parts).shard_ids == ["000"]
    assert run_sla_shard(parts, policy, calendar, "000")["rows"] == 0
    merged = pd.read_parquet(parts.handoff / "sla_shards" / "000.parquet")
    assert merged.empty
