"""Markdown tables of a benchmark result (for bench/README.md):

    .venv/bin/python -m bench.report [bench/results/latest.json] [--before EARLIER.json]

With --before, first a table of each stage before and after at the largest scale both hold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.run import DEFAULT_RESULTS, load_span, step_rate, table_rows

MIB = 1024 ** 2


def _mib(value: int | None) -> str:
    return f"{value / MIB:,.0f}" if value else ""


def stages_table(results: dict[str, Any]) -> str:
    lines = ["| customers | stage / step | seconds | process s | CPU s | rows | rows/s | "
             "peak MiB | task MiB | load 1-min |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for customers, kind, name, v in table_rows(results):
        n = f"{customers:,}"
        if kind == "failed":
            lines.append(f"| {n} | {name} | {v.get('error', 'failed')} | | | | | | | |")
        elif kind == "stage":
            lines.append(
                f"| {n} | **{name}** | {v['seconds']:.1f} | {v['wall_seconds']:.1f} | "
                f"{v.get('cpu_seconds', 0):.1f} | {v['rows']:,} | {v['rows_per_second'] or 0:,} | "
                f"{_mib(v['process_peak_rss'])} | {_mib(v.get('task_peak_rss'))} | "
                f"{load_span(v)} |")
        elif kind == "step":
            rate = step_rate(v)
            rows = f"{v['rows']:,}" if v["rows"] else ""
            lines.append(f"| | &nbsp;&nbsp;{name} | {v['seconds']:.1f} | | | {rows} | "
                         f"{'' if rate is None else f'{rate:,}'} | {_mib(v['peak_rss'])} | | |")
        elif kind == "total":
            lines.append(f"| {n} | **daily DAG total** (sum of tasks) | "
                         f"{v['daily_work_seconds']:.1f} | {v['daily_seconds']:.1f} | "
                         f"{v.get('daily_cpu_seconds', '')} | | | {_mib(v['daily_peak_rss'])} | "
                         f"| {load_span(v)} |")
            if "daily_critical_path_seconds" in v:
                lines.append(f"| {n} | **daily critical path** "
                             f"({' → '.join(v['daily_critical_path'])}) | | "
                             f"{v['daily_critical_path_seconds']:.1f} | | | | | | |")
                lines.append(f"| {n} | **daily parallel peak** "
                             f"({' + '.join(v['daily_parallel_tasks'])}) | | | | | | | "
                             f"{_mib(v['daily_peak_rss_parallel'])} | |")
    return "\n".join(lines)


def summary_table(results: dict[str, Any]) -> str:
    scales = results["scales"]
    names: list[str] = []
    for scale in scales:
        for s in scale["stages"]:
            if s.get("ok") and s["stage"] not in names:
                names.append(s["stage"])
    head = "| stage | " + " | ".join(f"{s['customers']:,}: s / peak MiB" for s in scales) + \
        " | µs per customer |"
    lines = [head, "|---|" + "---:|" * (len(scales) + 1)]
    for name in names:
        cells, per = [], []
        for scale in scales:
            by = {s["stage"]: s for s in scale["stages"] if s.get("ok")}
            if name in by:
                s = by[name]
                cells.append(f"{s['wall_seconds']:.1f} / {_mib(s['process_peak_rss'])}")
                per.append(f"{s['wall_seconds'] / scale['customers'] * 1e6:.0f}")
            else:
                cells.append("–")
                per.append("–")
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " → ".join(per) + " |")
    totals, per = [], []
    for scale in scales:
        sm = scale["summary"]
        if sm.get("complete"):
            totals.append(f"**{sm['daily_seconds']:.0f} / {_mib(sm['daily_peak_rss'])}**")
            per.append(f"{sm['daily_seconds'] / scale['customers'] * 1e6:.0f}")
        else:
            totals.append("–")
            per.append("–")
    lines.append("| **daily DAG** | " + " | ".join(totals) + " | " + " → ".join(per) + " |")
    return "\n".join(lines)


def before_after_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Process seconds and peak MiB of each stage in two runs, at their largest common scale."""
    def by_scale(results: dict[str, Any]) -> dict[int, dict[str, Any]]:
        return {s["customers"]: s for s in results["scales"]}

    old, new = by_scale(before), by_scale(after)
    scale = max(set(old) & set(new))
    n = f"{scale:,}"
    lines = [f"| stage ({n} customers) | before: s / peak MiB | after: s / peak MiB | faster |",
             "|---|---:|---:|---:|"]
    was = {s["stage"]: s for s in old[scale]["stages"] if s.get("ok")}
    for s in new[scale]["stages"]:
        if not s.get("ok") or s["stage"] not in was:
            continue
        b = was[s["stage"]]
        lines.append(f"| {s['stage']} | {b['wall_seconds']:.1f} / {_mib(b['process_peak_rss'])} "
                     f"| {s['wall_seconds']:.1f} / {_mib(s['process_peak_rss'])} | "
                     f"{b['wall_seconds'] / s['wall_seconds']:.1f}× |")
    sb, sa = old[scale]["summary"], new[scale]["summary"]
    if sb.get("complete") and sa.get("complete"):
        lines.append(f"| **daily DAG** | **{sb['daily_seconds']:.0f} / "
                     f"{_mib(sb['daily_peak_rss'])}** | **{sa['daily_seconds']:.0f} / "
                     f"{_mib(sa['daily_peak_rss'])}** | "
                     f"{sb['daily_seconds'] / sa['daily_seconds']:.1f}× |")
    return "\n".join(lines)


