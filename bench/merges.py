"""The daily merge tasks (call_lists, sla, publish) at k times a measured run's size, without a
CRM of that size: `python -m bench.merges`.

    .venv/bin/python -m bench.merges [--source bench/work/out_1000000] [--scale 1000000]
        [--day 2026-11-01] [--copies 1,10] [--work bench/work/merge10m]

The merges read the shards' outputs only (handoff/D/obligation_shards, history_shards,
sla_shards), the clean customers, tickets and agents they name, the quality report of D and
the snapshot's manifest. `replicate` builds, under <work>/out_<N>/ (N = scale x k), a day
partition whose shard outputs are the source run's shard files k times over: every customer,
ticket, order and visit id of copy r gets the suffix "-r<r>" (agent and department ids are kept:
each department's pool holds k times the customers), and the rows are split into the shards of
the plan the source's departments get with k times their customers (revisit.rules.shards:
plan_shards, then ShardPlan.shard_of on the suffixed customer ids), so the merges read as many
files, of the sizes, as a real run of k times the customers would give them. Each file keeps
its sort key (customer_id or ticket_id; a stable sort of the copies) and row-group size. The
clean customers and tickets are replicated the same way; agents and departments are copied.

Why a suffix, not a prefix: the ids are fixed-width ("T000000009"), so "T000000009-r3" keeps
the source order, and the k copies of an id sort next to each other, as the ids of a larger
CRM interleave.

Then each merge task runs as the bench runs it: bench.run.run_stage -> `python -m
bench.stages CONFIG` in its own process (wall, CPU seconds and peak RSS from wait4 and the
process-tree sampler), call_lists, sla, then publish (which reads what the first two wrote),
into a fresh results database. The results: <work>/merges.json and
bench/results/merges_<largest N>.json (what bench.projection --merges reads), and a Markdown
table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import ROOT
from bench.run import MIB, run_stage

STAGES = ("call_lists", "sla", "publish")
ID_COLUMNS = ("customer_id", "ticket_id", "order_id", "visit_id")  # made distinct per copy
SHARD_FILES = {  # handoff/D/<folder>/<shard>.parquet: the key each shard file is sorted by
    "obligation_shards": "customer_id",   # visit_obligations' order (merge_obligations)
    "history_shards": "customer_id",
    "sla_shards": "ticket_id",            # merged_frames(paths, "ticket_id", ...)
}
CLEAN_REPLICATED = ("customers", "tickets")  # the clean tables the merges read by id
CLEAN_COPIED = ("agents", "departments")     # kept as they are (no ids to make distinct)


def suffixed(table: pa.Table, copy: int) -> pa.Table:
    """`table` with "-r<copy>" after every value of its ID_COLUMNS (nulls stay null)."""
    tail = f"-r{copy}"
    for i, field in enumerate(table.schema):
        if field.name in ID_COLUMNS:
            column = table.column(i)
            if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
                continue  # a column of nulls only (null type): nothing to suffix
            joined = pc.binary_join_element_wise(column, pa.scalar(tail, field.type),
                                                pa.scalar("", field.type))
            table = table.set_column(i, field, joined)
    return table


def is_sorted(table: pa.Table, key: str) -> bool:
    """Whether `key` never decreases from row to row (as merged_frames requires)."""
    values = table.column(key)
    if len(values) < 2:
        return True
    before, after = values.slice(0, len(values) - 1), values.slice(1)
    return bool(pc.all(pc.less_equal(before, after)).as_py() is not False)


def _write_copies(source: Path, target: Path, copies: int) -> int:
    """`source` k times into one file `target` (copy after copy, row group by row group, the
    source's row-group size); returns the rows written."""
    file = pq.ParquetFile(source)
    rows = 0
    with pq.ParquetWriter(target, file.schema_arrow) as writer:
        for copy in range(copies):
            for group in range(file.metadata.num_row_groups):
                part = suffixed(file.read_row_group(group), copy)
                writer.write_table(part)
                rows += part.num_rows
    return rows


def _write(table: pa.Table, target: Path, like: pq.ParquetFile) -> None:
    """`table` to `target` in row groups like the source file's (a file written in 10,000-row
    groups for the merge keeps them; a file of one group stays one)."""
    meta = like.metadata
    group = meta.row_group(0).num_rows if meta.num_row_groups > 1 else None
    pq.write_table(table, target, row_group_size=group)


def _copies_of(path: Path, copies: int, department_of: pd.Series) -> pa.Table:
    """The rows of one source shard file `copies` times (ids suffixed per copy), with their
    department in a column "__department" (the file's own column, else the customer's)."""
    table = pq.read_table(path)
    if "department_id" in table.schema.names:
        departments = table.column("department_id")
    else:
        departments = pa.array(table.column("customer_id").to_pandas().map(department_of),
                               pa.large_string())
    table = table.append_column("__department", departments)
    return pa.concat_tables([suffixed(table, copy) for copy in range(copies)])


def replicate(source: Path, target: Path, day: str, copies: int,
              max_per_shard: int | None = None) -> dict[str, Any]:
    """Under `target` (an output root), day partition `day` made of the source root's shard
    outputs `copies` times (see the module's docstring), split by the plan of the source's
    departments with `copies` times their customers (revisit.rules.shards.plan_shards with
    `max_per_shard`, default the source plan's). Returns the shard ids and row counts."""
    from revisit.rules.shards import ShardPlan, plan_shards

    shutil.rmtree(target, ignore_errors=True)
    src_handoff = source / "handoff" / day
    handoff = target / "handoff" / day
    info = json.loads((src_handoff / "shard_rows" / "plan.json").read_text())
    before = ShardPlan.of_dict(info["departments"])
    counts = pd.Series(info["customers_per_department"]) * copies
    plan = plan_shards(counts, max_per_shard or info["max_customers_per_shard"])
    customers = pd.read_parquet(source / "clean" / day / "customers.parquet",
                                columns=["customer_id", "department_id"])
    department_of = pd.Series(customers["department_id"].to_numpy(),
                              index=customers["customer_id"].to_numpy())
    del customers
    groups: dict[str, list[str]] = {}  # the new plan's shard stem -> its departments
    for department, (stem, _) in sorted(plan.departments.items()):
        groups.setdefault(stem, []).append(department)
    rows: dict[str, int] = {}
    for folder, key in SHARD_FILES.items():
        (handoff / folder).mkdir(parents=True)
        for stem, departments in groups.items():
            files = sorted({shard for d in departments for shard in before.shard_ids
                            if d in before.departments_of(shard)})
            parts, like = [], None
            for shard in files:
                path = src_handoff / folder / f"{shard}.parquet"
                like = like or pq.ParquetFile(path)
                part = _copies_of(path, copies, department_of)
                keep = pc.is_in(part.column("__department"),
                                pa.array(departments, pa.large_string()))
                parts.append(part.filter(keep))
            table = pa.concat_tables(parts)
            del parts
            # a key's rows come from one copy of one file, in a row: a stable sort keeps them
            table = table.take(pc.sort_indices(table, [(key, "ascending")]))
            shard_of = plan.shard_of(table.column("__department").to_pandas(),
                                     table.column("customer_id").to_pandas()).to_numpy(str)
            table = table.drop_columns(["__department"])
            mapped = [s for s in plan.shard_ids if s.split(".")[0] == stem]
            if set(shard_of) - set(mapped):
                raise ValueError(f"rows outside the shards of {stem}: {set(shard_of)}")
            for shard in mapped:  # every shard's file, an empty one too (as a shard writes)
                mine = table.filter(pa.array(shard_of == shard))
                if not is_sorted(mine, key):
                    raise ValueError(f"{folder}/{shard} is not sorted by {key}")
                _write(mine, handoff / folder / f"{shard}.parquet", like)
                rows[folder] = rows.get(folder, 0) + mine.num_rows
            del table
    (handoff / "shard_rows").mkdir(parents=True)
    (handoff / "shard_rows" / "plan.json").write_text(json.dumps(
        {"max_customers_per_shard": max_per_shard or info["max_customers_per_shard"],
         "shard_ids": plan.shard_ids, "departments": plan.as_dict(),
         "customers_per_department": {d: int(n) for d, n in counts.items()}}, indent=1))
    clean = target / "clean" / day
    clean.mkdir(parents=True)
    for name in CLEAN_REPLICATED:
        rows[name] = _write_copies(source / "clean" / day / f"{name}.parquet",
                                   clean / f"{name}.parquet", copies)
    for name in CLEAN_COPIED:
        shutil.copy2(source / "clean" / day / f"{name}.parquet", clean / f"{name}.parquet")
    shutil.copy2(source / "clean" / day / "run.json", clean / "run.json")
    # The quality report sla amends (its unknown section) and the quarantine publish reads;
    # the snapshot's manifest (every partition's run.json names its cut-off).
    shutil.copytree(source / "quality" / day, target / "quality" / day)
    (target / "snapshots" / day).mkdir(parents=True)
    shutil.copy2(source / "snapshots" / day / "snapshot.json",
                 target / "snapshots" / day / "snapshot.json")
    quarantine = pq.read_metadata(target / "quality" / day / "quarantine.parquet").num_rows
    return {"copies": copies, "shards": plan.shard_ids, "rows": rows,
            "quarantine_rows": quarantine}


def measure(work: Path, source: Path, scale: int, day: str, month: str, copies: int,
            stages: tuple[str, ...] = STAGES) -> dict[str, Any]:
    """Replicate `copies` times, then run each merge stage in its own process (bench.run's
    run_stage), one after another."""
    customers = scale * copies
    out = work / f"out_{customers}"
    # in a process of its own: a stage process starts as a fork of this one, and wait4's peak
    # of it counts the pages the fork shared, so this process must not hold the replicas
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        built = pool.apply(replicate, (source, out, day, copies))
    opts = SimpleNamespace(work=work, day=day, month=month, compare_tickets=0, source=None)
    reports = {}
    for name in stages:
        report = run_stage(name, customers, opts, out, source / "none.sqlite",
                           shards=built["shards"] if name in ("call_lists", "sla") else None)
        reports[name] = report
        print(f"  x{copies} {name:<11} " + (
            f"{report['wall_seconds']:8.2f} s  CPU {report['cpu_seconds']:8.2f} s  peak "
            f"{report['task_peak_rss'] / MIB:7,.0f} MiB  rows {report.get('rows', 0):,}  load "
            f"{report['loadavg_start'][0]} -> {report['loadavg_end'][0]}"
            if report.get("ok") else f"FAILED: {report.get('error')}"), flush=True)
        if not report.get("ok"):
            break
    return {"copies": copies, "customers": customers, "built": {**built, "shards":
            len(built["shards"])}, "stages": reports}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| merge task | " + " | ".join(f"{r['copies']}x ({r['customers']:,})"
                                             for r in results) + " |",
             "|---|" + "---:|" * len(results)]
    for name in STAGES:
        cells = []
        for r in results:
            s = r["stages"].get(name)
            cells.append("not run" if s is None else "failed" if not s.get("ok") else
                         f"{s['wall_seconds']:,.1f} s / {s['cpu_seconds']:,.1f} CPU s / "
                         f"{s['task_peak_rss'] / MIB:,.0f} MiB; {s['rows']:,} rows "
                         f"[load {s['loadavg_start'][0]}-{s['loadavg_end'][0]}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merges")
    parser.add_argument("--source", type=Path, default=ROOT / "bench/work/out_1000000")
    parser.add_argument("--scale", type=int, default=1_000_000,
                        help="the source run's customers (names the partitions)")
    parser.add_argument("--day", default="2026-11-01")
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--copies", default="1,10")
    parser.add_argument("--work", type=Path, default=ROOT / "bench/work/merge10m")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results",
                        help="where merges_<largest N>.json is written (bench.projection --merges)")
    opts = parser.parse_args(argv)
    opts.work.mkdir(parents=True, exist_ok=True)
    results = []
    for copies in (int(c) for c in opts.copies.split(",")):
        results.append(measure(opts.work, opts.source, opts.scale, opts.day, opts.month, copies,
                               tuple(opts.stages.split(","))))
        text = json.dumps({"source": str(opts.source), "day": opts.day, "runs": results},
                          indent=1, default=str)
        (opts.work / "merges.json").write_text(text)
    target = opts.results / f"merges_{max(r['customers'] for r in results)}.json"
    target.write_text(text)
    print(table(results))
    print(f"\nwrote {opts.work / 'merges.json'} and {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
