"""Smoke test of the benchmark harness: `python -m bench.run` works end to end at a tiny scale.

Only that the command runs and reports every stage; figures are never asserted (they depend on
the machine). The deadline comparison's agreement is asserted when businesstimedelta is
installed, since a difference there would be a wrong deadline, not a slow one.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAILY = ["extract", "quality_gate", "shards", "obligations_shard[000]", "sla_shard[000]",
         "call_lists", "sla", "publish"]  # 300 customers: one shard


@pytest.mark.slow  # ~15 s: one process per stage, each importing pandas (and GX)
def test_bench_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench.run", "--scales", "300", "--work",
               str(tmp_path / "work"), "--results", str(results), "--no-monthly",
               "--compare-tickets", "150"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    data = json.loads((results / "latest.json").read_text(encoding="utf-8"))
    assert len(list(results.glob("2*.json"))) == 1
    (scale,) = data["scales"]
    assert scale["customers"] == 300
    stages = {s["stage"]: s for s in scale["stages"]}
    assert [s["stage"] for s in scale["stages"] if s["kind"] == "daily"] == DAILY
    for name in [*DAILY, "cmp_read_sql"]:
        stage = stages[name]
        assert stage["ok"], stage.get("traceback") or stage.get("error")
        assert stage["seconds"] >= 0 and stage["peak_rss"] > 0 and stage["rows"] > 0
    summary = scale["summary"]
    assert summary["complete"]
    assert "daily DAG" in proc.stdout
    # The honest-harness fields: critical path within the sum, parallel peak at least the
    # largest task, the load average around every stage, the process tree's peak.
    assert 0 < summary["daily_critical_path_seconds"] <= summary["daily_seconds"]
    assert summary["daily_critical_path"][0] == "extract"
    assert summary["daily_critical_path"][-1] == "publish"
    largest = max(stages[name]["task_peak_rss"] for name in DAILY)
    assert summary["daily_peak_rss_parallel"] >= largest == summary["daily_peak_rss"]
    assert set(summary["daily_parallel_tasks"]) <= {"obligations_shard[000]", "sla_shard[000]",
                                                    "call_lists", "sla"}
    assert summary["shards"] == 1 and summary["daily_slots"] == 2
    assert summary["daily_critical_path_seconds"] <= summary["daily_slots_seconds"] \
        <= summary["daily_seconds"]
    for name in ("call_lists_whole", "sla_whole"):  # the unsharded alternative, same run
        assert stages[name]["ok"], stages[name].get("traceback") or stages[name].get("error")
    for name in DAILY:
        stage = stages[name]
        assert stage["task_peak_rss"] >= stage["process_peak_rss"] > 0
        for key in ("loadavg_start", "loadavg_end"):
            assert len(stage[key]) == 3 and all(isinstance(x, float) and x >= 0
                                                for x in stage[key])
    assert "daily critical path" in proc.stdout and "parallel peak" in proc.stdout

    deadlines = data["deadlines"]
    assert deadlines["engine"]["ok"]
    fair = data["deadlines_fair"]
    assert fair["engine"]["ok"] and fair["tickets"] > 0
    assert fair["engine"]["wall_seconds"]["median"] > 0
    assert fair["engine"]["cpu_seconds"]["median"] > 0
    if importlib.util.find_spec("businesstimedelta") is not None:
        assert deadlines["tickets"] > 0
        assert deadlines["different"] == 0, deadlines["examples"]
        # whole processes: the same tickets, identical deadlines
        assert fair["compared"] == fair["tickets"]
        assert fair["mismatches"] == 0, fair["examples"]
        assert fair["btd"]["ok"] and fair["btd"]["cpu_seconds"]["median"] > 0


def test_critical_path_and_parallel_peak_follow_the_dag() -> None:
    from bench.run import _monthly_dag, critical_path, daily_dag, parallel_peak, schedule

    dag = daily_dag(["000"])
    seconds = {"extract": 5.0, "quality_gate": 4.0, "shards": 1.0,
               "obligations_shard[000]": 2.0, "sla_shard[000]": 5.0, "call_lists": 3.0,
               "sla": 1.0, "publish": 2.0}
    total, chain = critical_path(dag, seconds)
    assert (total, chain) == (18.0, ["extract", "quality_gate", "shards", "sla_shard[000]",
                                     "sla", "publish"])
    peaks = {"extract": 5, "quality_gate": 9, "shards": 1, "obligations_shard[000]": 6,
             "sla_shard[000]": 4, "call_lists": 3, "sla": 2, "publish": 1}
    # The obligations branch and the SLA branch may run together, neither before the other:
    # obligations_shard (6) with sla_shard (4), more than call_lists with sla_shard (7).
    assert parallel_peak(dag, peaks) == (10, ["obligations_shard[000]", "sla_shard[000]"])
    assert parallel_peak(dag, {**peaks, "quality_gate": 11}) == (11, ["quality_gate"])

    # Three shards: the six mapped tasks form one antichain; two slots hold its two largest.
    wide = daily_dag(["a", "b", "c"])
    mapped = {f"{kind}_shard[{s}]": peak for kind, s, peak in (
        ("obligations", "a", 5), ("obligations", "b", 3), ("obligations", "c", 1),
        ("sla", "a", 2), ("sla", "b", 4), ("sla", "c", 1))}
    assert parallel_peak(wide, mapped) == (16, list(mapped))
    assert parallel_peak(wide, mapped, 2) == (9, ["obligations_shard[a]", "sla_shard[b]"])
    # call_lists (after the obligations) runs beside any sla_shard: 8 + 4 beats 5 + 4.
    assert parallel_peak(wide, {**mapped, "call_lists": 8}, 2) == (
        12, ["sla_shard[b]", "call_lists"])

    # Two slots, six 1-second mapped tasks after a 1-second chain of three: 3 + 3 + merges.
    flat = {t: 1.0 for t in wide if t not in ("sla_digest", "agent_mail", "retention")}
    assert schedule(wide, flat, 1) == sum(flat.values()) == 12.0
    assert schedule(wide, flat, 2) == 3.0 + 3.0 + 1.0 + 1.0  # merges together, then publish
    assert schedule(wide, flat, 16) == critical_path(wide, flat)[0] == 6.0

    render = {"wall_seconds": 4.0, "seconds": 3.0, "task_peak_rss": 3,
              "details": {"seconds_per_department": {"D01": 2.0, "D02": 1.0}}}
    by = {"monthly_extract": {"wall_seconds": 1.0, "task_peak_rss": 2},
          "monthly_gate": {"wall_seconds": 2.0, "task_peak_rss": 2},
          "monthly_shards": {"wall_seconds": 0.5, "task_peak_rss": 1,
                             "details": {"shard_ids": ["000", "001"]}},
          "kpis_shard[000]": {"wall_seconds": 3.0, "task_peak_rss": 4},
          "kpis_shard[001]": {"wall_seconds": 1.0, "task_peak_rss": 4},
          "kpis": {"wall_seconds": 1.0, "task_peak_rss": 5}, "render": render}
    mdag, secs, pk = _monthly_dag(by)
    assert critical_path(mdag, secs) == (10.5, [
        "monthly_extract", "monthly_gate", "monthly_shards", "kpis_shard[000]", "kpis",
        "render[D01]"])
    # the shards' shares run side by side (4 + 4), the renders after the merge (3 + 3)
    assert parallel_peak(mdag, pk) == (8, ["kpis_shard[000]", "kpis_shard[001]"])


def test_spread_is_median_and_range() -> None:
    from bench.run import _spread

    assert _spread([3.0, 1.0, 2.0, None]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0,
                                               "spread": 2.0}
    assert _spread([]) == {"n": 0}


def test_projection_extends_each_task_along_its_measured_line() -> None:
    from bench.projection import project
    from bench.run import MIB

    def scale(n: int, shards: dict[str, int]) -> dict:
        stages = [{"stage": name, "ok": True, "rows": 1, "wall_seconds": n / 1e5 * k,
                   "task_peak_rss": 100 * MIB}
                  for name, k in (("extract", 1.0), ("quality_gate", 0.5), ("shards", 0.0),
                                  ("call_lists", 0.2), ("sla", 0.2), ("publish", 0.1))]
        for shard, size in shards.items():  # 1 s + 1 s per 10,000 customers
            stages += [{"stage": f"{kind}[{shard}]", "ok": True, "rows": size,
                        "wall_seconds": 1 + size / 1e4, "task_peak_rss": (50 + size / 1e3) * MIB}
                       for kind in ("obligations_shard", "sla_shard")]
        return {"customers": n, "summary": {"complete": True}, "stages": stages}

    results = {"scales": [scale(100_000, {"000": 60_000, "001": 40_000}),
                          scale(300_000, {"000.0": 90_000, "000.1": 90_000, "001": 120_000})]}
    p = project(results, 1_000_000, (1, 1000), max_per_shard=150_000)
    assert p["tasks"]["extract"]["wall_seconds"] == pytest.approx(10.0)
    # departments 000 (180k of 300k) and 001 (120k) grown to 600k and 400k: 4 + 3 buckets
    assert p["shards"] == 7 and p["largest_shard"] == 150_000
    mapped = sum(2 * (1 + size / 1e4) for size in [150_000] * 4 + [133_333] * 3)
    once = 10.0 + 5.0 + 0.0 + 2.0 + 2.0 + 1.0
    assert p["wall_seconds"][1] == pytest.approx(once + mapped, rel=1e-4)
    # unlimited slots: extract, gate, shards, one shard task, the longer merge, publish
    assert p["wall_seconds"][1000] == pytest.approx(10 + 5 + 0 + 16 + 2 + 1)
    assert p["over_2_gib"] == []
