"""The daily and monthly DAGs at a scale not run (10 M customers), projected from bench runs at
two scales and, where measured, the merge tasks run at the target's size.

    .venv/bin/python -m bench.projection [RESULTS.json ...] [--merges MERGES.json]
        [--customers 10000000]

Method (bench/README.md "10 M projection" and "10 M projection with the merges measured"):
- RESULTS: one or several bench results files (bench.run); every complete scale they hold
  (a scale in two files: the later file's), the two largest used;
- each task that runs once per day (extract, quality_gate, shards, call_lists, sla, publish)
  or once per month (monthly_extract, monthly_gate, monthly_shards, kpis): wall seconds and
  peak memory linear in customers, a + b * customers, through those two scales;
- except the merges measured at the target's size (MERGES, written by bench.merges: the shard
  outputs of a measured run replicated): call_lists, sla and publish take those figures;
- the mapped tasks (obligations_shard, sla_shard; kpis_shard): seconds and peak linear in the
  shard's customers, least squares over every shard task of those scales (a shard's customers:
  its obligations_shard's / kpis_shard's rows);
- render: one task per department (bench.run._monthly_dag: the render process's set-up plus
  that department's render seconds, the process's peak), each linear in customers;
- the shards at the target: the plan (revisit.rules.shards, the policy's
  max_customers_per_shard) of the largest scale's departments (its plan.json) grown in
  proportion; a split department's buckets hold equal shares; the monthly plan is the same;
- the wall time on N task slots: bench.run.schedule over revisit_daily / revisit_monthly with
  those tasks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import ROOT
from bench.run import MIB, TARGET_PEAK, _monthly_dag, daily_dag, monthly_dag, schedule

ONCE = ("extract", "quality_gate", "shards", "call_lists", "sla", "publish")
MAPPED = ("obligations_shard", "sla_shard")
MONTHLY_ONCE = ("monthly_extract", "monthly_gate", "monthly_shards", "kpis")
MONTHLY_MAPPED = ("kpis_shard",)
MEASURED_MERGES = ("call_lists", "sla", "publish")  # what bench.merges measures
KEYS = ("wall_seconds", "task_peak_rss")


def _fit(x: list[float], y: list[float]) -> tuple[float, float]:
    """(a, b) of y = a + b x, least squares (exact through two points)."""
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b)


def _stages(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in scale["stages"] if s.get("ok")}


def _shard_customers(stages: dict[str, dict[str, Any]], kind: str = "obligations_shard"
                     ) -> dict[str, int]:
    return {name[len(kind) + 1:-1]: s["rows"] for name, s in stages.items()
            if name.startswith(f"{kind}[")}


def measured_scales(results: dict[str, Any] | list[dict[str, Any]]
                    ) -> list[tuple[int, dict[str, dict[str, Any]]]]:
    """(customers, stages by name) of every complete scale in the results file(s), by
    customers; a scale found in several files: the last file's."""
    by: dict[int, dict[str, dict[str, Any]]] = {}
    for one in [results] if isinstance(results, dict) else results:
        for scale in one["scales"]:
            if scale["summary"].get("complete"):
                by[scale["customers"]] = _stages(scale)
    return sorted(by.items())


def _lines(by: list[tuple[int, dict]], names: tuple[str, ...], customers: int
           ) -> dict[str, dict[str, Any]]:
    """Each task of `names` at `customers`: linear through the scales `by` (method named)."""
    out = {}
    for name in names:
        row: dict[str, Any] = {}
        for key in KEYS:
            a, b = _fit([n for n, _ in by], [st[name][key] for _, st in by])
            row[key] = a + b * customers
        row["method"] = "linear in customers through " + " and ".join(f"{n:,}" for n, _ in by)
        out[name] = row
    return out


def _mapped_fits(by: list[tuple[int, dict]], kinds: tuple[str, ...], sizes_of: str
                 ) -> dict[str, tuple[tuple[float, float], tuple[float, float], int]]:
    fits = {}
    for kind in kinds:
        x, secs, peaks = [], [], []
        for _, st in by:
            for shard, size in _shard_customers(st, sizes_of).items():
                s = st.get(f"{kind}[{shard}]")
                if s is None:
                    continue
                x.append(size)
                secs.append(s["wall_seconds"])
                peaks.append(s["task_peak_rss"])
        if x:
            fits[kind] = (_fit(x, secs), _fit(x, peaks), max(x))
    return fits


