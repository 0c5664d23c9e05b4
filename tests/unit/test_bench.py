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


def test_projection_takes_measured_merges_and_projects_the_monthly_dag() -> None:
    from bench.projection import project
    from bench.run import MIB

    def scale(n: int, shards: dict[str, int]) -> dict:
        k = n / 1e5
        stages = [{"stage": name, "ok": True, "rows": 1, "wall_seconds": k * s,
                   "task_peak_rss": 100 * MIB}
                  for name, s in (("extract", 1.0), ("quality_gate", 0.5), ("shards", 0.0),
                                  ("call_lists", 0.2), ("sla", 0.2), ("publish", 0.1),
                                  ("monthly_extract", 0.1), ("monthly_gate", 0.1))]
        stages += [{"stage": "shards", "ok": True, "wall_seconds": 0.0, "task_peak_rss": MIB},
                   {"stage": "monthly_shards", "ok": True, "wall_seconds": 0.0,
                    "task_peak_rss": MIB, "details": {"shard_ids": sorted(shards)}},
                   {"stage": "kpis", "ok": True, "wall_seconds": k,
                    "task_peak_rss": k * 1024 * MIB},
                   # one render process: 1 s of set-up, then each department's own seconds
                   {"stage": "render", "ok": True, "wall_seconds": 2.5, "seconds": 1.5,
                    "task_peak_rss": 300 * MIB,
                    "details": {"seconds_per_department": {"D01": 1.0, "D02": 0.5}}}]
        for shard, size in shards.items():  # 1 s + 1 s per 10,000 customers
            stages += [{"stage": f"{kind}[{shard}]", "ok": True, "rows": size,
                        "wall_seconds": 1 + size / 1e4, "task_peak_rss": (50 + size / 1e3) * MIB}
                       for kind in ("obligations_shard", "sla_shard", "kpis_shard")]
        return {"customers": n, "summary": {"complete": True}, "stages": stages}

    # two results files of one scale each
    files = [{"scales": [scale(100_000, {"000": 60_000, "001": 40_000})]},
             {"scales": [scale(300_000, {"000.0": 90_000, "000.1": 90_000, "001": 120_000})]}]
    merges = {"runs": [{"copies": 10, "customers": 1_000_000, "stages": {
        "call_lists": {"ok": True, "wall_seconds": 50.0, "cpu_seconds": 49.0,
                       "task_peak_rss": 3 * 1024 * MIB},
        "sla": {"ok": True, "wall_seconds": 7.0, "task_peak_rss": 500 * MIB},
        "publish": {"ok": False}}}]}  # a failed measurement: the line stays
    p = project(files, 1_000_000, (1, 1000), max_per_shard=150_000, merges=merges)
    assert p["from_scales"] == [100_000, 300_000]
    assert p["tasks"]["extract"]["wall_seconds"] == pytest.approx(10.0)
    assert p["tasks"]["call_lists"]["wall_seconds"] == 50.0  # measured, not the line's 2.0
    assert p["tasks"]["call_lists"]["method"].startswith("measured at 1,000,000")
    assert p["tasks"]["sla"]["wall_seconds"] == 7.0
    assert p["tasks"]["publish"]["wall_seconds"] == pytest.approx(1.0)
    assert p["tasks"]["publish"]["method"].startswith("linear")
    assert p["over_2_gib"] == ["call_lists"]
    # unlimited slots: extract, gate, shards, one shard task (16 s), call_lists, publish
    assert p["wall_seconds"][1000] == pytest.approx(10 + 5 + 0 + 16 + 50 + 1)

    m = p["monthly"]
    assert m["from_scales"] == [100_000, 300_000] and m["shards"] == 7
    assert m["tasks"]["kpis"]["wall_seconds"] == pytest.approx(10.0)
    assert m["tasks"]["render[D01]"]["wall_seconds"] == pytest.approx(2.0)  # set-up + own
    shares = sum(1 + size / 1e4 for size in [150_000] * 4 + [133_333] * 3)
    assert m["wall_seconds"][1] == pytest.approx(1 + 1 + 0 + shares + 10 + 2 + 1.5, rel=1e-4)
    # unlimited slots: extract, gate, shards, the largest share, kpis, the longer render
    assert m["wall_seconds"][1000] == pytest.approx(1 + 1 + 0 + 16 + 10 + 2)
    assert m["over_2_gib"] == ["kpis"]


