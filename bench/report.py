"""Markdown tables of a benchmark result (for bench/README.md):

    .venv/bin/python -m bench.report [bench/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.run import DEFAULT_RESULTS

MIB = 1024 ** 2


def _mib(value: int | None) -> str:
    return f"{value / MIB:,.0f}" if value else ""


def stages_table(results: dict[str, Any]) -> str:
    lines = ["| customers | stage / step | seconds | process s | CPU s | rows | rows/s | "
             "peak MiB |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for scale in results["scales"]:
        n = f"{scale['customers']:,}"
        for s in scale["stages"]:
            if not s.get("ok"):
                lines.append(f"| {n} | {s['stage']} | {s.get('error', 'failed')} | | | | | |")
                continue
            lines.append(
                f"| {n} | **{s['stage']}** | {s['seconds']:.1f} | {s['wall_seconds']:.1f} | "
                f"{s.get('cpu_seconds', 0):.1f} | {s['rows']:,} | {s['rows_per_second'] or 0:,} | "
                f"{_mib(s['process_peak_rss'])} |")
            for step, v in s.get("steps", {}).items():
                rate = f"{round(v['rows'] / v['seconds']):,}" if v["rows"] and v["seconds"] else ""
                rows = f"{v['rows']:,}" if v["rows"] else ""
                lines.append(f"| | &nbsp;&nbsp;{step} | {v['seconds']:.1f} | | | {rows} | "
                             f"{rate} | {_mib(v['peak_rss'])} |")
        sm = scale["summary"]
        if sm.get("complete"):
            lines.append(f"| {n} | **daily DAG total** | {sm['daily_work_seconds']:.1f} | "
                         f"{sm['daily_seconds']:.1f} | | | | {_mib(sm['daily_peak_rss'])} |")
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_RESULTS / "latest.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    print(summary_table(results))
    print()
    print(stages_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
