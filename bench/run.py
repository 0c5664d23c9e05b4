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
process as a whole including imports, ru_maxrss from wait4. Per scale also the critical path
of the DAG beside the sum of tasks, the parallel peak (tasks the DAG may run together add up),
each task's process-tree peak (the extract's worker included) and the load average around every
stage; `--ab REV --repeat N` alternates REV's code (a git worktree) and the working tree.
"""

from __future__ import annotations

import argparse
import contextlib
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
TARGET_SECONDS = 90             # issue 17: the daily DAG at 1,000,000 customers, two slots
TARGET_MONTHLY_SECONDS = 45
TARGET_PEAK = 2 * 1024 ** 3     # issue 17: no task above 2 GiB at 1 M and at 3 M customers
TARGET_SCALE = 1_000_000
SLOTS = 2                       # task slots the targets are stated for
MIB = 1024 ** 2


# ================================================================= processes
class _TreeSampler:
    """Resident memory of a process and all its descendants, summed, sampled every `every`
    seconds (psutil, else /proc): what the machine holds for a task that starts children
    (the extract's worker). The kernel's marks (VmHWM, wait4) see one process each; a sample
    can miss a spike shorter than `every`, so both are reported."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        import threading

        self.pid, self.every, self.peak, self.samples, self.most = pid, every, 0, 0, 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> tuple[int, int]:
        try:
            import psutil
        except ImportError:
            psutil = None
        if psutil is not None:
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return 0, 0
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            return total, len(procs)
        return _proc_tree_rss(self.pid)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            rss, count = self._tree_rss()
            self.samples += 1
            self.peak = max(self.peak, rss)
            self.most = max(self.most, count)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {"tree_peak_rss": self.peak, "tree_samples": self.samples,
                "tree_processes": self.most}


def _proc_tree_rss(pid: int) -> tuple[int, int]:
    """/proc fallback of the sampler: RSS of pid and its descendants, bytes, and their count."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    todo, total, count = [pid], 0, 0
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        try:
            total += int((Path("/proc") / str(current) / "statm").read_text().split()[1]) * page
            count += 1
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(parents.get(current, ()))
    return total, count


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _child(args: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a Python child from the repository root; wall seconds, CPU seconds and peak RSS
    (wait4), the sampled peak of its process tree, and the load average before and after."""
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    load_start = _load()
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        sampler = _TreeSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        tree = sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "wall_seconds": round(time.perf_counter() - began, 3),
            "process_peak_rss": usage.ru_maxrss * 1024,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            **tree, "loadavg_start": load_start, "loadavg_end": _load()}