def test_merge_replicas_make_ids_distinct_and_keep_each_file_sorted(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.merges import is_sorted, replicate, suffixed

    sla = pa.Table.from_pandas(pd.DataFrame({
        "ticket_id": ["T0001", "T0001", "T0002", "T0010"],
        "customer_id": ["C01", "C01", "C02", None],
        "department_id": ["D01"] * 4, "agent_id": ["A1"] * 4}), preserve_index=False)
    copy = suffixed(sla, 3).to_pandas()
    assert copy["ticket_id"].tolist() == ["T0001-r3", "T0001-r3", "T0002-r3", "T0010-r3"]
    assert copy["customer_id"].tolist()[:3] == ["C01-r3", "C01-r3", "C02-r3"]
    assert copy["customer_id"].isna().tolist() == [False, False, False, True]
    assert copy["department_id"].tolist() == ["D01"] * 4 and copy["agent_id"].tolist() == ["A1"] * 4
    assert is_sorted(suffixed(sla, 3), "ticket_id")
    assert not is_sorted(sla.take([2, 0, 1, 3]), "ticket_id")

    # a tiny source root: departments D01 (4 customers, shard 000) and D02 (2, shard 001),
    # three copies with at most 5 customers a shard: D01's 12 in 3 buckets, D02's 6 in 2
    day, src = "2026-11-02", tmp_path / "src"
    customers = pd.DataFrame({"customer_id": [f"C{i:02d}" for i in range(6)],
                              "department_id": ["D01"] * 4 + ["D02"] * 2})
    tickets = pd.DataFrame({"ticket_id": [f"T{i:03d}" for i in range(12)],
                            "customer_id": [f"C{i % 6:02d}" for i in range(12)]})
    tickets["department_id"] = tickets["customer_id"].map(
        customers.set_index("customer_id")["department_id"])
    status = tickets.loc[tickets.index.repeat(2)].assign(metric=["a", "b"] * 12)
    files = {"sla_shards": status, "obligation_shards": customers[["customer_id"]],
             "history_shards": customers[["customer_id"]]}
    for folder, frame in files.items():
        (src / "handoff" / day / folder).mkdir(parents=True)
        for shard, department in (("000", "D01"), ("001", "D02")):
            mine = frame["customer_id"].map(customers.set_index("customer_id")["department_id"])
            pq.write_table(pa.Table.from_pandas(frame[mine == department], preserve_index=False),
                           src / "handoff" / day / folder / f"{shard}.parquet", row_group_size=4)
    (src / "handoff" / day / "shard_rows").mkdir()
    (src / "handoff" / day / "shard_rows" / "plan.json").write_text(json.dumps(
        {"max_customers_per_shard": 5, "departments": {"D01": ["000", 1], "D02": ["001", 1]},
         "customers_per_department": {"D01": 4, "D02": 2}}))
    (src / "clean" / day).mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(customers), src / "clean" / day / "customers.parquet")
    pq.write_table(pa.Table.from_pandas(tickets), src / "clean" / day / "tickets.parquet")
    for name in ("agents", "departments"):
        pq.write_table(sla, src / "clean" / day / f"{name}.parquet")
    (src / "clean" / day / "run.json").write_text("{}")
    (src / "quality" / day).mkdir(parents=True)
    pq.write_table(pa.table({"row_key": pa.array([], pa.string())}),
                   src / "quality" / day / "quarantine.parquet")
    (src / "snapshots" / day).mkdir(parents=True)
    (src / "snapshots" / day / "snapshot.json").write_text("{}")

    built = replicate(src, tmp_path / "out", day, 3)
    assert built["shards"] == ["000.0", "000.1", "000.2", "001.0", "001.1"]
    assert built["rows"] == {"sla_shards": 72, "obligation_shards": 18, "history_shards": 18,
                             "customers": 18, "tickets": 36}
    handoff = tmp_path / "out" / "handoff" / day
    merged = pd.concat([pd.read_parquet(handoff / "sla_shards" / f"{s}.parquet")
                        for s in built["shards"]])
    assert merged["ticket_id"].nunique() == 36  # 12 tickets x 3 copies, each id once
    assert set(merged.groupby("ticket_id")["metric"].agg("".join)) == {"ab"}  # order kept
    for shard in built["shards"]:  # each file sorted, its customers all of its shard
        part = pd.read_parquet(handoff / "sla_shards" / f"{shard}.parquet")
        assert part["ticket_id"].is_monotonic_increasing
        assert set(part["department_id"]) <= ({"D01"} if shard < "001" else {"D02"})
        ids = pd.read_parquet(handoff / "obligation_shards" / f"{shard}.parquet")["customer_id"]
        assert set(part["customer_id"]) <= set(ids)
    assert pq.ParquetFile(handoff / "sla_shards" / "000.0.parquet").metadata.row_group(0) \
        .num_rows <= 4
    agents = pd.read_parquet(tmp_path / "out" / "clean" / day / "agents.parquet")
    assert agents["ticket_id"].tolist() == sla.column("ticket_id").to_pylist()  # copied as is
    clean = pd.read_parquet(tmp_path / "out" / "clean" / day / "customers.parquet")
    assert clean["customer_id"].nunique() == 18
    assert clean.groupby("department_id").size().to_dict() == {"D01": 12, "D02": 6}
