"""One department's PDF render timed as the render task does it, optionally A/B against another
checkout:

    python -m bench.render [--agents 401] [--repeat 6] [--ab /path/to/other/checkout]

Each run is a fresh process (as a mapped render task is) that builds report data from the
hand-built monthly fixture (tests.monthly_fixtures) with its agents replaced by `--agents`
synthetic ones (seeded: due / on-time / visits / ratings at random, every 25th inactive, names
`客服0001 Agent`; 401 is the largest department at 1 M customers), then times
revisit.stages.monthly.render_department's two calls: `render_report` (HTML in the process,
WeasyPrint in its bounded child) and `agents_workbook` (the XLSX of every agent). Wall seconds
by time.perf_counter; CPU seconds of the process and its children (resource.getrusage); the
1-minute load average before and after. With `--ab`, runs alternate between this checkout (B)
and the other (A, through BENCH_SOURCE), so both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench  # noqa: F401  (plugins/ on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def synthetic_agents(count: int, seed: int = 7) -> list[dict]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(count):
        due = rng.randint(0, 60)
        on_time = rng.randint(0, due)
        made = rng.randint(0, 80)
        rows.append({
            "agent_id": f"A{i:04d}", "name": f"客服{i:04d} Agent", "role": "agent",
            "active": i % 25 != 0, "home_department_id": "D1", "visits_due": due,
            "visits_on_time": on_time,
            "visit_timeliness_rate": on_time / due if due else None, "visits_made": made,
            "visits_reached": rng.randint(0, made),
            "avg_visit_satisfaction": round(rng.uniform(5, 10), 2) if made else None,
            "tickets_handled": rng.randint(0, 40), "sla_breaches": rng.randint(0, 5)})
    return rows


def render_once(agents: int) -> dict:
    """One render as the render task does it, in this process."""
    from pypdf import PdfReader

    from revisit.config.policy import load_policy
    from revisit.delivery.report import agents_workbook, render_report, report_data
    from revisit.rules.calendar import BusinessCalendar
    from revisit.rules.kpis import compute_monthly
    from tests.monthly_fixtures import hand_built_frames

    policy = load_policy()
    kpis = compute_monthly(hand_built_frames(), policy, BusinessCalendar(policy.calendar),
                           "2026-10")
    data = report_data(kpis, "D1")
    data["agents"] = synthetic_agents(agents)
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        cpu, began = _cpu(), time.perf_counter()
        pdf = render_report(data, policy, Path(tmp) / "D1.pdf")
        pdf_wall, pdf_cpu = time.perf_counter() - began, _cpu() - cpu
        cpu, began = _cpu(), time.perf_counter()
        agents_workbook(data, policy, Path(tmp) / "D1_agents.xlsx")
        xlsx_wall, xlsx_cpu = time.perf_counter() - began, _cpu() - cpu
        pages = len(PdfReader(pdf).pages)
    return {"pdf_wall": round(pdf_wall, 3), "pdf_cpu": round(pdf_cpu, 3),
            "xlsx_wall": round(xlsx_wall, 3), "xlsx_cpu": round(xlsx_cpu, 3),
            "pages": pages, "load": [load, os.getloadavg()[0]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render")
    parser.add_argument("--agents", type=int, default=401)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--ab", type=Path, default=None, help="the A side's checkout")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.once:
        print(json.dumps(render_once(opts.agents)))
        return 0
    sides = ["B", "A"] if opts.ab else ["B"]
    runs = []
    for i in range(opts.repeat):
        for side in sides if i % 2 == 0 else sides[::-1]:
            env = dict(os.environ)
            env.pop("BENCH_SOURCE", None)
            if side == "A":
                env["BENCH_SOURCE"] = str(opts.ab)
            done = subprocess.run([sys.executable, "-m", "bench.render", "--once", "--agents",
                                   str(opts.agents)], cwd=ROOT, env=env, check=True,
                                  capture_output=True, text=True)
            run = {"side": side, **json.loads(done.stdout.strip().splitlines()[-1])}
            runs.append(run)
            print(json.dumps(run), flush=True)
    for side in sides:
        mine = sorted(r["pdf_wall"] for r in runs if r["side"] == side)
        cpu = sorted(r["pdf_cpu"] for r in runs if r["side"] == side)
        print(f"{side}: PDF wall {mine[0]:.2f}-{mine[-1]:.2f} s (median "
              f"{mine[len(mine) // 2]:.2f}), CPU {cpu[0]:.2f}-{cpu[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
