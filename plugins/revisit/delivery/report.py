"""The monthly department report: KPIs -> Jinja2 HTML with inline SVG charts -> WeasyPrint PDF.

Three steps, each testable alone:

1. `report_data(kpis, department_id)`: the department's numbers as plain JSON-able data (what
   the kpis task stores per department, so the render tasks need no snapshot);
2. `render_html(data, policy)`: the HTML (revisit.delivery.templating: autoescape on; every CRM
   text is data, never markup), translated into `policy.report.locale`
   (revisit.config.translations);
3. `render_pdf(html)` (revisit.delivery.pdf): WeasyPrint with `TemplateOnlyFetcher`, which
   serves files under include/templates/ and refuses every other URL (file://, http(s)://,
   data:), so a hostile CRM value can never make the renderer read a local file or call a
   network address.

Bounded: WeasyPrint's time grows far faster than the length of one long text (≈1.5 s for a
normal department, 54 s for 2,000-character names, unbounded for 350,000), so `build_context`
shortens every CRM text to the policy's report.max_text_chars (ending in "…", counted in the
data-quality note; the templates' `shorten` filter guards the same fields), and
`render_report` runs WeasyPrint in a child process killed after report.render_timeout_seconds
(`RenderTimeout`): a render that still stalls fails its own department only, even inside C
code that no in-process alarm (Airflow's execution_timeout) can interrupt.

The action page (`action_context`) lists what the head should act on at the cut-off — agents'
overdue and missed visits, open SLA breaches (the top `report.action_rows` of each, with the
totals), the largest KPI moves (`kpi_moves`, the highlights' own ranking) — and the appendix
defines every KPI in the locale (`appendix`, phrases `definitions.<kpi>`).

The agent section shows the strongest and the weakest `report.agent_rows` agents by visit
timeliness (`agent_section`; every agent when few): the PDF stays a few pages whatever the
department's size, and the full table is `agents_workbook`'s XLSX, attached beside it.

Charts are inline SVG drawn by the template from coordinates computed here: vector, no image
files, no matplotlib. The e-mail that carries the PDF is revisit.delivery.mail's (it reuses
`build_context`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from revisit.config.policy import ReportHighlights
from revisit.config.translations import load_translations
from revisit.core.periods import month_cutoff_date
from revisit.core.templating import is_shortened, shorten
from revisit.delivery.pdf import render_pdf
from revisit.delivery.templating import render

TARGET_KPIS = ("visit_timeliness_rate", "problem_resolution_rate", "avg_satisfaction",
               "complaint_satisfaction", "sla_compliance_rate", "median_handling_hours")
RATE_KPIS = ("visit_timeliness_rate", "problem_resolution_rate", "sla_compliance_rate")
SCORE_KPIS = ("avg_satisfaction", "complaint_satisfaction")
LOWER_IS_BETTER = ("median_handling_hours",)
MOVES_SHOWN = 3  # the biggest KPI moves, in the highlights and on the action page
# Every KPI of DESIGN.md "Monthly KPI names", in that order: the appendix defines each.
APPENDIX_KPIS = (
    "visits_due", "visits_on_time", "visit_timeliness_rate",
    "tickets_raised", "tickets_resolved", "problem_resolution_rate",
    "avg_satisfaction", "complaint_satisfaction",
    "sla_compliance_rate", "sla_breaches", "median_handling_hours", "sla_unknown",
)
# What the action page keeps of an open breach (no phone: the handler calls, not the head).
OPEN_BREACH_FIELDS = ("ticket_id", "customer_name", "priority", "metric", "deadline",
                      "overdue_minutes", "handler_agent_id", "handler_name")


# ================================================================= data (JSON-able)
def _clean(value: Any) -> Any:
    """NaN / NA -> None; numpy scalars -> Python; timestamps -> ISO text."""
    import pandas as pd

    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ", timespec="minutes")
    if hasattr(value, "item"):
        return value.item()
    return value


def _records(frame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def report_data(kpis, department_id: str, quarantined: int | None = None,
                left_out: dict[str, int] | None = None,
                extracted_at: str | None = None) -> dict[str, Any]:
    """Everything the PDF and the e-mail of one department show, as plain data (no frames).

    `kpis` is a revisit.rules.kpis.MonthlyKpis; `quarantined` the rows the daily quality gate
    quarantined for this department in M (None: unknown); `left_out` what this month's own
    gate left out of the KPIs, by kind (revisit.stages.monthly.left_out_by_gate);
    `extracted_at` when the snapshot behind them was read (its snapshot.json; the report
    shows it instead of its rendering time, so a rerun gives the same PDF)."""
    from revisit.rules.kpis import COMPANY, KPI_NAMES

    dept = kpis.departments[kpis.departments["department_id"] == department_id]
    if dept.empty:
        raise KeyError(f"department {department_id!r} is not in the snapshot")
    info = {k: _clean(v) for k, v in dept.iloc[0].to_dict().items()}
    series: dict[str, list[float | None]] = {}
    long = kpis.kpis
    for scope, key in ((department_id, "series"), (COMPANY, "company_series")):
        rows = long[long["department_id"] == scope]
        table = rows.pivot(index="month", columns="metric", values="value")
        table = table.reindex(index=kpis.months, columns=list(KPI_NAMES))
        series[key] = {m: [_clean(v) for v in table[m].tolist()] for m in KPI_NAMES}

    def of(frame, columns=None):
        if frame is None:
            return []
        rows = frame[frame["department_id"] == department_id].drop(columns="department_id")
        return _records(rows if columns is None else rows.loc[:, list(columns)])

    quality = {**kpis.quality.get(department_id, {}), **(left_out or {})}
    quality["quarantined"] = quarantined
    return {
        "month": kpis.month,
        "months": list(kpis.months),
        "department": info,
        "series": series["series"],
        "company_series": series["company_series"],
        "categories": of(kpis.categories),
        "sla_priority": of(kpis.sla_priority),
        "breaches": of(kpis.breaches),
        "agents": of(kpis.agents),
        "quality": quality,
        "actions": {
            "visits": of(kpis.open_visits),
            "breaches": of(kpis.open_breaches, OPEN_BREACH_FIELDS),
            "counts": {"agents": 0, "overdue": 0, "missed": 0, "breaches": 0,
                       **kpis.open_counts.get(department_id, {})},
        },
        "extracted_at": extracted_at,
    }


def shorten_texts(data: dict[str, Any], limit: int) -> tuple[dict[str, Any], int]:
    """(a copy of `data` with every text of the department and of every table row cut to
    `limit` characters (revisit.core.templating.shorten), how many texts were cut).

    Every text, not a list of CRM columns: a column added to a table later is bounded too;
    what the code itself writes there (priorities, metrics, timestamps) is far shorter."""
    count = 0

    def cut(value: Any) -> Any:
        nonlocal count
        if is_shortened(value, limit):
            count += 1
            return shorten(value, limit)
        return value

    def rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: cut(v) for k, v in row.items()} for row in items]

    out = {**data, "department": {k: cut(v) for k, v in data["department"].items()}}
    for key in ("categories", "sla_priority", "breaches", "agents"):
        out[key] = rows(data.get(key) or [])
    if data.get("actions") is not None:
        actions = data["actions"]
        out["actions"] = {**actions, "visits": rows(actions["visits"]),
                          "breaches": rows(actions["breaches"])}
    return out, count


# ================================================================= formats
class Formats:
    """Numbers and dates in one locale, for the templates."""

    def __init__(self, tr: dict[str, Any], locale: str) -> None:
        self.tr, self.locale = tr, locale

    def month(self, month: str) -> str:
        from babel.dates import format_skeleton

        return format_skeleton("yMMMM", dt.date.fromisoformat(f"{month}-01"), locale=self.locale)

    def month_short(self, month: str) -> str:
        from babel.dates import format_skeleton

        return format_skeleton("MMM", dt.date.fromisoformat(f"{month}-01"), locale=self.locale)

    def kpi(self, name: str, value: float | None) -> str:
        if value is None:
            return "–"
        if name in RATE_KPIS:
            return f"{value * 100:.1f}%"
        if name in SCORE_KPIS:
            return f"{value:.1f}"
        if name == "median_handling_hours":
            return self.tr["units"]["hours"].format(value=f"{value:.1f}")
        return f"{int(value):,}"

    def delta(self, name: str, delta: float) -> str:
        """The size of a change (no sign: the words say the direction)."""
        if name in RATE_KPIS:
            return self.tr["units"]["pp"].format(value=f"{abs(delta) * 100:.1f}")
        if name in SCORE_KPIS:
            return self.tr["units"]["points"].format(value=f"{abs(delta):.1f}")
        if name == "median_handling_hours":
            return self.tr["units"]["hours"].format(value=f"{abs(delta):.1f}")
        return f"{abs(delta):,.0f}"

    @staticmethod
    def share(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}%"

    @staticmethod
    def hours(minutes: float | None) -> str:
        return "–" if minutes is None else f"{minutes / 60:.1f} h"

    def overdue(self, minutes: float | None) -> str:
        """An open breach's overdue time: hours, whole ones once they are many (2,493 h reads
        better than 2493.0 h); 0 (no business time since the deadline) in words, since
        "0.0 h" would read as not overdue."""
        if minutes is None:
            return "–"
        if minutes <= 0:
            return self.tr["actions"]["just_breached"]
        hours = minutes / 60
        return f"{hours:.1f} h" if hours < 10 else f"{hours:,.0f} h"

    @staticmethod
    def stamp(value: str | None) -> str:
        return "–" if not value else str(value)[:16]


# ================================================================= tiles, highlights, charts
def _good(name: str, value: float | None, target: float) -> bool | None:
    if value is None:
        return None
    return value <= target if name in LOWER_IS_BETTER else value >= target


def tiles(data: dict[str, Any], targets: dict[str, float], fmt: Formats) -> list[dict[str, Any]]:
    """One tile per KPI with a target: value, target, good (True / False / None), change."""
    tr = fmt.tr
    months = data["months"]
    out = []
    for name in TARGET_KPIS:
        values = data["series"][name]
        value, before = values[-1], values[-2] if len(values) > 1 else None
        good = _good(name, value, targets[name])
        change = None
        if value is not None and before is not None:
            change = tr["tile"]["vs_previous"].format(
                delta=_signed(name, value - before, fmt), month=fmt.month_short(months[-2]))
        status = (tr["tile"]["no_data"] if good is None else tr["tile"]["good"] if good
                  else tr["tile"]["bad_high" if name in LOWER_IS_BETTER else "bad"])
        out.append({
            "name": name, "label": tr["kpi"][name], "value": fmt.kpi(name, value),
            "target": tr["tile"]["target"].format(target=fmt.kpi(name, targets[name])),
            "good": good, "status": status, "change": change,
            "company": tr["tile"]["company"].format(
                value=fmt.kpi(name, data["company_series"][name][-1])),
        })
    return out


def _signed(name: str, delta: float, fmt: Formats) -> str:
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    return f"{sign}{fmt.delta(name, delta)}"


def highlights(data: dict[str, Any], targets: dict[str, float], fmt: Formats,
               rules: ReportHighlights | None = None) -> list[str]:
    """Generated sentences, in the order a head should read them: the biggest moves against
    the previous month, missed targets, the change in SLA breaches and the most frequent
    problem category; at most `rules.max_lines` (the policy's report.highlights)."""
    rules = rules or ReportHighlights()
    if all(data["series"][name][-1] is None for name in TARGET_KPIS):
        return [fmt.tr["highlights"]["no_data"]]
    return (_move_lines(data, fmt, rules) + _target_lines(data, targets, fmt)
            + _breach_lines(data["series"]["sla_breaches"], fmt, rules)
            + _category_lines(data["categories"], fmt))[:rules.max_lines]


def _move_lines(data: dict[str, Any], fmt: Formats, rules: ReportHighlights) -> list[str]:
    """The biggest moves against the previous month, biggest first; when KPIs could be
    compared and none moved enough, one line saying so (silence would read as "no data")."""
    moves, compared = kpi_moves(data, fmt, rules)
    lines = [move["text"] for move in moves]
    if compared and not moves:
        lines.append(fmt.tr["highlights"]["steady"].format(month=fmt.month(data["months"][-2])))
    return lines


def kpi_moves(data: dict[str, Any], fmt: Formats, rules: ReportHighlights
              ) -> tuple[list[dict[str, Any]], int]:
    """(the MOVES_SHOWN biggest moves against the previous month at or above the policy's
    threshold, biggest first; how many KPIs could be compared). One ranking for the
    highlights' sentences and the action page's table (see `_move`)."""
    months = data["months"]
    if len(months) < 2:
        return [], 0
    previous = fmt.month(months[-2])
    moves: list[dict[str, Any]] = []
    compared = 0
    for name in TARGET_KPIS:
        before, after = data["series"][name][-2], data["series"][name][-1]
        if before is None or after is None:
            continue
        compared += 1
        move = _move(name, before, after, fmt, rules, previous)
        if move is not None:
            moves.append(move)
    return sorted(moves, key=lambda m: -m["size"])[:MOVES_SHOWN], compared


def _move(name: str, before: float, after: float, fmt: Formats, rules: ReportHighlights,
          previous: str) -> dict[str, Any] | None:
    """One KPI's move — name, size, the highlight's sentence (`text`), before / after /
    change as shown, `better` — or None when it is below the policy's threshold.

    Why a size: the size is the move in multiples of its kind's threshold (rate points, score
    points, or a share of last month's handling time), so moves of different KPIs rank
    against each other."""
    delta = after - before
    if delta == 0:
        return None
    if name == "median_handling_hours":
        size = abs(delta) / max(before, 1e-9) / rules.hours_share
        key = "hours_rose" if delta > 0 else "hours_fell"
    else:
        size = abs(delta) / (rules.rate_points if name in RATE_KPIS else rules.score_points)
        key = "rose" if delta > 0 else "fell"
    if size < 1:
        return None
    shown = {"before": fmt.kpi(name, before), "after": fmt.kpi(name, after)}
    return {
        "name": name, "size": size, "label": fmt.tr["kpi"][name], **shown,
        "change": _signed(name, delta, fmt),
        "better": (delta < 0) if name in LOWER_IS_BETTER else (delta > 0),
        "text": fmt.tr["highlights"][key].format(
            kpi=fmt.tr["kpi"][name], delta=fmt.delta(name, delta), month=previous, **shown),
    }


def _target_lines(data: dict[str, Any], targets: dict[str, float], fmt: Formats) -> list[str]:
    """Up to two KPIs that miss their target; or, only when every KPI has a value (a KPI
    without data has not met its target), one line saying every target is met."""
    tr = fmt.tr
    latest = {name: data["series"][name][-1] for name in TARGET_KPIS}
    missed = [name for name in TARGET_KPIS if _good(name, latest[name], targets[name]) is False]
    lines = [tr["highlights"]["missed"].format(kpi=tr["kpi"][name],
                                               value=fmt.kpi(name, latest[name]),
                                               target=fmt.kpi(name, targets[name]))
             for name in missed[:2]]
    if not missed and all(value is not None for value in latest.values()):
        lines.append(tr["highlights"]["met_all"])
    return lines


def _breach_lines(breaches: list[float | None], fmt: Formats,
                  rules: ReportHighlights) -> list[str]:
    """One line when SLA breaches changed by at least `breaches_min` and `breaches_share` of
    last month's count: small counts move by chance, and a head should not chase noise."""
    if len(breaches) < 2 or breaches[-2] is None or breaches[-1] is None:
        return []
    before, after = int(breaches[-2]), int(breaches[-1])
    if after == before or abs(after - before) < max(rules.breaches_min,
                                                    rules.breaches_share * max(before, 1)):
        return []
    key = "breaches_more" if after > before else "breaches_fewer"
    return [fmt.tr["highlights"][key].format(before=before, after=after)]


def _category_lines(categories: list[dict[str, Any]], fmt: Formats) -> list[str]:
    """The most frequent problem category (the list comes sorted, most tickets first): where
    the department's problems come from is the first question after the numbers."""
    if not categories:
        return []
    top = categories[0]
    return [fmt.tr["highlights"]["top_category"].format(
        category=fmt.tr["categories"].get(top["category"], top["category"]),
        share=fmt.share(top["share"]))]


def _nice_range(values: list[float], target: float | None, rate: bool) -> tuple[float, float]:
    known = [v for v in values if v is not None] + ([target] if target is not None else [])
    if not known:
        return (0.0, 1.0)
    lo, hi = min(known), max(known)
    span = max(hi - lo, 0.05 if rate else max(abs(hi) * 0.1, 1.0))
    lo, hi = lo - span * 0.15, hi + span * 0.15
    if rate:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    else:
        lo = max(lo, 0.0)
    return lo, hi


def line_chart(name: str, values: list[float | None], labels: list[str],
               target: float | None, fmt: Formats, company: list[float | None] | None = None,
               width: float = 240.0, height: float = 120.0) -> dict[str, Any]:
    """Geometry of one trend chart (SVG user units): the department's line, the company's
    (dashed, grey) and the target line; gaps where a month has no value."""
    left, right, top, bottom = 34.0, 38.0, 10.0, 22.0
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = _nice_range(values + (company or []), target, name in RATE_KPIS)
    n = len(values)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    def segments(series: list[float | None]) -> list[str]:
        out, current = [], []
        for i, v in enumerate(series):
            if v is None:
                if current:
                    out.append(" ".join(current))
                current = []
            else:
                current.append(f"{x(i):.1f},{y(v):.1f}")
        if current:
            out.append(" ".join(current))
        return out

    def label(v: float) -> str:  # short: it sits beside the last point
        return f"{v:.1f}h" if name == "median_handling_hours" else fmt.kpi(name, v)

    points = [{"x": round(x(i), 1), "y": round(y(v), 1), "label": label(v)}
              for i, v in enumerate(values) if v is not None]
    return {
        "width": width, "height": height, "left": left, "right": width - right,
        "top": top, "bottom": top + plot_h,
        "lines": segments(values),
        "company": segments(company) if company else [],
        "points": points,
        "last": points[-1] if points and values[-1] is not None else None,
        "target_y": round(y(target), 1) if target is not None and lo <= target <= hi else None,
        "ticks": [{"y": round(y(v), 1), "label": _axis_label(name, v)}
                  for v in (lo, (lo + hi) / 2, hi)],
        "xlabels": [{"x": round(x(i), 1), "label": label} for i, label in enumerate(labels)],
        "empty": not points,
    }


def _axis_label(name: str, value: float) -> str:
    if name in RATE_KPIS:
        return f"{value * 100:.0f}%"
    return f"{value:.0f}" if abs(value) >= 10 or math.isclose(value, round(value)) \
        else f"{value:.1f}"


# ================================================================= the HTML
def extracted_minute(extracted_at: str | None, tz: str) -> str:
    """When the snapshot behind the numbers was read from the CRM, to the minute in the
    business zone ('–' when unknown). The report shows this, not the wall clock of its
    rendering: a rerun from the same snapshot gives the same bytes."""
    from zoneinfo import ZoneInfo

    if not extracted_at:
        return "–"
    instant = dt.datetime.fromisoformat(extracted_at)
    if instant.tzinfo is not None:
        instant = instant.astimezone(ZoneInfo(tz))
    return instant.strftime("%Y-%m-%d %H:%M")


def build_context(data: dict[str, Any], policy, locale: str | None = None) -> dict[str, Any]:
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    fmt = Formats(tr, locale)
    limit = policy.report.max_text_chars
    data, shortened = shorten_texts(data, limit)
    data["quality"] = {**data["quality"], "shortened_texts": shortened}
    targets = policy.report.targets.model_dump()
    labels = [fmt.month_short(m) for m in data["months"]]
    charts = [{"name": name, "label": tr["kpi"][name],
               "chart": line_chart(name, data["series"][name], labels, targets.get(name), fmt,
                                   company=data["company_series"][name])}
              for name in TARGET_KPIS]
    tz = policy.calendar.timezone
    series = data["series"]
    counts = tr["tile"]["counts"].format(
        due=_int(series["visits_due"][-1]), on_time=_int(series["visits_on_time"][-1]),
        raised=_int(series["tickets_raised"][-1]), resolved=_int(series["tickets_resolved"][-1]),
        breaches=_int(series["sla_breaches"][-1]))
    first_next = month_cutoff_date(data["month"])
    return {
        "tr": tr, "fmt": fmt, "locale": locale, "lang": locale.replace("_", "-"),
        "max_text_chars": limit,  # the templates' `shorten` filter (revisit.core.templating)
        "data": data, "department": data["department"],
        "period": fmt.month(data["month"]),
        "cutoff": tr["cut_off"].format(cutoff=f"{first_next.isoformat()} 00:00 ({tz})"),
        "extracted": extracted_minute(data.get("extracted_at"), tz),
        # Which policy made the numbers (the footer; run.json of reports/M says the same).
        "policy_version": policy.version, "profile": policy.profile,
        "tiles": tiles(data, targets, fmt),
        "counts": counts,
        "highlights": highlights(data, targets, fmt, policy.report.highlights),
        "charts": charts,
        "quality": quality_lines(data["quality"], tr, limit),
        "actions": action_context(data, fmt, policy, first_next),
        "agents": agent_section(data["agents"], policy.report.agent_rows),
        "appendix": appendix(fmt, targets),
    }


def _timeliness(row: dict[str, Any]) -> float:
    return row["visits_on_time"] / row["visits_due"]


def agent_section(agents: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """What the PDF's agent section shows: every agent when there are at most 2 × `rows`
    (`split` False), else the strongest and the weakest `rows` by visit timeliness; the full
    table travels as the XLSX beside the PDF (`agents_workbook`), so the PDF's length (and
    its render time, 4 s for 401 agents) no longer grows with the department.

    Ranked: only agents with visits due (a rate of nothing says nothing; `unranked` counts
    the others). A tie on the rate goes to the agent with more visits due (10 of 10 is
    stronger than 1 of 1, 0 of 10 weaker than 0 of 1), then to the lower agent id, so the
    choice is stable. The strongest are active agents only (nobody appraises a departed
    agent); an inactive agent may be among the weakest, marked as such (the visits were late
    all the same). Nobody is in both lists."""
    total = len(agents)
    if total <= 2 * rows:
        return {"split": False, "all": agents, "total": total}
    due = [row for row in agents if (row.get("visits_due") or 0) > 0]
    strongest = sorted((row for row in due if row.get("active")),
                       key=lambda r: (-_timeliness(r), -r["visits_due"], str(r["agent_id"])))
    strongest = strongest[:rows]
    chosen = {id(row) for row in strongest}
    weakest = sorted((row for row in due if id(row) not in chosen),
                     key=lambda r: (_timeliness(r), -r["visits_due"], str(r["agent_id"])))
    return {"split": True, "strongest": strongest, "weakest": weakest[:rows], "total": total,
            "unranked": total - len(due)}


def action_context(data: dict[str, Any], fmt: Formats, policy,
                   cutoff_day: dt.date) -> dict[str, Any]:
    """What the action page shows: the agents' open visits and the open SLA breaches (top
    rows, and a sentence for what is beyond them), the biggest KPI moves. `available` is
    False for report data written before the page existed (rerun the kpis task)."""
    tr = fmt.tr
    actions = data.get("actions")
    moves, compared = kpi_moves(data, fmt, policy.report.highlights)
    if moves:
        moves_note = None
    elif compared:
        moves_note = tr["highlights"]["steady"].format(month=fmt.month(data["months"][-2]))
    else:
        moves_note = tr["actions"]["moves_none"]
    out: dict[str, Any] = {
        "available": actions is not None,
        "intro": tr["actions"]["intro"].format(cutoff=f"{cutoff_day.isoformat()} 00:00"),
        "visits_note": tr["actions"]["visits_note"].format(
            days=policy.visits.max_overdue_days),
        "moves": moves, "moves_note": moves_note,
    }
    if actions is None:
        return out
    counts = actions["counts"]
    visits = [{**row, "open": row["overdue"] + row["missed"]} for row in actions["visits"]]
    more_agents = counts["agents"] - len(visits)
    out["visits"] = visits
    out["visits_total"] = {"overdue": counts["overdue"], "missed": counts["missed"],
                           "open": counts["overdue"] + counts["missed"]}
    out["visits_more"] = tr["actions"]["visits_more"].format(
        agents=more_agents,
        overdue=counts["overdue"] - sum(v["overdue"] for v in visits),
        missed=counts["missed"] - sum(v["missed"] for v in visits)) if more_agents > 0 else None
    out["breaches"] = actions["breaches"]
    out["breaches_more"] = tr["actions"]["breaches_more"].format(
        count=counts["breaches"], shown=len(actions["breaches"])) \
        if counts["breaches"] > len(actions["breaches"]) else None
    return out


def appendix(fmt: Formats, targets: dict[str, float]) -> list[dict[str, str]]:
    """One line per KPI of DESIGN.md (APPENDIX_KPIS): name, definition and target, in the
    locale."""
    tr = fmt.tr
    return [{"name": name, "label": tr["kpi"][name], "definition": tr["definitions"][name],
             "target": (("≤ " if name in LOWER_IS_BETTER else "≥ ")
                        + fmt.kpi(name, targets[name])) if name in targets else "–"}
            for name in APPENDIX_KPIS]


def _int(value: float | None) -> str:
    return "0" if value is None else f"{int(value):,}"


def quality_lines(quality: dict[str, Any], tr: dict[str, Any], max_text_chars: int = 80
                  ) -> list[str]:
    q = tr["quality"]
    lines = []
    if quality.get("do_not_call_customers"):
        lines.append(q["do_not_call_customers"].format(
            count=quality["do_not_call_customers"], visits=quality.get("do_not_call_visits", 0)))
    for key in ("unrated_closed_tickets", "invalid_ratings", "tickets_without_department",
                "parse_error_rows", "quarantined"):
        if quality.get(key):
            lines.append(q[key].format(count=quality[key]))
    if quality.get("sla_unknown"):  # DESIGN.md: how many verdicts were unknown, which metrics
        labels = tr.get("metrics", {})
        metrics = q["sla_unknown_separator"].join(
            q["sla_unknown_item"].format(metric=labels.get(m, m), count=n)
            for m, n in (quality.get("sla_unknown_metrics") or {}).items())
        lines.append(q["sla_unknown"].format(count=quality["sla_unknown"], metrics=metrics))
    if quality.get("shortened_texts"):
        lines.append(q["shortened_texts"].format(count=quality["shortened_texts"],
                                                 limit=max_text_chars))
    if not lines:
        lines.append(q["clean"])
    return lines


def render_html(data: dict[str, Any], policy, locale: str | None = None) -> str:
    return render("report.html.j2", build_context(data, policy, locale))


def render_report(data: dict[str, Any], policy, target: Path, locale: str | None = None
                  ) -> Path:
    """Render one department's PDF to `target` (atomically), within the policy's
    report.render_timeout_seconds (RenderTimeout)."""
    from revisit.io.files import write_bytes

    html = render_html(data, policy, locale)
    return write_bytes(target, render_pdf(html, timeout=policy.report.render_timeout_seconds))


# The XLSX's columns (report data's agent rows), in the PDF table's order.
XLSX_AGENT_COLUMNS = ("agent_id", "name", "role", "status", "home_department_id", "visits_due",
                      "visits_on_time", "visit_timeliness_rate", "visits_made", "visits_reached",
                      "avg_visit_satisfaction", "tickets_handled", "sla_breaches")
XLSX_NUMBER_FORMATS = {"visit_timeliness_rate": "0.0%", "avg_visit_satisfaction": "0.0"}


def agents_workbook(data: dict[str, Any], policy, target: Path, locale: str | None = None
                    ) -> Path:
    """The department's full per-agent table as an XLSX (revisit.io.spreadsheet.write_xlsx:
    atomic, text never a formula), headers in the report's locale as in the PDF's table.

    From the report data, the same rows and numbers as agents.csv; texts are not shortened
    (a spreadsheet has no WeasyPrint to stall) but neutralised (a name "=cmd|..." stays
    text); counts and rates are numbers, so the head can sort and filter them."""
    import pandas as pd

    from revisit.io.spreadsheet import neutralise, write_xlsx

    locale = locale or policy.report.locale
    tr = load_translations(locale)
    words, columns = tr["agents_xlsx"], tr["columns"]
    frame = pd.DataFrame(data["agents"]).reindex(
        columns=[c for c in XLSX_AGENT_COLUMNS if c != "status"] + ["active"])
    frame["role"] = [tr["roles"].get(r, r) if isinstance(r, str) else r for r in frame["role"]]
    frame.insert(3, "status", [words["active"] if a else tr["inactive"]
                               for a in frame.pop("active")])
    numeric = list(XLSX_AGENT_COLUMNS[5:])
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    headers = {"agent_id": words["agent_id"], "name": words["name"], "role": columns["role"],
               "status": words["status"], "home_department_id": words["home_department"],
               "visits_due": columns["visits_due"], "visits_on_time": columns["visits_on_time"],
               "visit_timeliness_rate": columns["timeliness"],
               "visits_made": columns["visits_made"],
               "visits_reached": columns["visits_reached"],
               "avg_visit_satisfaction": columns["satisfaction"],
               "tickets_handled": columns["tickets_handled"], "sla_breaches": columns["breaches"]}
    dept = data["department"]
    title = words["title"].format(department=dept.get("name") or dept["department_id"],
                                  month=Formats(tr, locale).month(data["month"]))
    return write_xlsx(neutralise(frame), target, sheet=words["sheet"], headers=headers,
                      title=title, number_formats=XLSX_NUMBER_FORMATS)


__all__ = [
    "APPENDIX_KPIS",
    "MOVES_SHOWN",
    "TARGET_KPIS",
    "Formats",
    "action_context",
    "agent_section",
    "agents_workbook",
    "appendix",
    "build_context",
    "highlights",
    "kpi_moves",
    "line_chart",
    "render_html",
    "render_report",
    "report_data",
    "shorten_texts",
    "tiles",
]