def dag_table(results: dict[str, Any]) -> str:
    """Per scale: sum of tasks vs critical path, largest task vs parallel peak (daily and
    monthly), and the extract's process tree (with its worker)."""
    lines = ["| customers | DAG | sum of tasks s | critical path s (chain) | largest task MiB | "
             "parallel peak MiB (tasks together) | load 1-min |",
             "|---:|---|---:|---|---:|---|---|"]
    for scale in results["scales"]:
        v = scale["summary"]
        if "daily_critical_path_seconds" not in v:
            continue
        n = f"{scale['customers']:,}"
        lines.append(f"| {n} | daily | {v['daily_seconds']:.1f} | "
                     f"{v['daily_critical_path_seconds']:.1f} "
                     f"({' → '.join(v['daily_critical_path'])}) | {_mib(v['daily_peak_rss'])} | "
                     f"{_mib(v['daily_peak_rss_parallel'])} "
                     f"({' + '.join(v['daily_parallel_tasks'])}) | {load_span(v)} |")
        if "monthly_critical_path_seconds" in v:
            together = v["monthly_parallel_tasks"]
            named = " + ".join(together) if len(together) < 4 else f"{len(together)} renders"
            lines.append(f"| {n} | monthly | {v['monthly_seconds']:.1f} | "
                         f"{v['monthly_critical_path_seconds']:.1f} "
                         f"({' → '.join(v['monthly_critical_path'])}) | "
                         f"{_mib(v['monthly_peak_rss'])} | "
                         f"{_mib(v['monthly_peak_rss_parallel'])} ({named}) | |")
    extra = []
    for scale in results["scales"]:
        e = next((s for s in scale["stages"] if s["stage"] == "extract" and s.get("ok")), None)
        if e and e.get("details", {}).get("worker_peak_rss") and "task_peak_rss" in e:
            extra.append(f"- extract at {scale['customers']:,}: process tree "
                         f"{_mib(e['task_peak_rss'])} MiB sampled; stage process "
                         f"{_mib(e.get('own_peak_rss'))} + worker "
                         f"{_mib(e['details']['worker_peak_rss'])} MiB = "
                         f"{_mib(e['peak_rss_with_worker_bound'])} MiB bound")
    return "\n".join(lines + (["", *extra] if extra else []))