def _mapped_summary(fits: dict, largest: int) -> dict[str, dict[str, float]]:
    return {kind: {"seconds_per_1000": sb * 1000, "seconds_fixed": sa,
                   "peak_fixed_mib": pa / MIB, "peak_per_1000_mib": pb * 1000 / MIB,
                   "largest_shard_peak": pa + pb * largest}
            for kind, ((sa, sb), (pa, pb), _) in fits.items()}


def merges_at(merges: dict[str, Any] | None, customers: int) -> dict[str, dict[str, Any]]:
    """bench.merges' figures of the run at `customers` (none: {})."""
    for run in (merges or {}).get("runs", []):
        if run["customers"] == customers:
            return {name: {"wall_seconds": s["wall_seconds"], "task_peak_rss": s["task_peak_rss"],
                           "cpu_seconds": s.get("cpu_seconds"),
                           "method": f"measured at {customers:,} (bench.merges: the shard "
                           f"outputs of {customers // run['copies']:,} x {run['copies']})"}
                    for name, s in run["stages"].items()
                    if name in MEASURED_MERGES and s.get("ok")}
    return {}


def _plan(largest_n: int, largest: dict, customers: int, max_per_shard: int
          ) -> tuple[list[str], dict[str, int]]:
    """The shard ids at `customers` and each shard's customers (see the module docstring)."""
    from revisit.rules.shards import plan_shards

    counts = dict(largest["shards"].get("details", {}).get("customers_per_department") or {})
    if not counts:  # a run without them: its shard bins as departments
        for shard, size in _shard_customers(largest).items():
            counts[shard.split(".")[0]] = counts.get(shard.split(".")[0], 0) + size
    grown = pd.Series({d: round(n * customers / largest_n) for d, n in counts.items()})
    plan = plan_shards(grown, max_per_shard)
    size_of: dict[str, int] = {}
    for department, (stem, buckets) in plan.departments.items():
        for k in range(buckets):
            shard = stem if buckets == 1 else f"{stem}.{k}"
            size_of[shard] = size_of.get(shard, 0) + int(grown[department]) // buckets
    return plan.shard_ids, size_of


def _dag_figures(tasks: dict, fits: dict, ids: list[str], size_of: dict[str, int]
                 ) -> tuple[dict[str, float], dict[str, float]]:
    seconds = {name: v["wall_seconds"] for name, v in tasks.items()}
    peaks = {name: v["task_peak_rss"] for name, v in tasks.items()}
    for kind, ((sa, sb), (pa, pb), _) in fits.items():
        for shard in ids:
            seconds[f"{kind}[{shard}]"] = sa + sb * size_of[shard]
            peaks[f"{kind}[{shard}]"] = pa + pb * size_of[shard]
    return seconds, peaks


def _over(peaks: dict[str, float]) -> list[str]:
    return sorted({t.split("[")[0] for t, p in peaks.items() if p > TARGET_PEAK})


def project(results: dict[str, Any] | list[dict[str, Any]], customers: int,
            slots: tuple[int, ...], max_per_shard: int,
            merges: dict[str, Any] | None = None) -> dict[str, Any]:
    scales = measured_scales(results)
    by = scales[-2:]
    if len(by) < 2:
        raise SystemExit("the projection needs two complete scales (one file or several)")
    tasks = _lines(by, ONCE, customers)
    tasks.update(merges_at(merges, customers))
    fits = _mapped_fits(by, MAPPED, "obligations_shard")
    largest_n, largest = by[-1]
    ids, size_of = _plan(largest_n, largest, customers, max_per_shard)
    seconds, peaks = _dag_figures(tasks, fits, ids, size_of)
    dag = daily_dag(ids)
    out = {
        "customers": customers, "from_scales": [n for n, _ in by], "shards": len(ids),
        "largest_shard": max(size_of.values()), "tasks": tasks,
        "mapped": _mapped_summary(fits, max(size_of.values())),
        "wall_seconds": {n: schedule(dag, seconds, n) for n in slots},
        "sum_seconds": sum(seconds.values()),
        "over_2_gib": _over(peaks),
    }
    out["monthly"] = _project_monthly(scales, customers, slots, ids, size_of)
    return out


