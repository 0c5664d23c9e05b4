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
DAILY = ["extract", "quality_gate", "call_lists", "sla", "publish"]


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
    assert set(summary["daily_parallel_tasks"]) == {"call_lists", "sla"}
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
    from bench.run import DAILY_DAG, _monthly_dag, critical_path, parallel_peak

    seconds = {"extract": 5.0, "quality_gate": 4.0, "call_lists": 3.0, "sla": 6.0,
               "publish": 2.0}
    total, chain = critical_path(DAILY_DAG, seconds)
    assert (total, chain) == (17.0, ["extract", "quality_gate", "sla", "publish"])
    peaks = {"extract": 5, "quality_gate": 9, "call_lists": 6, "sla": 4, "publish": 1}
    # call_lists and sla may run together (both after quality_gate, neither before the other)
    assert parallel_peak(DAILY_DAG, peaks) == (10, ["call_lists", "sla"])
    assert parallel_peak(DAILY_DAG, {**peaks, "quality_gate": 11}) == (11, ["quality_gate"])

    render = {"wall_seconds": 4.0, "seconds": 3.0, "task_peak_rss": 3,
              "details": {"seconds_per_department": {"D01": 2.0, "D02": 1.0}}}
    by = {"monthly_extract": {"wall_seconds": 1.0, "task_peak_rss": 2},
          "kpis": {"wall_seconds": 2.0, "task_peak_rss": 5}, "render": render}
    dag, secs, pk = _monthly_dag(by)
    assert critical_path(dag, secs) == (6.0, ["monthly_extract", "kpis", "render[D01]"])
    assert parallel_peak(dag, pk) == (6, ["render[D01]", "render[D02]"])


def test_spread_is_median_and_range() -> None:
    from bench.run import _spread

    assert _spread([3.0, 1.0, 2.0, None]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0,
                                               "spread": 2.0}
    assert _spread([]) == {"n": 0}
