"""One benchmark stage, run in a fresh process: `python -m bench.stages STAGE --config FILE`.

Each daily stage calls exactly what the revisit_daily DAG's task calls (revisit.stages.daily /
revisit.io.extract, via the same arguments revisit.bridge.tasks passes), so the figures are
the DAG's work without Airflow's own overhead. The stage runs in its own process, as an Airflow task
does, and data passes between stages through the same partitions on disk.

Inside a stage, "probes" wrap the domain functions the task calls (visit rules, call-list
build, SLA engine, file writers, results upsert, per-table extract ...) to split its time and
peak memory into steps; the wrappers only time and measure, they never change arguments or
results. A probe resets the kernel's peak-RSS mark before the step and reads it after, so a
step's peak is the process's real peak during that step (data already loaded included).

The config file (JSON, written by bench.run) holds: stage, crm (SQLite path), out (output root),
day (call date D), month (report month M), results_url, tickets (comparison size), result
(where to write this stage's JSON), profile (optional pyinstrument output prefix).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench  # noqa: F401  (puts plugins/ on sys.path)
from bench.memory import current_rss, peak_rss, reset_peak


# ================================================================= probes
@dataclass
class Probes:
    """Time and peak RSS of named steps inside one stage (not nested: an inner call of a
    probed function inside another probed step is accounted to the outer step)."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak: int = 0  # the stage's peak, folded in before every reset
    depth: int = 0
    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)

    def wrap(self, owner: Any, attr: str, label: str | Callable[..., str],
             rows: Callable[..., int] | None = None,
             out_rows: Callable[[Any], int] | None = None) -> None:
        original = getattr(owner, attr)
        probes = self

        def probed(*args: Any, **kwargs: Any) -> Any:
            if probes.depth:
                return original(*args, **kwargs)
            name = label(*args, **kwargs) if callable(label) else label
            probes.peak = max(probes.peak, peak_rss())
            reset_peak()
            probes.depth += 1
            began = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                probes.depth -= 1
                seconds = time.perf_counter() - began
                top = peak_rss()
                probes.peak = max(probes.peak, top)
                step = probes.steps.setdefault(
                    name, {"seconds": 0.0, "calls": 0, "peak_rss": 0, "rows": 0, "out_rows": 0})
                step["seconds"] += seconds
                step["calls"] += 1
                step["peak_rss"] = max(step["peak_rss"], top)
            if rows is not None:
                step["rows"] += int(rows(*args, **kwargs))
            if out_rows is not None:
                step["out_rows"] += int(out_rows(result))
            return result

        probed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, attr, probed)
        self._undo.append((owner, attr, original))

    def stage_peak(self) -> int:
        return max(self.peak, peak_rss())


def _frames_rows(frames: dict) -> int:
    return sum(len(f) for f in frames.values())


# ================================================================= context of a run
@dataclass(frozen=True)
class Config:
    stage: str
    crm: str
    out: str
    day: str
    month: str
    results_url: str
    tickets: int
    result: str
    profile: str | None = None
    work: str | None = None
    shard: str | None = None  # a mapped stage's shard (DESIGN.md scale-out)
    shards: list[str] | None = None  # a merge stage's shards; None: the whole CRM in one task

    @property
    def crm_url(self) -> str:
        return f"sqlite:///{Path(self.crm).resolve()}"

    @property
    def call_date(self) -> dt.date:
        return dt.date.fromisoformat(self.day)


@dataclass
class Stage:
    """A benchmark stage: `prepare` loads what is not the stage's work (policy, calendar);
    `probe` installs the step probes; `run` does the work and returns (rows, details)."""

    name: str
    kind: str  # daily | monthly | compare
    run: Callable[[Config, dict, Probes], tuple[int, dict]]
    rows_label: str
    requires: tuple[str, ...] = ()  # modules that must import for the stage to exist
    describe: str = ""
    mapped: bool = False  # one process per shard, as the DAG's mapped tasks


def _policy_and_calendar(cfg: Config) -> dict:
    from revisit.config.policy import load_policy
    from revisit.rules.calendar import BusinessCalendar

    policy = load_policy()
    return {"policy": policy, "calendar": BusinessCalendar(policy.calendar)}