def fair_table(results: dict[str, Any]) -> str:
    fair = results.get("deadlines_fair")
    if not fair or "mismatches" not in fair:
        return ""
    lines = [f"SLA deadlines as whole processes, {fair['tickets']:,} tickets "
             f"({fair['engine']['wall_seconds']['n']} runs each, alternating; medians "
             "[min-max]); mismatches: " + f"{fair['mismatches']}", "",
             "| process | wall s | CPU s | policy + calendar s | deadlines s | peak MiB | "
             "load 1-min |", "|---|---:|---:|---:|---:|---:|---|"]
    for label, key in (("Revisit `BusinessCalendar`", "engine"),
                       ("`businesstimedelta`", "btd")):
        x = fair[key]
        w, c = x["wall_seconds"], x["cpu_seconds"]
        lines.append(f"| {label} | {w['median']:.2f} [{w['min']:.2f}-{w['max']:.2f}] | "
                     f"{c['median']:.2f} | {x['calendar_seconds'].get('median', 0):.2f} | "
                     f"{x['deadline_seconds'].get('median', 0):.3f} | {_mib(x['peak_rss'])} | "
                     + ", ".join(f"{a:.2f}→{b:.2f}" for a, b in x["loadavg"]) + " |")
    lines.append(f"| **ratio** | **{fair['wall_ratio']}×** | **{fair['cpu_ratio']}×** | | | | |")
    return "\n".join(lines)


def ab_markdown(results: dict[str, Any]) -> str:
    ab = results.get("ab")
    if not ab:
        return ""
    title = (f"A = `{ab['rev']}` ({ab['commit'][:10]}), B = working tree" if ab.get("commit")
             else "working tree only")
    lines = [f"A/B, {title}, {ab['repeat']} runs per side ({ab['order']}): process seconds "
             "median [min-max]", "",
             "| customers | stage | A s | B s | B/A | A CPU s | B CPU s | A MiB | B MiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(x: dict[str, Any], fmt: str = ".2f") -> str:
        return (f"{x['median']:{fmt}} [{x['min']:{fmt}}-{x['max']:{fmt}}]"
                if x.get("n") else "–")

    for scale in ab["scales"]:
        a, b = scale["A"]["stages"], scale["B"]["stages"]
        for name in dict.fromkeys([*a, *b]):
            x, y = a.get(name, {}), b.get(name, {})
            xw, yw = x.get("wall_seconds", {}), y.get("wall_seconds", {})
            ratio = f"{yw['median'] / xw['median']:.2f}" if xw.get("median") and yw.get("n") \
                else ""
            mib = {k: (f"{d['task_peak_rss']['median'] / MIB:,.0f}"
                       if d.get("task_peak_rss", {}).get("n") else "–") for k, d in
                   (("a", x), ("b", y))}
            cpu = {k: (f"{d['cpu_seconds']['median']:.1f}" if d.get("cpu_seconds", {}).get("n")
                       else "–") for k, d in (("a", x), ("b", y))}
            lines.append(f"| {scale['customers']:,} | {name} | {cell(xw)} | {cell(yw)} | "
                         f"{ratio} | {cpu['a']} | {cpu['b']} | {mib['a']} | {mib['b']} |")
        ta, tb = scale["A"]["totals"], scale["B"]["totals"]
        for label, key in (("daily sum of tasks", "daily_seconds"),
                           ("daily critical path", "daily_critical_path_seconds")):
            lines.append(f"| {scale['customers']:,} | **{label}** | {cell(ta[key], '.1f')} | "
                         f"{cell(tb[key], '.1f')} | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    before = None
    if "--before" in args:
        at = args.index("--before")
        before = json.loads(Path(args[at + 1]).read_text(encoding="utf-8"))
        del args[at:at + 2]
    path = Path(args[0]) if args else DEFAULT_RESULTS / "latest.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    if before is not None:
        print(before_after_table(before, results))
        print()
    print(summary_table(results))
    print()
    print(stages_table(results))
    for extra in (dag_table(results), fair_table(results), ab_markdown(results)):
        if extra:
            print()
            print(extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
