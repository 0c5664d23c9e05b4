"""The daily DAG at a scale not run (10 M customers), projected from a bench run at two scales.

    .venv/bin/python -m bench.projection [bench/results/latest.json] [--customers 10000000]

Method (bench/README.md "10 M projection"):
- each task that runs once per day (extract, quality_gate, shards, call_lists, sla, publish):
  wall seconds and peak memory linear in customers, a + b * customers, through the two
  largest measured scales;
- the mapped tasks (obligations_shard, sla_shard): seconds and peak linear in the shard's
  customers, least squares over every shard task of those scales (a shard's customers: its
  obligations_shard's rows);
- the shards at the target: the plan (revisit.rules.shards, the policy's
  max_customers_per_shard) of the largest scale's departments (its plan.json) grown in
  proportion; a split department's buckets hold equal shares;
- the wall time on N task slots: bench.run.schedule over revisit_daily with those tasks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import ROOT
from bench.run import MIB, TARGET_PEAK, daily_dag, schedule

ONCE = ("extract", "quality_gate", "shards", "call_lists", "sla", "publish")
MAPPED = ("obligations_shard", "sla_shard")


def _fit(x: list[float], y: list[float]) -> tuple[float, float]:
    """(a, b) of y = a + b x, least squares (exact through two points)."""
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b)


def _stages(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in scale["stages"] if s.get("ok")}


def _shard_customers(stages: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {name[len("obligations_shard["):-1]: s["rows"] for name, s in stages.items()
            if name.startswith("obligations_shard[")}


def project(results: dict[str, Any], customers: int, slots: tuple[int, ...],
            max_per_shard: int) -> dict[str, Any]:
    from revisit.rules.shards import plan_shards

    scales = sorted((s for s in results["scales"] if s["summary"].get("complete")),
                    key=lambda s: s["customers"])[-2:]
    if len(scales) < 2:
        raise SystemExit("the projection needs a run with two complete scales")
    by = [(s["customers"], _stages(s)) for s in scales]
    tasks: dict[str, dict[str, float]] = {}
    for name in ONCE:
        for key in ("wall_seconds", "task_peak_rss"):
            a, b = _fit([n for n, _ in by], [st[name][key] for _, st in by])
            tasks.setdefault(name, {})[key] = a + b * customers
    fits = {}
    for kind in MAPPED:
        x, secs, peaks = [], [], []
        for _, st in by:
            sizes = _shard_customers(st)
            for shard, size in sizes.items():
                s = st[f"{kind}[{shard}]"]
                x.append(size)
                secs.append(s["wall_seconds"])
                peaks.append(s["task_peak_rss"])
        fits[kind] = (_fit(x, secs), _fit(x, peaks), max(x))
    # the largest scale's departments (the gate's plan.json), grown in proportion; a run
    # without them: its shard bins as departments
    largest_n, largest = by[-1]
    counts = dict(largest["shards"].get("details", {}).get("customers_per_department") or {})
    if not counts:
        for shard, size in _shard_customers(largest).items():
            counts[shard.split(".")[0]] = counts.get(shard.split(".")[0], 0) + size
    grown = pd.Series({d: round(n * customers / largest_n) for d, n in counts.items()})
    plan = plan_shards(grown, max_per_shard)
    ids = plan.shard_ids
    size_of = {}
    for department, (stem, buckets) in plan.departments.items():
        for k in range(buckets):
            shard = stem if buckets == 1 else f"{stem}.{k}"
            size_of[shard] = size_of.get(shard, 0) + int(grown[department]) // buckets
    seconds = {name: v["wall_seconds"] for name, v in tasks.items()}
    peaks = {name: v["task_peak_rss"] for name, v in tasks.items()}
    for kind, ((sa, sb), (pa, pb), _) in fits.items():
        for shard in ids:
            seconds[f"{kind}[{shard}]"] = sa + sb * size_of[shard]
            peaks[f"{kind}[{shard}]"] = pa + pb * size_of[shard]
    dag = daily_dag(ids)
    return {
        "customers": customers, "from_scales": [n for n, _ in by], "shards": len(ids),
        "largest_shard": max(size_of.values()), "tasks": tasks,
        "mapped": {kind: {"seconds_per_1000": sb * 1000, "seconds_fixed": sa,
                          "peak_fixed_mib": pa / MIB, "peak_per_1000_mib": pb * 1000 / MIB,
                          "largest_shard_peak": pa + pb * max(size_of.values())}
                   for kind, ((sa, sb), (pa, pb), _) in fits.items()},
        "wall_seconds": {n: schedule(dag, seconds, n) for n in slots},
        "sum_seconds": sum(seconds.values()),
        "over_2_gib": sorted({t.split("[")[0] for t, p in peaks.items() if p > TARGET_PEAK}),
    }


def markdown(p: dict[str, Any]) -> str:
    lines = [f"Projection to {p['customers']:,} customers from the runs at "
             + " and ".join(f"{n:,}" for n in p["from_scales"])
             + f": {p['shards']} shards (largest {p['largest_shard']:,} customers)", "",
             "| task | seconds | peak MiB |", "|---|---:|---:|"]
    for name, v in p["tasks"].items():
        lines.append(f"| {name} | {v['wall_seconds']:,.0f} | {v['task_peak_rss'] / MIB:,.0f} |")
    for kind, v in p["mapped"].items():
        lines.append(f"| {kind} (each) | {v['seconds_fixed']:.1f} + {v['seconds_per_1000']:.3f}"
                     f" per 1,000 customers | largest {v['largest_shard_peak'] / MIB:,.0f} |")
    lines += ["", "| task slots | daily wall seconds |", "|---:|---:|"]
    lines += [f"| {n} | {s:,.0f} |" for n, s in p["wall_seconds"].items()]
    lines += ["", f"sum of tasks {p['sum_seconds']:,.0f} s; tasks above 2 GiB: "
              + (", ".join(p["over_2_gib"]) or "none")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection")
    parser.add_argument("results", nargs="?", type=Path,
                        default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--slots", default="1,4,16")
    parser.add_argument("--max-per-shard", type=int, default=None,
                        help="default: the policy's scale.max_customers_per_shard")
    opts = parser.parse_args(argv)
    if opts.max_per_shard is None:
        from revisit.config.policy import load_policy

        opts.max_per_shard = load_policy().scale.max_customers_per_shard
    result = project(json.loads(opts.results.read_text()), opts.customers,
                     tuple(int(n) for n in opts.slots.split(",")), opts.max_per_shard)
    print(markdown(result))
    target = opts.results.with_name(f"projection_{opts.customers}.json")
    target.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