def _parts(cfg: Config):
    from revisit.stages.partitions import DayPartitions

    return DayPartitions(Path(cfg.out), cfg.call_date)


def _month_parts(cfg: Config):
    from revisit.stages.partitions import MonthPartitions

    return MonthPartitions(Path(cfg.out), cfg.month)


# ================================================================= daily stages (the DAG's tasks)
def run_extract(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.extract: tasks.extract_daily -> extract.extract_snapshot."""
    return _extract(cfg.crm_url, cfg.call_date, _parts(cfg).snapshot, ctx, probes)


def _extract(url: str, cutoff: dt.date, target: Path, ctx: dict, probes: Probes
             ) -> tuple[int, dict]:
    """extract_snapshot with a step per table read in this process, and one for waiting on the
    worker process that reads the largest table meanwhile (its peak memory is reported apart:
    it is another process)."""
    import resource

    import revisit.io.extract as extract

    policy = ctx["policy"]
    probes.wrap(extract, "_stream_table", lambda engine, table, *a, **k: f"read {table.name}")
    probes.wrap(extract, "_finish_worker",
                f"wait for the worker ({extract.LARGEST_TABLE})")
    counts = extract.extract_snapshot(url, cutoff, target, business_tz=policy.calendar.timezone,
                                      source_tz=policy.source_tz)
    for name, count in counts.items():
        step = probes.steps.get(f"read {name}") or (
            probes.steps.get(f"wait for the worker ({name})"))
        if step is not None:
            step["rows"] = count
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return sum(counts.values()), {"rows": counts, "worker_peak_rss": worker_peak}


def run_quality(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.quality_gate: tasks.quality_gate -> daily.run_quality."""
    import revisit.quality.gate as quality
    import revisit.stages.daily as daily

    # The gate reads the snapshot table by table (extract.SnapshotTables) inside its checks:
    # reading is part of this step, and rows are counted from its summary afterwards.
    probes.wrap(quality, "run_quality_gate", "read + checks (GX)",
                out_rows=lambda result: int(result.summary["rows"].sum()))
    probes.wrap(quality, "write_quality_outputs", "quality files",
                rows=lambda result, *a, **k: len(result.quarantine))
    summary = daily.run_quality(_parts(cfg), ctx["policy"])
    step = probes.steps["read + checks (GX)"]
    step["rows"] = step["out_rows"]
    return step["rows"], summary


def _files_probes(probes: Probes) -> None:
    import revisit.io.spreadsheet as spreadsheet
    import revisit.stages.daily as daily

    probes.wrap(spreadsheet, "write_csv", "files (CSV)", rows=lambda frame, *a, **k: len(frame))
    probes.wrap(spreadsheet, "write_xlsx", "files (XLSX)", rows=lambda frame, *a, **k: len(frame))
    probes.wrap(daily, "_xlsx_ready", "files (XLSX)")


def run_shards(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.shards: tasks.shards -> the gate's plan.json (what the mapped tasks map)."""
    from revisit.stages.shard_rows import plan_info

    info = plan_info(_parts(cfg).handoff)
    return len(info["shard_ids"]), {
        "shard_ids": info["shard_ids"],
        "customers_per_department": info.get("customers_per_department", {})}


def run_obligations_shard(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.obligations_shard[s]: tasks.obligations_shard -> daily.run_obligations_shard
    (one shard's customers: visit rules, listable obligations, history)."""
    import revisit.rules.calllist as calllist
    import revisit.rules.visits as visits
    import revisit.stages.daily as daily

    probes.wrap(daily, "read_clean", "read clean", out_rows=_frames_rows)
    probes.wrap(visits, "visit_obligations", "visit rules", out_rows=len)
    probes.wrap(calllist, "customer_history", "history")
    summary = daily.run_obligations_shard(_parts(cfg), ctx["policy"], ctx["calendar"], cfg.shard)
    return summary["customers"], summary


def run_sla_shard(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.sla_shard[s]: tasks.sla_shard -> daily.run_sla_shard."""
    import revisit.rules.sla as sla
    import revisit.stages.daily as daily

    probes.wrap(daily, "read_clean", "read clean", out_rows=_frames_rows)
    probes.wrap(sla, "sla_status", "SLA engine",
                rows=lambda tickets, *a, **k: len(tickets), out_rows=len)
    summary = daily.run_sla_shard(_parts(cfg), ctx["policy"], ctx["calendar"], cfg.shard)
    return summary["tickets"], summary


def run_call_lists(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.call_lists: tasks.call_lists -> daily.run_call_lists: the merge of the
    shards' obligations (cfg.shards), or everything in one task (call_lists_whole)."""
    import revisit.rules.calllist as calllist
    import revisit.rules.visits as visits
    import revisit.stages.daily as daily

    probes.wrap(daily, "read_clean", "read clean", out_rows=_frames_rows)
    probes.wrap(daily, "read_handoff", "read shards", out_rows=len)
    probes.wrap(visits, "visit_obligations", "visit rules",
                rows=lambda frames, *a, **k: sum(len(frames[t]) for t in
                                                 ("customers", "orders", "tickets", "visits")),
                out_rows=len)
    probes.wrap(calllist, "build_call_list", "call list build",
                rows=lambda obligations, *a, **k: len(obligations),
                out_rows=lambda result: len(result.lists))
    _files_probes(probes)
    summary = daily.run_call_lists(_parts(cfg), ctx["policy"], ctx["calendar"], cfg.shards)
    whole = probes.steps.get("visit rules")  # None: a merge, the shards ran the rules
    built = probes.steps["call list build"]
    summary["obligations"] = whole["out_rows"] if whole else built["rows"]
    return (whole or built)["rows"], summary


def run_sla(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.sla: tasks.sla -> daily.run_sla (the merge of the shards' status, or the
    SLA engine over every ticket in one task: sla_whole; digests, CSVs)."""
    import revisit.rules.sla as sla
    import revisit.stages.daily as daily

    probes.wrap(daily, "read_clean", "read clean", out_rows=_frames_rows)
    probes.wrap(sla, "sla_status", "SLA engine",
                rows=lambda tickets, *a, **k: len(tickets), out_rows=len)
    probes.wrap(sla, "breach_digest", "breach digest",
                rows=lambda status, *a, **k: len(status))
    _files_probes(probes)
    summary = daily.run_sla(_parts(cfg), ctx["policy"], ctx["calendar"], cfg.shards)
    summary.pop("digest_departments", None)
    return summary["rows"], summary


def run_publish(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_daily.publish: tasks.publish -> daily.publish_results."""
    import revisit.io.results as results
    import revisit.stages.daily as daily

    probes.wrap(results, "replace_partition",
                lambda engine, name, *a, **k: f"upsert {name}", out_rows=int)
    written = daily.publish_results(_parts(cfg), ctx["policy"], cfg.results_url)
    return sum(written.values()), {"rows": written}


# ================================================================= monthly stages (hook)
def run_monthly_extract(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.extract: tasks.extract_monthly (snapshot as of the 1st after M): the
    daily snapshot of that day, linked, when the bench's call date is that day and its
    snapshot saw the same instant (as the DAG does), else extracted."""
    from revisit.io.extract import same_cutoff
    from revisit.stages.partitions import DayPartitions

    parts, policy = _month_parts(cfg), ctx["policy"]
    day = DayPartitions(parts.root, parts.cutoff_date)
    if same_cutoff(day.snapshot, parts.cutoff_date, policy.calendar.timezone,
                   policy.source_tz):
        import revisit.io.extract as extract

        probes.wrap(extract, "copy_snapshot", f"link the daily snapshot of {day.period}")
        counts = extract.copy_snapshot(day.snapshot, parts.snapshot)
        return sum(counts.values()), {"rows": counts, "from": day.period}
    return _extract(cfg.crm_url, parts.cutoff_date, parts.snapshot, ctx, probes)


def run_monthly_gate(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.quality_gate: tasks.monthly_gate -> monthly.gate_month (the daily gate
    of M's cut-off day when it is M's own, else the gate over M's snapshot)."""
    import revisit.stages.daily as daily
    import revisit.stages.monthly as monthly

    probes.wrap(daily, "run_quality", "quality gate (chunked)")
    probes.wrap(monthly, "reused_gate", "the daily gate of the 1st, when it is M's")
    summary = monthly.gate_month(_month_parts(cfg), ctx["policy"])
    return sum(summary["clean_rows"].values()), {"reused": summary.get("reused")}


def run_monthly_shards(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.shards: M's plan.json (what kpis_shard maps)."""
    from revisit.stages.shard_rows import plan_info

    info = plan_info(_month_parts(cfg).handoff)
    return len(info["shard_ids"]), {"shard_ids": info["shard_ids"]}


def run_kpis_shard(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.kpis_shard[s]: tasks.kpis_shard -> monthly.run_kpis_shard (one shard's
    share of M's KPIs, and of its quarter's when M ends one)."""
    import revisit.rules.kpi_shares as shares
    import revisit.stages.daily as daily

    probes.wrap(daily, "read_clean", "read clean rows", out_rows=_frames_rows)
    probes.wrap(daily, "read_shard_rows", "read shard rows", out_rows=_frames_rows)
    probes.wrap(shares, "kpi_share", "KPI share")
    import revisit.stages.monthly as monthly

    summary = monthly.run_kpis_shard(_month_parts(cfg), ctx["policy"], cfg.shard)
    return summary["customers"], {}


def run_kpis(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.kpis: tasks.monthly_kpis -> monthly.compute_kpis, the merge of the
    shards' shares (cfg.shards); without shards (kpis_whole) the gate, every share and the
    merge in one process."""
    import revisit.delivery.report as report
    import revisit.stages.daily as daily
    import revisit.stages.monthly as monthly

    probes.wrap(daily, "run_quality", "quality gate (chunked)")
    probes.wrap(monthly, "run_kpis_shard", "KPI shares (every shard)")
    probes.wrap(monthly, "merged_kpis", "merge of the shares")
    probes.wrap(monthly.RawRows, "read", "quarantined rows' snapshot rows")
    probes.wrap(report, "report_data", "report data")
    summary = monthly.compute_kpis(_month_parts(cfg), ctx["policy"], cfg.results_url,
                                   cfg.shards)
    return summary["shards"], {"departments": len(summary["departments"])}


def run_render(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """revisit_monthly.render (one mapped task per department, here one after another):
    monthly.render_department -> report.render_report (Jinja2 HTML -> WeasyPrint PDF)."""
    import revisit.delivery.report as report
    import revisit.stages.monthly as monthly

    probes.wrap(report, "render_html", "HTML (Jinja2)")
    probes.wrap(report, "render_pdf", "PDF (WeasyPrint)")
    parts = _month_parts(cfg)
    departments = sorted(p.stem for p in parts.data.glob("*.json"))
    seconds = {}
    for department_id in departments:
        seconds[department_id] = monthly.render_department(parts, ctx["policy"],
                                                           department_id)["seconds"]
    return len(departments), {"seconds_per_department": seconds}


# ================================================================= comparisons
def _comparison_tickets(cfg: Config, policy) -> tuple[Any, Any]:
    """The first `tickets` tickets (by id) of the snapshot that have a business_hours
    first_response target: (created_at naive local, hours)."""
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(_parts(cfg).snapshot / "tickets.parquet",
                            columns=["ticket_id", "priority", "created_at"])
    hours = {}
    for prio, targets in policy.sla.targets.items():
        target = targets.get("first_response")
        if target is not None and target.unit == "business_hours":
            hours[prio] = float(target.amount)
    frame = frame[frame["created_at"].notna() & frame["priority"].isin(list(hours))]
    frame = frame.sort_values("ticket_id").head(cfg.tickets).reset_index(drop=True)
    return frame["created_at"], frame["priority"].map(hours).to_numpy(dtype=np.float64)


def _save(cfg: Config, name: str, values) -> None:
    import numpy as np

    np.save(Path(cfg.work) / name, values)


def run_cmp_engine(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """Revisit's deadline engine: BusinessCalendar.add_business_hours over the tickets (one
    vectorised call: the business clock and two searchsorted). The comparison uses the probed
    call's time; reading the tickets and building the calendar are reported apart."""
    from revisit.rules.calendar import BusinessCalendar

    policy = ctx["policy"]
    created, hours = _comparison_tickets(cfg, policy)
    began = time.perf_counter()
    calendar = BusinessCalendar(policy.calendar)
    built = time.perf_counter() - began
    probes.wrap(BusinessCalendar, "add_business_hours", "add_business_hours",
                rows=lambda self, start, h: len(start))
    deadline = calendar.add_business_hours(created, hours)
    _save(cfg, "cmp_engine.npy", deadline.dt.tz_convert("UTC").dt.tz_localize(None)
          .dt.as_unit("ns").to_numpy())
    return len(created), {"calendar_build_seconds": round(built, 3)}


def _btd_rules(policy, years: tuple[int, int] | None = None):
    """businesstimedelta configured like the policy: the working-hours interval(s) on Mon-Fri
    and on China's official adjusted working days, minus the public holidays (both from the
    `holidays` package, the same years as BusinessCalendar; `years` given, revisit.rules.calendar
    and with it numpy/pandas is not imported: bench.sla_fair's businesstimedelta process)."""
    import holidays
    import pytz
    from businesstimedelta import HolidayRule, Rules, WorkDayRule
    from businesstimedelta.rules import Rule

    if years is None:
        from revisit.rules.calendar import DEFAULT_YEARS

        years = DEFAULT_YEARS

    tz = pytz.timezone(policy.calendar.timezone)
    years = range(years[0], years[1] + 1)
    country = holidays.country_holidays(policy.calendar.country, years=list(years))
    closed = frozenset(country) | frozenset(policy.calendar.extra_holidays)
    opened = sorted((set(getattr(country, "weekend_workdays", ()))
                     | set(policy.calendar.extra_workdays)) - set(policy.calendar.extra_holidays))

    class AdjustedWorkdayRule(Rule):
        """Business hours on listed dates (调休 weekend working days): businesstimedelta has no
        such rule; this is its WorkDayRule for a date list instead of weekdays."""

        def __init__(self, dates, start_time, end_time, tz):
            super().__init__(tz=tz, time_off=False)
            self.dates, self.start_time, self.end_time = dates, start_time, end_time

        def next(self, when):
            import bisect

            local = when.astimezone(self.tz)
            i = bisect.bisect_left(self.dates, local.date())
            if i < len(self.dates) and self.dates[i] == local.date() \
                    and local.time() >= self.end_time:
                i += 1
            # none left: a block far in the future never wins
            day = dt.date(9000, 1, 1) if i >= len(self.dates) else self.dates[i]
            start = self.tz.localize(dt.datetime.combine(day, self.start_time))
            end = self.tz.localize(dt.datetime.combine(day, self.end_time))
            if start < when < end:
                start = when
            return start, end

    def clock(minutes: int) -> dt.time:
        return dt.time(minutes // 60, minutes % 60) if minutes < 24 * 60 else dt.time(23, 59, 59)

    available = []
    for interval in policy.calendar.hours:
        start, end = clock(interval.start), clock(interval.end)
        available.append(WorkDayRule(start_time=start, end_time=end, working_days=[0, 1, 2, 3, 4],
                                     tz=tz))
        available.append(AdjustedWorkdayRule(opened, start, end, tz))
    return Rules([*available, HolidayRule(closed, tz=tz)]), tz


def run_cmp_btd(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """businesstimedelta over the same tickets: `aware start + BusinessTimeDelta(rules, hours)`
    per ticket (its API is per datetime; no vectorised form)."""
    import numpy as np
    import pandas as pd
    from businesstimedelta import BusinessTimeDelta

    policy = ctx["policy"]
    created, hours = _comparison_tickets(cfg, policy)
    rules, tz = _btd_rules(policy)
    deltas = {h: BusinessTimeDelta(rules, seconds=round(float(h) * 3600)) for h in set(hours)}
    starts = list(created.dt.to_pydatetime())

    def add_all(starts, hours):
        # Reading the naive local stamps in the zone is part of the work, as it is inside
        # add_business_hours.
        return [tz.localize(start) + deltas[h] for start, h in zip(starts, hours, strict=True)]

    probes.wrap(sys.modules[__name__], "_btd_loop", "BusinessTimeDelta add",
                rows=lambda fn, starts, hours: len(starts))
    out = _btd_loop(add_all, starts, hours)
    ns = pd.DatetimeIndex(pd.to_datetime(out, utc=True)).tz_localize(None).as_unit("ns")
    _save(cfg, "cmp_btd.npy", np.asarray(ns.to_numpy()))
    return len(starts), {}


def _btd_loop(fn, starts, hours):
    return fn(starts, hours)


def run_cmp_read_sql(cfg: Config, ctx: dict, probes: Probes) -> tuple[int, dict]:
    """Plain pandas.read_sql of the same include/sql/extract/*.sql with the same :cutoff,
    every table held in memory (what a naive extract does: no typing, no cut-off of later
    stamps, no Parquet)."""
    import pandas as pd
    from sqlalchemy import create_engine, text

    from revisit.config.schema import TABLES
    from revisit.io.extract import EXTRACT_SQL_DIR, Cutoff

    policy = ctx["policy"]
    cutoff = Cutoff.for_date(cfg.call_date, policy.calendar.timezone, policy.source_tz)
    engine = create_engine(cfg.crm_url)
    frames = {}

    def read(conn, name):
        sql = (EXTRACT_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        params = {"cutoff": cutoff.source.to_pydatetime()} if ":cutoff" in sql else {}
        return pd.read_sql(text(sql), conn, params=params)

    holder = type("Reader", (), {"read": staticmethod(read)})
    probes.wrap(holder, "read", lambda conn, name: f"read {name}", out_rows=len)
    try:
        with engine.connect() as conn:
            for name in TABLES:
                frames[name] = holder.read(conn, name)
    finally:
        engine.dispose()
    for name, frame in frames.items():
        probes.steps[f"read {name}"]["rows"] = len(frame)
    return sum(len(f) for f in frames.values()), {
        "rows": {n: len(f) for n, f in frames.items()},
        "frames_memory_bytes": int(sum(f.memory_usage(deep=True).sum() for f in frames.values())),
    }


# ================================================================= registry
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("extract", "daily", run_extract, "CRM rows",
          describe="CRM (SQLite) -> snapshots/D/*.parquet as of D 00:00"),
    Stage("quality_gate", "daily", run_quality, "snapshot rows",
          describe="GX checks, quarantine, quality report, clean/D/*.parquet"),
    Stage("shards", "daily", run_shards, "shards",
          describe="the shard plan of D (departments, hash buckets of large ones)"),
    Stage("obligations_shard", "daily", run_obligations_shard, "customers", mapped=True,
          describe="one shard: visit rules -> listable obligations + history"),
    Stage("sla_shard", "daily", run_sla_shard, "tickets", mapped=True,
          describe="one shard: SLA status of its tickets"),
    Stage("call_lists", "daily", run_call_lists, "listable obligations",
          describe="merge of the shards -> ranked, assigned call lists -> XLSX/CSV"),
    Stage("sla", "daily", run_sla, "status rows",
          describe="merge of the shards' SLA status, digests -> CSV"),
    Stage("publish", "daily", run_publish, "result rows",
          describe="call lists, SLA status, quality issues -> results DB (replace D)"),
    Stage("monthly_extract", "monthly", run_monthly_extract, "CRM rows",
          requires=("revisit.stages.monthly",),
          describe="CRM -> snapshots/M/*.parquet as of the 1st after M"),
    Stage("monthly_gate", "monthly", run_monthly_gate, "clean rows",
          requires=("revisit.quality.stored",),
          describe="quality gate of M (the daily one of the 1st when it is M's) -> clean/M"),
    Stage("monthly_shards", "monthly", run_monthly_shards, "shards",
          describe="the shard plan of M"),
    Stage("kpis_shard", "monthly", run_kpis_shard, "customers", mapped=True,
          requires=("revisit.rules.kpi_shares",),
          describe="one shard: its share of M's KPIs (sums, counts, top rows)"),
    Stage("kpis", "monthly", run_kpis, "shards",
          requires=("revisit.rules.kpi_shares", "revisit.delivery.report"),
          describe="merge of the shares -> kpis.csv, agents.csv, report data"),
    Stage("render", "monthly", run_render, "departments",
          requires=("revisit.delivery.report", "revisit.stages.monthly", "weasyprint"),
          describe="per department: Jinja2 HTML + charts -> WeasyPrint PDF"),
    Stage("call_lists_whole", "compare", run_call_lists, "customers+orders+tickets+visits",
          describe="the unsharded alternative: visit rules over the whole CRM in one task"),
    Stage("sla_whole", "compare", run_sla, "status rows",
          describe="the unsharded alternative: the SLA engine over every ticket in one task"),
    Stage("cmp_engine", "compare", run_cmp_engine, "tickets",
          describe="BusinessCalendar.add_business_hours (vectorised)"),
    Stage("cmp_btd", "compare", run_cmp_btd, "tickets", requires=("businesstimedelta",),
          describe="businesstimedelta, one ticket at a time"),
    Stage("cmp_read_sql", "compare", run_cmp_read_sql, "CRM rows",
          describe="pandas.read_sql of the extract SQL, all in memory"),
)}
DAILY = [s for s in STAGES.values() if s.kind == "daily"]
MONTHLY = [s for s in STAGES.values() if s.kind == "monthly"]


def missing_requirements(stage: Stage) -> list[str]:
    import importlib.util

    return [m for m in stage.requires if importlib.util.find_spec(m) is None]


def _source() -> str | None:
    """The plugins/ folder `revisit` was imported from (A/B runs: which revision ran)."""
    module = sys.modules.get("revisit")
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), None)
    if where is None:
        return None
    where = Path(where).resolve()
    return str(where.parents[1] if where.name == "__init__.py" else where.parent)


# ================================================================= child entry point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages")
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    cfg = Config(**json.loads(args.config.read_text()))
    # The domain's own log lines (per-table timings of the quality gate, ...) go to the
    # stage's log file under bench/work/run_<N>/.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["REVISIT_OUTPUT_DIR"] = cfg.out
    stage = STAGES[cfg.stage]
    report: dict[str, Any] = {"stage": stage.name if cfg.shard is None
                              else f"{stage.name}[{cfg.shard}]", "kind": stage.kind,
                              "rows_label": stage.rows_label}
    began = time.perf_counter()
    try:
        import numpy  # noqa: F401  (imports are set-up, not the stage's work)
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401

        ctx = _policy_and_calendar(cfg)
        report["source"] = _source()
        report["setup_seconds"] = round(time.perf_counter() - began, 3)
        report["base_rss"] = current_rss()
        report["setup_peak_rss"] = peak_rss()
        probes = Probes()
        reset_peak()
        profiler = None
        if cfg.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        started = time.perf_counter()
        rows, details = stage.run(cfg, ctx, probes)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.stop()
            Path(cfg.profile).parent.mkdir(parents=True, exist_ok=True)
            Path(cfg.profile + ".txt").write_text(
                profiler.output_text(unicode=True, color=False, show_all=False))
            Path(cfg.profile + ".html").write_text(profiler.output_html())
            # `pyinstrument --load FILE -r text --show-all` re-renders with library frames.
            profiler.last_session.save(cfg.profile + ".pyisession")
        report.update({
            "ok": True, "seconds": round(seconds, 3), "rows": int(rows),
            "rows_per_second": round(rows / seconds) if seconds > 0 else None,
            "peak_rss": probes.stage_peak(), "details": details,
            "steps": {name: {**s, "seconds": round(s["seconds"], 3)}
                      for name, s in probes.steps.items()},
        })
    except Exception as error:  # reported to the orchestrator, which decides what follows
        report.update({"ok": False, "error": f"{type(error).__name__}: {error}",
                       "traceback": traceback.format_exc()})
    Path(cfg.result).write_text(json.dumps(report, indent=1, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
