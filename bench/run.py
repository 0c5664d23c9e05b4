"""Benchmark the Revisit pipeline at several scales.

    .venv/bin/python -m bench.run --scales 10000,100000,1000000

For each scale (customers): build the seeded demo CRM (SQLite, bench/work/crm_<N>.sqlite,
reused while it matches), then run every daily stage of the revisit_daily DAG, each in a fresh
process as an Airflow task runs, through the same functions the DAG calls (bench/stages.py),
then the monthly stages when their modules exist. Side by side: Revisit's SLA deadline engine
against businesstimedelta on the same tickets (identical deadlines checked), and the extract
against a plain pandas.read_sql of the same SQL. Prints a table and writes
bench/results/<UTC timestamp>.json and bench/results/latest.json.

Method (see bench/README.md): seconds = wall time of the stage's work in its process; process
seconds add interpreter start, imports, policy and calendar (what a task pays); peak = the
kernel's peak-RSS mark of the stage's process, reset after the imports (stage peak) and, for the
process as a whole including imports, ru_maxrss from wait4.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.stages import DAILY, MONTHLY, STAGES, missing_requirements

BENCH = ROOT / "bench"
DEFAULT_WORK = BENCH / "work"
DEFAULT_RESULTS = BENCH / "results"
DEFAULT_DAY = "2026-11-20"      # the demo CRM's as_of: D sees the CRM as of D 00:00
DEFAULT_MONTH = "2026-10"
TARGET_SECONDS = 180            # issue "Benchmarks": the daily DAG at 1,000,000 customers
TARGET_PEAK = 4 * 1024 ** 3
TARGET_SCALE = 1_000_000
MIB = 1024 ** 2


# ================================================================= processes
def _child(args: list[str], log: Path) -> dict[str, Any]:
    """Run a Python child from the repository root; wall seconds and its peak RSS (wait4)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "wall_seconds": round(time.perf_counter() - began, 3),
            "process_peak_rss": usage.ru_maxrss * 1024,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}


def run_stage(name: str, scale: int, opts: argparse.Namespace, out: Path, crm: Path,
              profile: bool = False) -> dict[str, Any]:
    work = opts.work / f"run_{scale}"
    work.mkdir(parents=True, exist_ok=True)
    result = work / f"{name}.json"
    result.unlink(missing_ok=True)
    config = {
        "stage": name, "crm": str(crm), "out": str(out), "day": opts.day, "month": opts.month,
        "results_url": f"sqlite:///{out / 'results.sqlite'}", "tickets": opts.compare_tickets,
        "result": str(result), "work": str(work),
        "profile": str(opts.work / "profiles" / str(scale) / name) if profile else None,
    }
    path = work / f"{name}.config.json"
    path.write_text(json.dumps(config, indent=1))
    proc = _child(["-m", "bench.stages", str(path)], work / f"{name}.log")
    report = json.loads(result.read_text()) if result.exists() else {
        "stage": name, "ok": False, "error": f"the stage process exited {proc['exit']} without "
        f"a report (see {work / (name + '.log')})"}
    report.update(proc)
    # clear_refs also resets what wait4 reports: fold in the set-up and stage peaks.
    report["process_peak_rss"] = max(proc["process_peak_rss"], report.get("setup_peak_rss", 0),
                                     report.get("peak_rss", 0))
    return report


# ================================================================= the demo CRM
def _generator_digest() -> str:
    return hashlib.sha256((ROOT / "tooling/demo_crm.py").read_bytes()).hexdigest()[:16]


