"""A sharded month gives the same bytes as an unsharded one (DESIGN.md "Deployment":
scale-out): each shard's share of the KPIs (revisit.rules.kpi_shares) merged gives reports/M
(kpis.csv, agents.csv, sla_status.csv), report_data/M, the quarter's reports/Q and company
data, and the results tables kpis and agent_kpis, byte for byte and row for row — on the demo
CRM and on one with entry errors the gate quarantines, with a call-list history of M in the
results database (listed visits credited from it, the rest by the assignment rules, whose
pool spans a split department's buckets)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from revisit.io.results import default_results_url
from revisit.stages.company import write_company_data
from revisit.stages.monthly import compute_kpis
from revisit.stages.partitions import DayPartitions, MonthPartitions
from tests.reliability.conftest import copy_crm

MONTH, QUARTER = "2026-09", "2026-Q3"  # September ends a quarter: the quarter is merged too
HISTORY_DAY = dt.date(2026, 9, 15)  # a day of M whose call lists the results database holds


def _with_shards(policy, size: int):
    return policy.model_copy(update={"scale": policy.scale.model_copy(
        update={"max_customers_per_shard": size})})


@pytest.fixture(scope="module", params=[0.0, 0.01], ids=["demo", "entry-errors"])
def month_root(request, demo_crm_file, tmp_path_factory, policy, calendar) -> Path:
    """M's snapshot and a results database with the call lists of one day of M."""
    from revisit.io.extract import extract_snapshot
    from revisit.stages.daily import publish_results, run_call_lists, run_quality, run_sla
    from tooling.demo_crm import add_entry_errors

    folder = tmp_path_factory.mktemp(f"month-{request.param_index}")
    crm = copy_crm(demo_crm_file, folder / "crm", drop_keys=False)
    add_entry_errors(f"sqlite:///{crm}", request.param)
    root = folder / "out"
    day, month = DayPartitions(root, HISTORY_DAY), MonthPartitions(root, MONTH)
    for parts in (day, month):
        extract_snapshot(f"sqlite:///{crm}", parts.cutoff_date, parts.snapshot,
                         business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    run_quality(day, policy)
    run_call_lists(day, policy, calendar)
    run_sla(day, policy, calendar)
    publish_results(day, policy, default_results_url(root))
    return root


def _run_month(month_root: Path, target: Path, policy) -> dict:
    shutil.copytree(month_root, target)
    parts = MonthPartitions(target, MONTH)
    url = default_results_url(target)
    result = compute_kpis(parts, policy, url)
    write_company_data(parts, policy, QUARTER, url)
    return result


def _digests(root: Path) -> dict[str, str]:
    files = [p for folder in ("reports", "report_data") for p in sorted((root / folder).rglob("*"))]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files if p.is_file()}


def _published(root: Path) -> dict[str, pd.DataFrame]:
    import sqlalchemy as sa

    engine = sa.create_engine(default_results_url(root))
    try:
        with engine.connect() as conn:
            return {name: pd.read_sql(sa.text(f"SELECT * FROM {name} ORDER BY 1, 2, 3"), conn)
                    for name in ("kpis", "agent_kpis")}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def unsharded(month_root, tmp_path_factory, policy) -> Path:
    root = tmp_path_factory.mktemp("month-unsharded") / "out"
    assert _run_month(month_root, root, _with_shards(policy, 10**6))["shards"] == 1
    return root


@pytest.mark.parametrize("size", [37, 150])
def test_a_sharded_month_gives_the_bytes_of_an_unsharded_one(size, month_root, unsharded,
                                                             tmp_path, policy):
    root = tmp_path / "out"
    result = _run_month(month_root, root, _with_shards(policy, size))
    assert result["shards"] > 5  # the demo's six departments, cut into buckets at 37
    got, want = _digests(root), _digests(unsharded)
    assert f"reports/{QUARTER}/agents.csv" in got and f"report_data/{MONTH}/D01.json" in got
    assert got == want
    for name, rows in _published(root).items():
        pd.testing.assert_frame_equal(rows, _published(unsharded)[name])