def _project_monthly(scales: list[tuple[int, dict]], customers: int, slots: tuple[int, ...],
                     ids: list[str], size_of: dict[str, int]) -> dict[str, Any] | None:
    """The monthly DAG at `customers` from the two largest scales with every monthly task
    (None: fewer than two)."""
    need = (*MONTHLY_ONCE, "render")
    by = [(n, st) for n, st in scales
          if all(t in st for t in need) and any(t.startswith("kpis_shard[") for t in st)][-2:]
    if len(by) < 2:
        return None
    tasks = _lines(by, MONTHLY_ONCE, customers)
    # render: one task per department, each along its own line
    renders = [_monthly_dag(st)[1:] for _, st in by]
    departments = sorted(set.intersection(*({t for t in s if t.startswith("render[")}
                                            for s, _ in renders)))
    for task in departments:
        row: dict[str, Any] = {}
        for key, i in (("wall_seconds", 0), ("task_peak_rss", 1)):
            a, b = _fit([n for n, _ in by], [r[i][task] for r in renders])
            row[key] = a + b * customers
        row["method"] = "linear in customers through " + " and ".join(f"{n:,}" for n, _ in by)
        tasks[task] = row
    fits = _mapped_fits(by, MONTHLY_MAPPED, "kpis_shard")
    seconds, peaks = _dag_figures(tasks, fits, ids, size_of)
    dag = {**monthly_dag(ids), **dict.fromkeys(departments, ("kpis",))}
    return {
        "from_scales": [n for n, _ in by], "shards": len(ids), "tasks": tasks,
        "mapped": _mapped_summary(fits, max(size_of.values())),
        "wall_seconds": {n: schedule(dag, seconds, n) for n in slots},
        "sum_seconds": sum(seconds.values()),
        "over_2_gib": _over(peaks),
    }


def _task_lines(p: dict[str, Any]) -> list[str]:
    lines = ["| task | seconds | peak MiB | how |", "|---|---:|---:|---|"]
    for name, v in p["tasks"].items():
        lines.append(f"| {name} | {v['wall_seconds']:,.0f} | {v['task_peak_rss'] / MIB:,.0f} | "
                     f"{v.get('method', '')} |")
    for kind, v in p["mapped"].items():
        lines.append(f"| {kind} (each) | {v['seconds_fixed']:.1f} + {v['seconds_per_1000']:.3f}"
                     f" per 1,000 customers | largest {v['largest_shard_peak'] / MIB:,.0f} | "
                     "linear in the shard's customers (all shard tasks) |")
    return lines


def markdown(p: dict[str, Any]) -> str:
    lines = [f"Projection to {p['customers']:,} customers from the runs at "
             + " and ".join(f"{n:,}" for n in p["from_scales"])
             + f": {p['shards']} shards (largest {p['largest_shard']:,} customers)", "",
             "Daily (revisit_daily):", "", *_task_lines(p)]
    monthly = p.get("monthly")
    slots = list(p["wall_seconds"])
    lines += ["", "| task slots | " + " | ".join(str(n) for n in slots) + " |",
              "|---|" + "---:|" * len(slots),
              "| daily wall s | " + " | ".join(f"{p['wall_seconds'][n]:,.0f}" for n in slots)
              + " |"]
    if monthly:
        lines.append("| monthly wall s | " + " | ".join(
            f"{monthly['wall_seconds'][n]:,.0f}" for n in slots) + " |")
    lines += ["", f"daily: sum of tasks {p['sum_seconds']:,.0f} s; tasks above 2 GiB: "
              + (", ".join(p["over_2_gib"]) or "none")]
    if monthly:
        lines += ["", "Monthly (revisit_monthly), from the runs at "
                  + " and ".join(f"{n:,}" for n in monthly["from_scales"]) + ":", "",
                  *_task_lines(monthly), "",
                  f"monthly: sum of tasks {monthly['sum_seconds']:,.0f} s; tasks above 2 GiB: "
                  + (", ".join(monthly["over_2_gib"]) or "none")]
    else:
        lines += ["", "monthly: not projected (no two scales with every monthly task)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection")
    parser.add_argument("results", nargs="*", type=Path,
                        default=[ROOT / "bench" / "results" / "latest.json"])
    parser.add_argument("--merges", type=Path, default=None,
                        help="bench.merges' results (the merges measured at the target size)")
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--slots", default="1,4,16")
    parser.add_argument("--max-per-shard", type=int, default=None,
                        help="default: the policy's scale.max_customers_per_shard")
    opts = parser.parse_args(argv)
    if opts.max_per_shard is None:
        from revisit.config.policy import load_policy

        opts.max_per_shard = load_policy().scale.max_customers_per_shard
    result = project([json.loads(path.read_text()) for path in opts.results], opts.customers,
                     tuple(int(n) for n in opts.slots.split(",")), opts.max_per_shard,
                     json.loads(opts.merges.read_text()) if opts.merges else None)
    result["inputs"] = {"results": [str(p) for p in opts.results],
                        "merges": str(opts.merges) if opts.merges else None}
    print(markdown(result))
    target = opts.results[-1].with_name(f"projection_{opts.customers}.json")
    target.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
