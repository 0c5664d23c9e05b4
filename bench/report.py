"""Markdown tables of a benchmark result (for bench/README.md):

    .venv/bin/python -m bench.report [bench/results/latest.json] [--before EARLIER.json]

With --before, first a table of each stage before and after at the largest scale both hold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.run import DEFAULT_RESULTS, step_rate, table_rows

MIB = 1024 ** 2


def _mib(value: int | None) -> str:
    return f"{value / MIB:,.0f}" if value else ""


def stages_table(results: dict[str, Any]) -> str:
    lines = ["| customers | stage / step | seconds | process s | CPU s | rows | rows/s | "
             "peak MiB |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for customers, kind, name, v in table_rows(results):
        n = f"{customers:,}"
        if kind == "failed":
            lines.append(f"| {n} | {name} | {v.get('error', 'failed')} | | | | | |")
        elif kind == "stage":
            lines.append(
                f"| {n} | **{name}** | {v['seconds']:.1f} | {v['wall_seconds']:.1f} | "
                f"{v.get('cpu_seconds', 0):.1f} | {v['rows']:,} | {v['rows_per_second'] or 0:,} | "
                f"{_mib(v['process_peak_rss'])} |")
        elif kind == "step":
            rate = step_rate(v)
            rows = f"{v['rows']:,}" if v["rows"] else ""
            lines.append(f"| | &nbsp;&nbsp;{name} | {v['seconds']:.1f} | | | {rows} | "
                         f"{'' if rate is None else f'{rate:,}'} | {_mib(v['peak_rss'])} |")
        elif kind == "total":
            lines.append(f"| {n} | **daily DAG total** | {v['daily_work_seconds']:.1f} | "
                         f"{v['daily_seconds']:.1f} | | | | {_mib(v['daily_peak_rss'])} |")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