def run_stage(name: str, scale: int, opts: argparse.Namespace, out: Path, crm: Path,
              profile: bool = False, shard: str | None = None,
              shards: list[str] | None = None) -> dict[str, Any]:
    """One stage in its own process; `shard`: one mapped task of a mapped stage, `shards`: the
    shards a merge stage reads."""
    work = opts.work / f"run_{scale}"
    work.mkdir(parents=True, exist_ok=True)
    task = name if shard is None else f"{name}[{shard}]"
    result = work / f"{task}.json"
    result.unlink(missing_ok=True)
    config = {
        "stage": name, "crm": str(crm), "out": str(out), "day": opts.day, "month": opts.month,
        "results_url": f"sqlite:///{out / 'results.sqlite'}", "tickets": opts.compare_tickets,
        "result": str(result), "work": str(work), "shard": shard, "shards": shards,
        "profile": str(opts.work / "profiles" / str(scale) / task) if profile else None,
    }
    path = work / f"{task}.config.json"
    path.write_text(json.dumps(config, indent=1))
    source = getattr(opts, "source", None)
    proc = _child(["-m", "bench.stages", str(path)], work / f"{task}.log",
                  env={"BENCH_SOURCE": str(source)} if source else None)
    report = json.loads(result.read_text()) if result.exists() else {
        "stage": task, "ok": False, "error": f"the stage process exited {proc['exit']} without "
        f"a report (see {work / (task + '.log')})"}
    report.update(proc)
    report["wait4_maxrss"] = proc["process_peak_rss"]
    # clear_refs also resets what wait4 reports: fold in the set-up and stage peaks.
    report["process_peak_rss"] = max(proc["process_peak_rss"], report.get("setup_peak_rss", 0),
                                     report.get("peak_rss", 0))
    # The task's memory on the machine: its process and children (the extract's worker).
    report["task_peak_rss"] = max(report["process_peak_rss"], proc["tree_peak_rss"])
    worker = (report.get("details") or {}).get("worker_peak_rss")
    if worker:
        # wait4's ru_maxrss of the stage process is the larger of its own and its waited-for
        # children's peaks (here the worker's), so the bound adds the worker to the stage
        # process's own marks (set-up and stage VmHWM), not to process_peak_rss.
        own = max(report.get("setup_peak_rss", 0), report.get("peak_rss", 0))
        report["own_peak_rss"] = own
        report["peak_rss_with_worker_bound"] = own + worker
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
def run_scale(scale: int, opts: argparse.Namespace, compare: bool | None = None
              ) -> dict[str, Any]:
    print(f"\n== {scale:,} customers", flush=True)
    crm_info = ensure_crm(scale, opts)
    crm = opts.work / f"crm_{scale}.sqlite"
    out = opts.work / f"out_{scale}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stages: list[dict[str, Any]] = []
    failed = False
    shard_ids: list[str] = []
    for stage in DAILY:
        if failed:
            stages.append({"stage": stage.name, "kind": stage.kind, "ok": False,
                           "error": "skipped: an earlier daily stage failed"})
            continue
        for shard in shard_ids if stage.mapped else [None]:
            report = run_stage(stage.name, scale, opts, out, crm, shard=shard,
                               shards=shard_ids if stage.name in MERGES else None)
            stages.append(report)
            _echo(report)
            failed = failed or not report["ok"]
        if stage.name == "shards" and report["ok"]:
            shard_ids = report["details"]["shard_ids"]
    if (opts.compare if compare is None else compare) and not failed:
        # The obvious alternative, in the same run: call_lists and sla over the whole CRM in
        # one task each (they rewrite the same partitions with the same bytes), where the
        # machine can hold them (measured at 1M: 6.9 and 2.7 KB per customer).
        for name, per_customer in WHOLE.items():
            need, free = scale * per_customer, _available_memory()
            if free and need > 0.7 * free:
                stages.append({"stage": name, "kind": "compare", "ok": False, "skipped": True,
                               "error": f"skipped: needs ~{need / 1e9:.0f} GB, "
                               f"{free / 1e9:.0f} GB available"})
                print(f"  {name:<16} skipped: needs ~{need / 1e9:.0f} GB", flush=True)
                continue
            report = run_stage(name, scale, opts, out, crm)
            stages.append(report)
            _echo(report)
    if opts.monthly and not failed and scale <= (opts.monthly_upto or scale):
        month_shards: list[str] = []
        for stage in MONTHLY:
            missing = missing_requirements(stage)
            if missing:
                stages.append({"stage": stage.name, "kind": stage.kind, "ok": False,
                               "skipped": True, "error": f"not available: {', '.join(missing)}"})
                print(f"  {stage.name:<16} skipped ({', '.join(missing)} missing)", flush=True)
                continue
            for shard in month_shards if stage.mapped else [None]:
                report = run_stage(stage.name, scale, opts, out, crm, shard=shard,
                                   shards=month_shards if stage.name in MERGES else None)
                stages.append(report)
                _echo(report)
            if stage.name == "monthly_shards" and report["ok"]:
                month_shards = report["details"]["shard_ids"]
            if not report["ok"]:
                break
    if (opts.compare if compare is None else compare) and not failed:
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
            report = run_stage(stage.name, scale, opts, out, crm, profile=True,
                               shard=shard_ids[0] if stage.mapped else None,
                               shards=shard_ids if stage.name in MERGES else None)
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


# The DAGs' dependencies (dags/revisit_daily.py, dags/revisit_monthly.py): task -> upstream.
# Tasks the bench does not run (e-mail, retention, the company reports) are in the graph with
# no time and no memory, so they neither lengthen a path nor add to a peak; the summary lists
# them as not measured.
MERGES = ("call_lists", "sla", "kpis")  # the stages that merge the mapped tasks' hand-offs
# their unsharded alternative (compare stages): bytes of memory per customer they need
WHOLE = {"call_lists_whole": 7_000, "sla_whole": 2_700}