def test_the_month_s_history_credits_listed_visits(month_root, unsharded):
    """The fixture means what it says: the call lists of HISTORY_DAY are in the results
    database, so the listed-agent path of the credit is part of the comparison."""
    import sqlalchemy as sa

    engine = sa.create_engine(default_results_url(unsharded))
    try:
        with engine.connect() as conn:
            listed = conn.execute(sa.text("SELECT COUNT(*) FROM call_list")).scalar_one()
    finally:
        engine.dispose()
    assert listed > 0


# ================================================================= the daily gate of the 1st
@pytest.fixture(scope="module")
def day_gated(month_root, tmp_path_factory, policy) -> Path:
    """The daily run of M's cut-off day (the 1st of M+1) over the snapshot M then copies, as
    revisit.bridge.tasks does."""
    from revisit.io.extract import copy_snapshot
    from revisit.stages.daily import run_quality

    root = tmp_path_factory.mktemp("day-gated") / "out"
    shutil.copytree(month_root, root)
    month = MonthPartitions(root, MONTH)
    day = DayPartitions(root, month.cutoff_date)
    shutil.copytree(month.snapshot, day.snapshot)
    shutil.rmtree(month.snapshot)
    run_quality(day, policy)
    copy_snapshot(day.snapshot, month.snapshot)
    return root


def _month_digests(root: Path) -> dict[str, str]:
    files = [p for folder in ("reports", "report_data", "quality", "clean", "handoff")
             for p in sorted((root / folder).rglob("*"))
             if p.relative_to(root).parts[1] == MONTH and p.is_file()]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def test_the_month_reuses_the_daily_gate_of_its_cut_off_day_with_the_same_bytes(
        day_gated, tmp_path, policy):
    from revisit.stages.monthly import gate_month

    reused, fresh = tmp_path / "reused", tmp_path / "fresh"
    for target in (reused, fresh):
        shutil.copytree(day_gated, target)
    shutil.rmtree(fresh / "clean")  # no day's gate: M gates its snapshot itself
    assert gate_month(MonthPartitions(reused, MONTH), policy)["reused"] == "2026-10-01"
    assert "reused" not in gate_month(MonthPartitions(fresh, MONTH), policy)
    for root in (reused, fresh):
        parts = MonthPartitions(root, MONTH)
        from revisit.stages.daily import shard_plan
        from revisit.stages.monthly import run_kpis_shard

        url = default_results_url(root)
        shards = shard_plan(parts).shard_ids
        for shard in shards:
            run_kpis_shard(parts, policy, shard)
        compute_kpis(parts, policy, url, shards)
    got, want = _month_digests(reused), _month_digests(fresh)
    assert "quality/2026-09/summary.md" in got and "clean/2026-09/visits.parquet" in got
    assert got == want


@pytest.mark.parametrize("change", ["policy", "shard size", "snapshot"])
def test_the_month_gates_again_when_the_day_s_gate_is_not_its_own(change, day_gated, tmp_path,
                                                                  policy, caplog):
    from revisit.io.extract import copy_snapshot, snapshot_manifest
    from revisit.stages.monthly import gate_month

    root = tmp_path / "out"
    shutil.copytree(day_gated, root)
    parts = MonthPartitions(root, MONTH)
    if change == "policy":
        policy = policy.model_copy()
        policy._version = "0123456789ab"  # another policy file
    elif change == "shard size":
        policy = _with_shards(policy, 37)
    else:  # re-extracted later: another snapshot of the same cut-off
        import json

        day = DayPartitions(root, parts.cutoff_date)
        manifest = snapshot_manifest(day.snapshot)
        shutil.rmtree(parts.snapshot)
        copy_snapshot(day.snapshot, parts.snapshot)
        (parts.snapshot / "snapshot.json").unlink()
        (parts.snapshot / "snapshot.json").write_text(json.dumps(
            {**manifest, "extracted_at": "2026-10-02T07:00:00+08:00"}), encoding="utf-8")
    with caplog.at_level("INFO", logger="revisit.stages.monthly"):
        assert "reused" not in gate_month(parts, policy)
    # the task log says why (the data team's first question when the monthly run is slow)
    why = {"policy": "made with another policy", "shard size":
           "another scale.max_customers_per_shard"}.get(change, "made with another snapshot")
    assert f"the daily run's of 2026-10-01 is not reused ({why}" in caplog.text
