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
    assert scale["summary"]["complete"]
    assert "daily DAG" in proc.stdout

    deadlines = data["deadlines"]
    assert deadlines["engine"]["ok"]
    if importlib.util.find_spec("businesstimedelta") is not None:
        assert deadlines["tickets"] > 0
        assert deadlines["different"] == 0, deadlines["examples"]