def ensure_crm(scale: int, opts: argparse.Namespace) -> dict[str, Any]:
    """bench/work/crm_<N>.sqlite, built when missing (or with --rebuild); the marker JSON
    beside it records how it was built."""
    crm = opts.work / f"crm_{scale}.sqlite"
    marker = crm.with_name(crm.name + ".json")
    if crm.exists() and marker.exists() and not opts.rebuild:
        info = json.loads(marker.read_text())
        if info.get("customers") == scale and info.get("seed") == opts.seed:
            info["reused"] = True
            if info.get("generator") not in (None, _generator_digest()):
                print(f"  note: crm_{scale} was built by another version of demo_crm.py "
                      "(--rebuild to regenerate)", flush=True)
            return info
    free = shutil.disk_usage(opts.work).free
    need = scale * 4200  # ~3.9 GB per million customers
    if free < need * 1.2:
        raise SystemExit(f"not enough disk for crm_{scale}: {free / 1e9:.1f} GB free under "
                         f"{opts.work}, about {need / 1e9:.1f} GB needed")
    crm.unlink(missing_ok=True)
    marker.unlink(missing_ok=True)
    print(f"  building the demo CRM of {scale:,} customers -> {crm} ...", flush=True)
    code = ("import json,sys,time,bench;from tooling.demo_crm import build_demo_crm,DEFAULT_AS_OF;"
            f"t=time.perf_counter();c=build_demo_crm('sqlite:///{crm}',{scale},{opts.seed},"
            "DEFAULT_AS_OF);print(json.dumps({'counts':c,'seconds':time.perf_counter()-t,"
            "'as_of':DEFAULT_AS_OF.isoformat()}))")
    log = opts.work / f"build_{scale}.log"
    proc = _child(["-c", code], log)
    if proc["exit"] != 0:
        raise SystemExit(f"building crm_{scale} failed: see {log}")
    built = json.loads(log.read_text().strip().splitlines()[-1])
    info = {"customers": scale, "seed": opts.seed, "as_of": built["as_of"],
            "counts": built["counts"], "build_seconds": round(built["seconds"], 1),
            "build_peak_rss": proc["process_peak_rss"], "generator": _generator_digest(),
            "bytes": crm.stat().st_size}
    marker.write_text(json.dumps(info, indent=1))
    info["reused"] = False
    return info