def daily_dag(shard_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """revisit_daily with its mapped tasks expanded: one obligations_shard[s] and one
    sla_shard[s] per shard after `shards`, merged by call_lists and sla."""
    obligations = tuple(f"obligations_shard[{s}]" for s in shard_ids)
    sla = tuple(f"sla_shard[{s}]" for s in shard_ids)
    return {
        "extract": (), "quality_gate": ("extract",), "shards": ("quality_gate",),
        **dict.fromkeys(obligations, ("shards",)), **dict.fromkeys(sla, ("shards",)),
        "call_lists": obligations or ("shards",), "sla": sla or ("shards",),
        "sla_digest": ("sla",), "agent_mail": ("call_lists", "sla"),
        "publish": ("call_lists", "sla"), "retention": ("publish",),
    }


DAILY_DAG = daily_dag(["000"])  # one shard: the embedded demo's plan


def monthly_dag(shard_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """revisit_monthly with its kpis_shard[s] expanded (+ one render[D] per department after
    kpis, added by _monthly_dag)."""
    shares = tuple(f"kpis_shard[{s}]" for s in shard_ids)
    return {"monthly_extract": (), "monthly_gate": ("monthly_extract",),
            "monthly_shards": ("monthly_gate",), **dict.fromkeys(shares, ("monthly_shards",)),
            "kpis": shares or ("monthly_shards",)}


MONTHLY_DAG = monthly_dag(["000"])


def _ancestors(dag: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    memo: dict[str, set[str]] = {}

    def up(task: str) -> set[str]:
        if task not in memo:
            memo[task] = set()
            for parent in dag[task]:
                memo[task] |= {parent, *up(parent)}
        return memo[task]

    for task in dag:
        up(task)
    return memo


def critical_path(dag: dict[str, tuple[str, ...]], seconds: dict[str, float]
                  ) -> tuple[float, list[str]]:
    """Longest chain of dependencies, weighted by the tasks' measured seconds (0 when not
    measured): the DAG's wall time with enough task slots, scheduling left out."""
    best: dict[str, tuple[float, list[str]]] = {}

    def finish(task: str) -> tuple[float, list[str]]:
        if task not in best:
            before = max((finish(p) for p in dag[task]), default=(0.0, []), key=lambda x: x[0])
            best[task] = (before[0] + seconds.get(task, 0.0), [*before[1], task])
        return best[task]

    total, chain = max((finish(t) for t in dag), key=lambda x: x[0])
    return total, [t for t in chain if t in seconds]


def parallel_peak(dag: dict[str, tuple[str, ...]], peaks: dict[str, int],
                  slots: int | None = None) -> tuple[int, list[str]]:
    """The largest sum of peaks over at most `slots` tasks (None: any number) that may run at
    the same time: no dependency between any two of them (an antichain of the DAG). Each
    task's whole peak is counted, as if the peaks coincided: an upper bound of what the
    machine holds with that many task slots.

    How: every maximal antichain (Bron-Kerbosch over "neither is upstream of the other",
    few here: the mapped tasks of a stage form one), its `slots` largest peaks."""
    above = _ancestors(dag)
    tasks = [t for t in dag if peaks.get(t)]
    free = {t: {u for u in tasks if u != t and u not in above[t] and t not in above[u]}
            for t in tasks}
    best: tuple[int, list[str]] = (0, [])

    def grow(chosen: set[str], candidates: set[str], excluded: set[str]) -> None:
        nonlocal best
        if not candidates and not excluded:
            top = sorted(chosen, key=lambda t: (-peaks[t], tasks.index(t)))[:slots]
            total = sum(peaks[t] for t in top)
            if total > best[0]:
                best = (total, sorted(top, key=tasks.index))
            return
        pivot = max(candidates | excluded, key=lambda t: len(free[t] & candidates))
        for t in list(candidates - free[pivot]):
            grow(chosen | {t}, candidates & free[t], excluded & free[t])
            candidates = candidates - {t}
            excluded = excluded | {t}

    grow(set(), set(tasks), set())
    return best


def schedule(dag: dict[str, tuple[str, ...]], seconds: dict[str, float], slots: int
             ) -> float:
    """Wall time of the DAG on `slots` task slots, weighted by the measured seconds: each
    free slot takes the ready task with the longest chain after it (critical path first, the
    ranking a scheduler's downstream weights approximate); scheduling latency left out."""
    import heapq

    below: dict[str, list[str]] = {t: [] for t in dag}
    for task, ups in dag.items():
        for up in ups:
            below[up].append(task)
    tail: dict[str, float] = {}

    def rest(task: str) -> float:
        if task not in tail:
            tail[task] = seconds.get(task, 0.0) + max((rest(c) for c in below[task]),
                                                      default=0.0)
        return tail[task]

    waiting = {t: len(ups) for t, ups in dag.items()}
    ready = [t for t, n in waiting.items() if n == 0]
    running: list[tuple[float, str]] = []
    clock = 0.0
    while ready or running:
        while ready and len(running) < slots:
            ready.sort(key=lambda t: (-rest(t), t))
            task = ready.pop(0)
            heapq.heappush(running, (clock + seconds.get(task, 0.0), task))
        clock, task = heapq.heappop(running)
        for child in below[task]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return clock


def _monthly_dag(by: dict[str, dict[str, Any]]) -> tuple[dict, dict, dict]:
    """The monthly DAG with one render task per department: each pays the render process's
    set-up (process seconds - work seconds) plus its own department's render time, and is
    given the render process's peak (one process rendered them all, so this bounds each)."""
    plan = by.get("monthly_shards", {}).get("details", {}).get("shard_ids") or []
    dag = {t: u for t, u in monthly_dag(plan).items() if t in by}
    seconds = {t: by[t]["wall_seconds"] for t in dag}
    peaks = {t: by[t]["task_peak_rss"] for t in dag}
    render = by.get("render")
    if render and "kpis" in dag:
        own = render.get("details", {}).get("seconds_per_department") or {}
        setup = render["wall_seconds"] - render["seconds"]
        for department, secs in own.items():
            task = f"render[{department}]"
            dag[task] = ("kpis",)
            seconds[task] = setup + secs
            peaks[task] = render["task_peak_rss"]
    return dag, seconds, peaks


def _summary(scale: int, stages: list[dict[str, Any]]) -> dict[str, Any]:
    daily = [s for s in stages if s.get("kind") == "daily"]
    by = {s["stage"]: s for s in daily if s.get("ok")}
    plan = by.get("shards", {}).get("details", {}).get("shard_ids")
    if plan is None or len(by) != len(daily):
        return {"complete": False}
    dag = daily_dag(plan)
    seconds = sum(s["wall_seconds"] for s in by.values())
    peak = max(s["task_peak_rss"] for s in by.values())
    wall = {t: by[t]["wall_seconds"] for t in by}
    task_peaks = {t: by[t]["task_peak_rss"] for t in by}
    path_seconds, path = critical_path(dag, wall)
    concurrent, together = parallel_peak(dag, task_peaks)
    slotted, slotted_tasks = parallel_peak(dag, task_peaks, SLOTS)
    largest = max(by.values(), key=lambda s: s["task_peak_rss"])
    summary = {
        "shards": len(plan),
        "daily_slots": SLOTS,
        "daily_slots_seconds": round(schedule(dag, wall, SLOTS), 1),
        "daily_peak_rss_slots": slotted,
        "daily_slots_parallel_tasks": slotted_tasks,
        "daily_largest_task": largest["stage"],
        "complete": True,
        "daily_seconds": round(seconds, 1),
        "daily_work_seconds": round(sum(s["seconds"] for s in daily), 1),
        "daily_cpu_seconds": round(sum(s.get("cpu_seconds", 0) for s in daily), 1),
        "daily_critical_path_seconds": round(path_seconds, 1),
        "daily_critical_path": path,
        "daily_peak_rss": peak,
        "daily_peak_rss_parallel": concurrent,
        "daily_parallel_tasks": together,
        "daily_not_measured": [t for t in dag if t not in by],
        "loadavg_start": by["extract"].get("loadavg_start"),
        "loadavg_end": by["publish"].get("loadavg_end"),
    }
    monthly = {s["stage"]: s for s in stages if s.get("kind") == "monthly" and s.get("ok")}
    if monthly:
        dag, secs, peaks = _monthly_dag(monthly)
        m_path_seconds, m_path = critical_path(dag, secs)
        m_peak, m_together = parallel_peak(dag, peaks)
        summary.update({
            "monthly_slots_seconds": round(schedule(dag, secs, SLOTS), 1),
            "monthly_seconds": round(sum(s["wall_seconds"] for s in monthly.values()), 1),
            "monthly_critical_path_seconds": round(m_path_seconds, 1),
            "monthly_critical_path": m_path,
            "monthly_peak_rss": max(s["task_peak_rss"] for s in monthly.values()),
            "monthly_peak_rss_parallel": m_peak,
            "monthly_parallel_tasks": m_together,
        })
    summary["targets"] = {
        "peak_rss": TARGET_PEAK, "peak_met": peak <= TARGET_PEAK,
        **({"seconds": TARGET_SECONDS, "seconds_met": summary["daily_slots_seconds"]
            <= TARGET_SECONDS} if scale == TARGET_SCALE else {}),
        **({"monthly_seconds": TARGET_MONTHLY_SECONDS, "monthly_seconds_met":
            summary["monthly_slots_seconds"] <= TARGET_MONTHLY_SECONDS}
           if scale == TARGET_SCALE and "monthly_slots_seconds" in summary else {}),
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


def _spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the spread (max - min) of repeated measurements."""
    import statistics

    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "spread": round(max(values) - min(values), 3)}


def compare_sla_fair(scale: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Revisit's engine vs businesstimedelta as whole processes (bench/sla_fair.py): the same
    tickets, each side's imports, policy and calendar construction included, deadlines
    compared; engine and businesstimedelta alternate `--repeat` times."""
    import importlib.util

    import numpy as np

    from bench.sla_fair import prepare

    folder = opts.work / "sla_fair"
    shutil.rmtree(folder, ignore_errors=True)
    snapshot = opts.work / f"out_{scale}" / "snapshots" / opts.day / "tickets.parquet"
    print(f"\n== SLA deadlines as whole processes ({scale:,}-customer snapshot, "
          f"first {opts.compare_tickets:,} tickets, {opts.repeat}x alternating)", flush=True)
    if not snapshot.exists():
        found = sorted((opts.work / f"out_{scale}").glob("snapshots/*/tickets.parquet"))
        if not found:
            return {"scale": scale, "error": f"no snapshot tickets under out_{scale}"}
        snapshot = found[0]
    tickets = prepare(snapshot, opts.compare_tickets, folder)
    result: dict[str, Any] = {"scale": scale, "tickets": tickets,
                              "requested_tickets": opts.compare_tickets, "runs": []}
    sides = ["engine"]
    if importlib.util.find_spec("businesstimedelta") is None:
        result["error"] = "businesstimedelta is not installed"
    else:
        sides.append("btd")
    for i in range(opts.repeat):
        for side in sides:
            proc = _child(["-m", "bench.sla_fair", side, str(folder)],
                          folder / f"{side}_{i}.log")
            lines = (folder / f"{side}_{i}.log").read_text().strip().splitlines()
            inside = json.loads(lines[-1]) if proc["exit"] == 0 and lines else {}
            run = {"side": side, "repeat": i, **proc, "phases": inside.get("phases"),
                   "wait4_maxrss": proc["process_peak_rss"]}
            if inside.get("peak_rss"):  # the process's own VmHWM (see sla_fair._own_peak)
                run["process_peak_rss"] = inside["peak_rss"]
            result["runs"].append(run)
            print(f"  {side:<7} {proc['wall_seconds']:>8.2f} s wall  {proc['cpu_seconds']:>8.2f} "
                  f"CPU-s  peak {run['process_peak_rss'] / MIB:,.0f} MiB  load "
                  f"{proc['loadavg_start'][0]}->{proc['loadavg_end'][0]}"
                  + ("" if proc["exit"] == 0 else f"  FAILED (see {folder})"), flush=True)
    for side in sides:
        runs = [r for r in result["runs"] if r["side"] == side and r["exit"] == 0]
        result[side] = {
            "ok": len(runs) == opts.repeat,
            "wall_seconds": _spread([r["wall_seconds"] for r in runs]),
            "cpu_seconds": _spread([r["cpu_seconds"] for r in runs]),
            "peak_rss": max((r["process_peak_rss"] for r in runs), default=0),
            "deadline_seconds": _spread([(r["phases"] or {}).get("deadlines") for r in runs]),
            "calendar_seconds": _spread([(r["phases"] or {}).get("policy_and_calendar")
                                         for r in runs]),
            "loadavg": [[r["loadavg_start"][0], r["loadavg_end"][0]] for r in runs],
        }
    if len(sides) == 2 and result["engine"]["ok"] and result["btd"]["ok"]:
        ours = np.fromfile(folder / "out_engine.i8", dtype="<i8")
        theirs = np.fromfile(folder / "out_btd.i8", dtype="<i8")
        differ = np.flatnonzero(ours != theirs) if len(ours) == len(theirs) else \
            np.arange(max(len(ours), len(theirs)))
        e, b = result["engine"], result["btd"]
        result.update({
            "compared": int(min(len(ours), len(theirs))), "mismatches": len(differ),
            "examples": [{"position": int(i),
                          "revisit": str(ours[i].astype("datetime64[ns]")) if i < len(ours)
                          else None,
                          "businesstimedelta": str(theirs[i].astype("datetime64[ns]"))
                          if i < len(theirs) else None} for i in differ[:5]],
            "wall_ratio": round(b["wall_seconds"]["median"] / e["wall_seconds"]["median"], 1),
            "cpu_ratio": round(b["cpu_seconds"]["median"] / e["cpu_seconds"]["median"], 1),
        })
        print(f"  mismatches {result['mismatches']} of {tickets:,}; whole processes: "
              f"businesstimedelta / Revisit = {result['wall_ratio']}x wall, "
              f"{result['cpu_ratio']}x CPU (medians)", flush=True)
    return result


def _ab_stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage (and the daily totals): median and spread of repeated runs of one side."""
    names: list[str] = []
    for run in runs:
        for s in run["stages"]:
            if s["stage"] not in names:
                names.append(s["stage"])
    stages = {}
    for name in names:
        got = [s for run in runs for s in run["stages"] if s["stage"] == name and s.get("ok")]
        stages[name] = {
            "ok_runs": len(got),
            **{key: _spread([s.get(key) for s in got])
               for key in ("seconds", "wall_seconds", "cpu_seconds")},
            "task_peak_rss": _spread([s.get("task_peak_rss") for s in got]),
        }
    totals = {key: _spread([run["summary"].get(key) for run in runs
                            if run["summary"].get("complete")])
              for key in ("daily_seconds", "daily_critical_path_seconds", "daily_cpu_seconds",
                          "daily_peak_rss_parallel")}
    sources = sorted({s.get("source") for run in runs for s in run["stages"] if s.get("source")})
    return {"stages": stages, "totals": totals, "sources": sources}


def run_ab(opts: argparse.Namespace) -> dict[str, Any]:
    """A = a git worktree of opts.ab (bench/work/ab/), B = the working tree, run alternately
    A, B, A, B ... (`--repeat` pairs) with the same harness: only plugins/ (the code the DAG
    runs) comes from the other revision."""
    if not opts.ab:  # --repeat alone: the working tree only
        return _repeat_only(opts)
    commit = subprocess.run(["git", "rev-parse", "--verify", opts.ab + "^{commit}"], cwd=ROOT,
                            text=True, capture_output=True)
    if commit.returncode != 0:
        raise SystemExit(f"--ab {opts.ab}: not a commit ({commit.stderr.strip()})")
    sha = commit.stdout.strip()
    tree = opts.work / "ab" / sha[:12]
    if tree.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(tree, ignore_errors=True)
    tree.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True,
                   capture_output=True)
    sides = {"A": tree, "B": None}
    out: dict[str, Any] = {"rev": opts.ab, "commit": sha, "repeat": opts.repeat,
                           "order": "A, B alternately", "scales": []}
    try:
        for scale in opts.scales:
            runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
            for i in range(opts.repeat):
                for side, source in sides.items():
                    opts.source = source
                    print(f"\n-- A/B round {i + 1}/{opts.repeat}: {side} "
                          f"({opts.ab} {sha[:10]})" if side == "A" else
                          f"\n-- A/B round {i + 1}/{opts.repeat}: B (working tree)", flush=True)
                    runs[side].append(run_scale(scale, opts, compare=False))
            out["scales"].append({"customers": scale,
                                  "A": _ab_stats(runs["A"]), "B": _ab_stats(runs["B"]),
                                  "runs": runs})
    finally:
        opts.source = None
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
    return out


def _repeat_only(opts: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"rev": None, "commit": None, "repeat": opts.repeat,
                           "order": "working tree only", "scales": []}
    empty = {"stages": {}, "totals": {k: {"n": 0} for k in (
        "daily_seconds", "daily_critical_path_seconds", "daily_cpu_seconds",
        "daily_peak_rss_parallel")}}
    for scale in opts.scales:
        runs = []
        for i in range(opts.repeat):
            print(f"\n-- repeat {i + 1}/{opts.repeat} (working tree)", flush=True)
            runs.append(run_scale(scale, opts, compare=False))
        out["scales"].append({"customers": scale, "A": empty, "B": _ab_stats(runs),
                              "runs": {"A": [], "B": runs}})
    return out


def ab_table(ab: dict[str, Any]) -> str:
    what = (f"A = {ab['rev']} ({ab['commit'][:10]}), B = working tree; {ab['repeat']} runs each, "
            "alternating" if ab.get("commit") else
            f"B = working tree, {ab['repeat']} runs (no A: --repeat without --ab)")
    lines = [f"A/B: {what}; process seconds median [min-max], CPU s median, "
             "task peak MiB median"]
    head = (f"{'customers':>10}  {'stage':<22} {'A s':>8} {'[min-max]':>15} {'B s':>8} "
            f"{'[min-max]':>15} {'B/A':>6} {'A CPU':>7} {'B CPU':>7} {'A MiB':>7} {'B MiB':>7}")
    lines += [head, "-" * len(head)]

    def cell(x: dict[str, Any]) -> tuple[str, str]:
        if not x.get("n"):
            return f"{'-':>8}", f"{'':>15}"
        span = f"[{x['min']:.2f}-{x['max']:.2f}]"
        return f"{x['median']:>8.2f}", f"{span:>15}"

    for scale in ab["scales"]:
        a, b = scale["A"]["stages"], scale["B"]["stages"]
        rows = [(n, a.get(n, {}), b.get(n, {})) for n in dict.fromkeys([*a, *b])]
        ta, tb = scale["A"]["totals"], scale["B"]["totals"]
        rows.append(("= daily sum of tasks",
                     {"wall_seconds": ta["daily_seconds"], "cpu_seconds": ta["daily_cpu_seconds"]},
                     {"wall_seconds": tb["daily_seconds"], "cpu_seconds": tb["daily_cpu_seconds"]}))
        rows.append(("= daily critical path",
                     {"wall_seconds": scale["A"]["totals"]["daily_critical_path_seconds"]},
                     {"wall_seconds": scale["B"]["totals"]["daily_critical_path_seconds"]}))
        for name, x, y in rows:
            (am, ar), (bm, br) = cell(x.get("wall_seconds", {})), cell(y.get("wall_seconds", {}))
            xa, yb = x.get("wall_seconds", {}), y.get("wall_seconds", {})
            ratio = (f"{yb['median'] / xa['median']:>6.2f}" if xa.get("median") and yb.get("n")
                     else f"{'':>6}")

            def med(d: dict[str, Any], key: str, scale_by: float = 1.0, fmt: str = ".1f") -> str:
                v = d.get(key, {})
                return f"{v['median'] / scale_by:>7{fmt}}" if v.get("n") else f"{'':>7}"

            lines.append(f"{scale['customers']:>10,}  {name:<22} {am} {ar} {bm} {br} {ratio} "
                         f"{med(x, 'cpu_seconds')} {med(y, 'cpu_seconds')} "
                         f"{med(x, 'task_peak_rss', MIB, ',.0f')} "
                         f"{med(y, 'task_peak_rss', MIB, ',.0f')}")
        lines.append("")
    return "\n".join(lines)


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


def load_span(v: dict[str, Any]) -> str:
    """'1.21->1.40': the 1-minute load average at the start and end of a stage (or run)."""
    start, end = v.get("loadavg_start"), v.get("loadavg_end")
    return f"{start[0]:.2f}->{end[0]:.2f}" if start and end else ""


def dag_lines(v: dict[str, Any]) -> list[str]:
    """Critical path and parallel peak of a scale's summary, as text lines."""
    if "daily_critical_path_seconds" not in v:
        return []
    out = [f"{'':>10}  daily critical path {v['daily_critical_path_seconds']:.1f} s "
           f"({' > '.join(v['daily_critical_path'])}) vs sum of tasks {v['daily_seconds']:.1f} s; "
           f"parallel peak {v['daily_peak_rss_parallel'] / MIB:,.0f} MiB "
           f"({' + '.join(v['daily_parallel_tasks'])}) vs largest task "
           f"{v['daily_peak_rss'] / MIB:,.0f} MiB"
           + (f"; not measured: {', '.join(v['daily_not_measured'])}"
              if v.get("daily_not_measured") else "")]
    if "monthly_critical_path_seconds" in v:
        together = v["monthly_parallel_tasks"]
        named = " + ".join(together) if len(together) < 4 else \
            f"{len(together)} tasks: " + ", ".join(together)
        out.append(f"{'':>10}  monthly critical path {v['monthly_critical_path_seconds']:.1f} s "
                   f"({' > '.join(v['monthly_critical_path'])}) vs sum "
                   f"{v['monthly_seconds']:.1f} s; parallel peak "
                   f"{v['monthly_peak_rss_parallel'] / MIB:,.0f} MiB ("
                   f"{named}"
                   f") vs largest task {v['monthly_peak_rss'] / MIB:,.0f} MiB")
    return out


def target_lines(v: dict[str, Any]) -> list[str]:
    """The scale's figures on its task slots against issue 17's targets."""
    if "daily_slots_seconds" not in v:
        return []
    targets = v.get("targets", {})

    def verdict(key: str) -> str:
        return "" if key not in targets else (" (met)" if targets[key] else " (MISSED)")

    out = [f"{'':>10}  {v['shards']} shard(s); on {v['daily_slots']} task slots: daily "
           f"{v['daily_slots_seconds']:.1f} s"
           + (f" <= {targets['seconds']} s" if "seconds" in targets else "")
           + verdict("seconds_met")
           + (f", monthly {v['monthly_slots_seconds']:.1f} s" if "monthly_slots_seconds" in v
              else "")
           + (f" <= {targets['monthly_seconds']} s" if "monthly_seconds" in targets else "")
           + verdict("monthly_seconds_met")
           + f"; parallel peak {v['daily_peak_rss_slots'] / MIB:,.0f} MiB ("
           + " + ".join(v["daily_slots_parallel_tasks"]) + ")"]
    out.append(f"{'':>10}  largest daily task {v['daily_largest_task']} "
               f"{v['daily_peak_rss'] / MIB:,.0f} MiB <= {TARGET_PEAK / MIB:,.0f} MiB"
               + verdict("peak_met"))
    return out


def fair_line(fair: dict[str, Any]) -> str:
    if "mismatches" not in fair:
        return f"SLA deadlines as whole processes: {fair.get('error', 'not compared')}"
    e, b = fair["engine"], fair["btd"]

    def side(x: dict[str, Any]) -> str:
        w, c = x["wall_seconds"], x["cpu_seconds"]
        return (f"{w['median']:.2f} s wall [{w['min']:.2f}-{w['max']:.2f}], {c['median']:.2f} "
                f"CPU-s, calendar {x['calendar_seconds'].get('median', 0):.2f} s, deadlines "
                f"{x['deadline_seconds'].get('median', 0):.3f} s, peak "
                f"{x['peak_rss'] / MIB:,.0f} MiB, load "
                + ", ".join(f"{s:.2f}->{t:.2f}" for s, t in x["loadavg"]))
    return (f"SLA deadlines as whole processes, {fair['tickets']:,} tickets, "
            f"{e['wall_seconds']['n']} runs each: Revisit {side(e)}; businesstimedelta "
            f"{side(b)}; ratio {fair['wall_ratio']}x wall, {fair['cpu_ratio']}x CPU; "
            f"mismatches {fair['mismatches']}")


def table(results: dict[str, Any]) -> str:
    head = (f"{'customers':>10}  {'stage':<28} {'seconds':>8} {'process s':>9} {'CPU s':>8} "
            f"{'rows':>12} {'rows/s':>11} {'peak MiB':>9} {'proc MiB':>9} {'task MiB':>9} "
            f"{'load 1-min':>11}")
    lines = [head, "-" * len(head)]
    for n, kind, name, v in table_rows(results):
        if kind == "failed":
            lines.append(f"{n:>10,}  {name:<28} {v.get('error', 'failed')[:60]}")
        elif kind == "stage":
            lines.append(
                f"{n:>10,}  {name:<28} {v['seconds']:>8.2f} {v['wall_seconds']:>9.2f} "
                f"{v.get('cpu_seconds', 0):>8.2f} "
                f"{v['rows']:>12,} {v['rows_per_second'] or 0:>11,} "
                f"{v['peak_rss'] / MIB:>9,.0f} {v['process_peak_rss'] / MIB:>9,.0f} "
                f"{v.get('task_peak_rss', v['process_peak_rss']) / MIB:>9,.0f} "
                f"{load_span(v):>11}")
        elif kind == "step":
            rate = step_rate(v)
            rate = f"{rate:>11,}" if rate is not None else f"{'':>11}"
            rows = f"{v['rows']:>12,}" if v["rows"] else f"{'':>12}"
            lines.append(f"{'':>10}    {name:<26} {v['seconds']:>8.2f} {'':>9} {'':>8} {rows} "
                         f"{rate} {v['peak_rss'] / MIB:>9,.0f}")
        elif kind == "total":
            lines.append(
                f"{n:>10,}  {'= daily DAG (sum of tasks)':<28} {v['daily_work_seconds']:>8.1f} "
                f"{v['daily_seconds']:>9.1f} {v.get('daily_cpu_seconds', 0):>8.1f} {'':>12} "
                f"{'':>11} {'':>9} {'':>9} {v['daily_peak_rss'] / MIB:>9,.0f} "
                f"{load_span(v):>11}")
            lines.extend(dag_lines(v))
            lines.extend(target_lines(v))
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
    if results.get("deadlines_fair"):
        lines.append(fair_line(results["deadlines_fair"]))
    for scale in results["scales"]:
        by = {s["stage"]: s for s in scale["stages"] if s.get("ok")}
        extract = by.get("extract")
        if extract and extract.get("details", {}).get("worker_peak_rss") \
                and "task_peak_rss" in extract:
            lines.append(
                f"extract with its worker, {scale['customers']:,} customers: process tree "
                f"{extract['task_peak_rss'] / MIB:,.0f} MiB sampled (stage process "
                f"{extract['own_peak_rss'] / MIB:,.0f} + worker "
                f"{extract['details']['worker_peak_rss'] / MIB:,.0f} MiB = bound "
                f"{extract['peak_rss_with_worker_bound'] / MIB:,.0f} MiB)")
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
    parser.add_argument("--monthly-upto", type=int, default=None, metavar="N",
                        help="the monthly stages only at scales of at most N customers")
    parser.add_argument("--no-compare", dest="compare", action="store_false",
                        help="skip businesstimedelta and pandas.read_sql")
    parser.add_argument("--compare-tickets", type=int, default=100_000,
                        help="tickets in the deadline comparison (default %(default)s)")
    parser.add_argument("--compare-scale", type=int, default=None,
                        help="whose snapshot the deadline comparison uses (default: the "
                             "smallest scale with enough tickets, else the largest)")
    parser.add_argument("--profile", action="store_true",
                        help="also run each stage under pyinstrument (bench/work/profiles)")
    parser.add_argument("--ab", metavar="REV", default=None,
                        help="alternate A = a git worktree of REV (in bench/work/ab/) and B = "
                             "the working tree, --repeat times each, one session")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per side with --ab (default %(default)s; without --ab: the "
                             "working tree N times); also the SLA process comparison's runs")
    parser.add_argument("--no-save", dest="save", action="store_false",
                        help="print only; write no JSON under --results")
    opts = parser.parse_args(argv)
    opts.scales = [int(s.replace("_", "")) for s in opts.scales.split(",") if s.strip()]
    opts.repeat = max(1, opts.repeat)
    opts.source = None
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
            "daily_critical_path_seconds": "longest dependency chain of revisit_daily weighted "
                                           "by the tasks' process seconds",
            "task_peak_rss": "max of process_peak_rss and the sampled RSS sum of the stage's "
                             "process tree (tree_peak_rss: the extract's worker, the render's "
                             "WeasyPrint child)",
            "daily_peak_rss_parallel": "largest sum of task_peak_rss over tasks the DAG may run "
                                       "together (no dependency between them)",
            "loadavg_start/end": "os.getloadavg() before and after each stage process",
            "wait4_maxrss": "ru_maxrss from wait4; on Linux it starts from the spawning "
                            "parent's RSS, so it is not a stage's peak by itself",
        },
        "scales": [],
    }
    if opts.ab or opts.repeat > 1:
        ab = run_ab(opts)
        results["ab"] = ab
        # The tables and comparisons below use B's first run of each scale.
        results["scales"] = [s["runs"]["B"][0] for s in ab["scales"]]
    else:
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
            results["deadlines_fair"] = compare_sla_fair(chosen, opts)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print()
    print(table(results))
    if results.get("ab"):
        print()
        print(ab_table(results["ab"]))
    print()
    print(growth(results))
    if opts.save:
        path = write_results(results, opts.results)
        print(f"\nwrote {path} and {opts.results / 'latest.json'}")
    complete = all(s["summary"].get("complete") for s in results["scales"])
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