# ================================================================= one scale
def run_scale(scale: int, opts: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {scale:,} customers", flush=True)
    crm_info = ensure_crm(scale, opts)
    crm = opts.work / f"crm_{scale}.sqlite"
    out = opts.work / f"out_{scale}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stages: list[dict[str, Any]] = []
    failed = False
    for stage in DAILY:
        if failed:
            stages.append({"stage": stage.name, "kind": stage.kind, "ok": False,
                           "error": "skipped: an earlier daily stage failed"})
            continue
        report = run_stage(stage.name, scale, opts, out, crm)
        stages.append(report)
        _echo(report)
        failed = not report["ok"]
    if opts.monthly and not failed:
        for stage in MONTHLY:
            missing = missing_requirements(stage)
            if missing:
                stages.append({"stage": stage.name, "kind": stage.kind, "ok": False,
                               "skipped": True, "error": f"not available: {', '.join(missing)}"})
                print(f"  {stage.name:<16} skipped ({', '.join(missing)} missing)", flush=True)
                continue
            report = run_stage(stage.name, scale, opts, out, crm)
            stages.append(report)
            _echo(report)
            if not report["ok"]:
                break
    if opts.compare and not failed:
        # pandas.read_sql holds the whole CRM as Python objects: ~17 KB per customer.
        need, free = scale * 17_000, _available_memory()
        if free and need > 0.7 * free:
            stages.append({"stage": "cmp_read_sql", "kind": "compare", "ok": False,
                           "skipped": True, "error": f"skipped: needs ~{need / 1e9:.0f} GB, "
                           f"{free / 1e9:.0f} GB available"})
            print(f"  cmp_read_sql     skipped: needs ~{need / 1e9:.0f} GB", flush=True)
        else:
            report = run_stage("cmp_read_sql", scale, opts, out, crm)
            stages.append(report)
            _echo(report)
    if opts.profile and not failed:
        for stage in [*DAILY, *(MONTHLY if opts.monthly else ())]:
            report = run_stage(stage.name, scale, opts, out, crm, profile=True)
            print(f"  profiled {stage.name}: {opts.work / 'profiles' / str(scale) / stage.name}"
                  ".txt", flush=True)
    return {"customers": scale, "crm": crm_info, "stages": stages,
            "summary": _summary(scale, stages)}


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _echo(report: dict[str, Any]) -> None:
    if report.get("ok"):
        print(f"  {report['stage']:<16} {report['seconds']:>8.2f} s  "
              f"(process {report['wall_seconds']:.2f} s)  peak {report['peak_rss'] / MIB:,.0f} MiB",
              flush=True)
    else:
        print(f"  {report['stage']:<16} FAILED: {report.get('error')}", flush=True)


def _summary(scale: int, stages: list[dict[str, Any]]) -> dict[str, Any]:
    daily = [s for s in stages if s.get("kind") == "daily" and s.get("ok")]
    if len(daily) != len(DAILY):
        return {"complete": False}
    by = {s["stage"]: s for s in daily}
    seconds = sum(s["wall_seconds"] for s in daily)
    peak = max(s["process_peak_rss"] for s in daily)
    # call_lists and sla run in parallel in the DAG: their processes can coexist.
    concurrent = max(peak, by["call_lists"]["process_peak_rss"] + by["sla"]["process_peak_rss"])
    summary = {
        "complete": True,
        "daily_seconds": round(seconds, 1),
        "daily_work_seconds": round(sum(s["seconds"] for s in daily), 1),
        "daily_peak_rss": peak,
        "daily_peak_rss_parallel": concurrent,
    }
    if scale == TARGET_SCALE:
        summary["targets"] = {
            "seconds": TARGET_SECONDS, "peak_rss": TARGET_PEAK,
            "seconds_met": seconds < TARGET_SECONDS, "peak_met": peak < TARGET_PEAK,
            "peak_parallel_met": concurrent < TARGET_PEAK,
        }
    return summary


# ================================================================= comparisons
def compare_deadlines(scale: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Revisit's engine vs businesstimedelta on the same tickets of `scale`'s snapshot."""
    import numpy as np

    out = opts.work / f"out_{scale}"
    crm = opts.work / f"crm_{scale}.sqlite"
    print(f"\n== SLA deadlines: Revisit vs businesstimedelta ({scale:,}-customer snapshot, "
          f"first {opts.compare_tickets:,} tickets)", flush=True)
    engine = run_stage("cmp_engine", scale, opts, out, crm)
    _echo(engine)
    result: dict[str, Any] = {"scale": scale, "engine": engine}
    if missing_requirements(STAGES["cmp_btd"]):
        result["error"] = "businesstimedelta is not installed"
        print("  businesstimedelta is not installed: comparison skipped", flush=True)
        return result
    other = run_stage("cmp_btd", scale, opts, out, crm)
    _echo(other)
    result["businesstimedelta"] = other
    if engine.get("ok") and other.get("ok"):
        work = opts.work / f"run_{scale}"
        ours, theirs = np.load(work / "cmp_engine.npy"), np.load(work / "cmp_btd.npy")
        differ = np.flatnonzero(ours != theirs)
        ours_s = engine["steps"]["add_business_hours"]["seconds"]
        theirs_s = other["steps"]["BusinessTimeDelta add"]["seconds"]
        result.update({
            "tickets": len(ours), "identical": len(ours) - len(differ),
            "different": len(differ), "revisit_seconds": ours_s,
            "businesstimedelta_seconds": theirs_s,
            "calendar_build_seconds": engine["details"]["calendar_build_seconds"],
            "examples": [{"position": int(i), "revisit": str(ours[i]), "businesstimedelta":
                          str(theirs[i])} for i in differ[:5]],
            "speed_ratio": round(theirs_s / ours_s) if ours_s else None,
        })
        print(f"  identical deadlines: {result['identical']:,} of {result['tickets']:,}; "
              f"Revisit is {result['speed_ratio']:,}x faster", flush=True)
    return result


# ================================================================= report
def machine() -> dict[str, Any]:
    import numpy
    import pandas
    import pyarrow

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=ROOT, text=True, capture_output=True).stdout.strip())
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory,
        "platform": platform.platform(), "python": platform.python_version(),
        "pandas": pandas.__version__, "numpy": numpy.__version__, "pyarrow": pyarrow.__version__,
        "git_commit": commit, "git_dirty": dirty, "loadavg_start": os.getloadavg(),
    }


def table_rows(results: dict[str, Any]) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    """What a table of the results lists, in order, whatever its format: per scale
    (customers), each stage ("failed" or "stage"), its probes ("step"), the daily total when
    the scale completed ("total", the scale's summary), then "end"."""
    for scale in results["scales"]:
        n = scale["customers"]
        for s in scale["stages"]:
            if not s.get("ok"):
                yield n, "failed", s["stage"], s
                continue
            yield n, "stage", s["stage"], s
            for step, v in s.get("steps", {}).items():
                yield n, "step", step, v
        if scale["summary"].get("complete"):
            yield n, "total", "daily DAG", scale["summary"]
        yield n, "end", "", {}


def step_rate(step: dict[str, Any]) -> int | None:
    """A probe's rows per second (None when it counted no rows or took no time)."""
    return round(step["rows"] / step["seconds"]) if step["rows"] and step["seconds"] else None


def table(results: dict[str, Any]) -> str:
    head = (f"{'customers':>10}  {'stage':<28} {'seconds':>8} {'process s':>9} {'rows':>12} "
            f"{'rows/s':>11} {'peak MiB':>9} {'proc MiB':>9}")
    lines = [head, "-" * len(head)]
    for n, kind, name, v in table_rows(results):
        if kind == "failed":
            lines.append(f"{n:>10,}  {name:<28} {v.get('error', 'failed')[:60]}")
        elif kind == "stage":
            lines.append(
                f"{n:>10,}  {name:<28} {v['seconds']:>8.2f} {v['wall_seconds']:>9.2f} "
                f"{v['rows']:>12,} {v['rows_per_second'] or 0:>11,} "
                f"{v['peak_rss'] / MIB:>9,.0f} {v['process_peak_rss'] / MIB:>9,.0f}")
        elif kind == "step":
            rate = step_rate(v)
            rate = f"{rate:>11,}" if rate is not None else f"{'':>11}"
            rows = f"{v['rows']:>12,}" if v["rows"] else f"{'':>12}"
            lines.append(f"{'':>10}    {name:<26} {v['seconds']:>8.2f} {'':>9} {rows} "
                         f"{rate} {v['peak_rss'] / MIB:>9,.0f}")
        elif kind == "total":
            lines.append(
                f"{n:>10,}  {'= daily DAG (sum of tasks)':<28} {v['daily_work_seconds']:>8.1f} "
                f"{v['daily_seconds']:>9.1f} {'':>12} {'':>11} {'':>9} "
                f"{v['daily_peak_rss'] / MIB:>9,.0f}")
            targets = v.get("targets")
            if targets:
                lines.append(
                    f"{'':>10}  target < {targets['seconds']} s: "
                    f"{'met' if targets['seconds_met'] else 'MISSED'}; peak < 4 GiB: "
                    f"{'met' if targets['peak_met'] else 'MISSED'} (call_lists + sla in "
                    f"parallel: {v['daily_peak_rss_parallel'] / MIB:,.0f} MiB, "
                    f"{'met' if targets['peak_parallel_met'] else 'MISSED'})")
        else:
            lines.append("")
    cmp = results.get("deadlines")
    if cmp and "speed_ratio" in cmp:
        e, b = cmp["engine"], cmp["businesstimedelta"]
        lines.append(
            f"SLA deadlines, {cmp['tickets']:,} tickets: Revisit add_business_hours "
            f"{cmp['revisit_seconds']:.3f} s (+ calendar build {cmp['calendar_build_seconds']} s; "
            f"stage peak {e['peak_rss'] / MIB:,.0f} MiB), businesstimedelta "
            f"{cmp['businesstimedelta_seconds']:.1f} s (stage peak {b['peak_rss'] / MIB:,.0f} "
            f"MiB): {cmp['speed_ratio']:,}x faster; identical deadlines "
            f"{cmp['identical']:,}/{cmp['tickets']:,}")
    for scale in results["scales"]:
        by = {s["stage"]: s for s in scale["stages"] if s.get("ok")}
        if "extract" in by and "cmp_read_sql" in by:
            e, r = by["extract"], by["cmp_read_sql"]
            lines.append(
                f"extract vs pandas.read_sql, {scale['customers']:,} customers: "
                f"{e['seconds']:.1f} s / {e['peak_rss'] / MIB:,.0f} MiB vs "
                f"{r['seconds']:.1f} s / {r['peak_rss'] / MIB:,.0f} MiB")
    return "\n".join(lines)


def growth(results: dict[str, Any]) -> str:
    """Microseconds per customer of each stage at each scale: flat = linear cost."""
    scales = [s for s in results["scales"] if s["summary"].get("complete")]
    if len(scales) < 2:
        return ""
    names = [s["stage"] for s in scales[0]["stages"] if s.get("ok")]
    head = f"{'µs per customer':<20}" + "".join(f"{s['customers']:>12,}" for s in scales)
    lines = [head]
    for name in names:
        cells = []
        for scale in scales:
            by = {s["stage"]: s for s in scale["stages"] if s.get("ok")}
            cells.append(f"{by[name]['seconds'] / scale['customers'] * 1e6:>12.1f}"
                         if name in by else f"{'-':>12}")
        lines.append(f"{name:<20}" + "".join(cells))
    return "\n".join(lines)


def write_results(results: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    path = folder / f"{stamp}.json"
    text = json.dumps(results, indent=1, default=str)
    for target in (path, folder / "latest.json"):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return path


# ================================================================= CLI
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="10000,100000,1000000",
                        help="customers per scale, comma-separated (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", default=DEFAULT_DAY, help="call date D (default %(default)s)")
    parser.add_argument("--month", default=DEFAULT_MONTH,
                        help="report month M of the monthly stages (default %(default)s)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="CRMs, outputs, logs (git-ignored; default bench/work)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="where the JSON goes (default bench/results)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the demo CRMs")
    parser.add_argument("--no-monthly", dest="monthly", action="store_false",
                        help="skip the monthly stages")
    parser.add_argument("--no-compare", dest="compare", action="store_false",
                        help="skip businesstimedelta and pandas.read_sql")
    parser.add_argument("--compare-tickets", type=int, default=100_000,
                        help="tickets in the deadline comparison (default %(default)s)")
    parser.add_argument("--compare-scale", type=int, default=None,
                        help="whose snapshot the deadline comparison uses (default: the "
                             "smallest scale with enough tickets, else the largest)")
    parser.add_argument("--profile", action="store_true",
                        help="also run each stage under pyinstrument (bench/work/profiles)")
    parser.add_argument("--no-save", dest="save", action="store_false",
                        help="print only; write no JSON under --results")
    opts = parser.parse_args(argv)
    opts.scales = [int(s.replace("_", "")) for s in opts.scales.split(",") if s.strip()]
    opts.work = opts.work.resolve()
    opts.work.mkdir(parents=True, exist_ok=True)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(), "day": opts.day, "month": opts.month, "seed": opts.seed,
        "method": {
            "seconds": "wall time of the stage's work inside its own process",
            "process_seconds": "wall time of the whole stage process (interpreter, imports, "
                               "policy, calendar, work)",
            "peak_rss": "kernel peak-RSS mark (VmHWM) of the stage process, reset after imports",
            "process_peak_rss": "ru_maxrss of the stage process from wait4 (imports included)",
            "daily_seconds": "sum of the daily tasks' process seconds (call_lists and sla "
                             "sequential)",
        },
        "scales": [],
    }
    for scale in opts.scales:
        results["scales"].append(run_scale(scale, opts))
    if opts.compare:
        done = [s for s in results["scales"] if s["summary"].get("complete")]
        if done:
            chosen = opts.compare_scale
            if chosen is None:
                enough = [s["customers"] for s in done
                          if s["crm"]["counts"]["tickets"] >= opts.compare_tickets * 1.3]
                chosen = min(enough) if enough else max(s["customers"] for s in done)
            results["deadlines"] = compare_deadlines(chosen, opts)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print()
    print(table(results))
    print()
    print(growth(results))
    if opts.save:
        path = write_results(results, opts.results)
        print(f"\nwrote {path} and {opts.results / 'latest.json'}")
    complete = all(s["summary"].get("complete") for s in results["scales"])
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
