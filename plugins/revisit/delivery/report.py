"""The monthly department report: KPIs -> Jinja2 HTML with inline SVG charts -> WeasyPrint PDF.

Three steps, each testable alone:

1. `report_data(kpis, department_id)`: the department's numbers as plain JSON-able data (what
   the kpis task stores per department, so the render tasks need no snapshot);
2. `render_html(data, policy)`: the HTML (Jinja2, autoescape on; every CRM text is data, never
   markup), translated into `policy.report.locale` (include/templates/report/i18n/);
3. `render_pdf(html)`: WeasyPrint with `TemplateOnlyFetcher`, which serves files under
   include/templates/ and refuses every other URL (file://, http(s)://, data:), so a hostile
   CRM value can never make the renderer read a local file or call a network address.

Charts are inline SVG drawn by the template from coordinates computed here: vector, no image
files, no matplotlib.
"""

from __future__ import annotations

import datetime as dt
import math
import mimetypes
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from revisit.config.paths import TEMPLATES_DIR
from revisit.config.policy import ReportHighlights
from revisit.core.periods import month_cutoff_date

REPORT_DIR = TEMPLATES_DIR / "report"
I18N_DIR = REPORT_DIR / "i18n"
TARGET_KPIS = ("visit_timeliness_rate", "problem_resolution_rate", "avg_satisfaction",
               "complaint_satisfaction", "sla_compliance_rate", "median_handling_hours")
RATE_KPIS = ("visit_timeliness_rate", "problem_resolution_rate", "sla_compliance_rate")
SCORE_KPIS = ("avg_satisfaction", "complaint_satisfaction")
LOWER_IS_BETTER = ("median_handling_hours",)


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


def report_data(kpis, department_id: str, quarantined: int | None = None) -> dict[str, Any]:
    """Everything the PDF and the e-mail of one department show, as plain data (no frames).

    `kpis` is a revisit.rules.kpis.MonthlyKpis; `quarantined` the rows the daily quality gate
    quarantined for this department in M (None: unknown)."""
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

    def of(frame):
        return _records(frame[frame["department_id"] == department_id]
                        .drop(columns="department_id"))

    quality = dict(kpis.quality.get(department_id, {}))
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
    }


# ================================================================= translations, formats
@lru_cache(maxsize=4)
def load_translations(locale: str) -> dict[str, Any]:
    """include/templates/report/i18n/<locale>.yaml (a missing key falls back to en)."""
    def read(name: str) -> dict[str, Any]:
        path = I18N_DIR / f"{name}.yaml"
        if not path.exists():
            raise ValueError(f"no report translations for locale {name!r} ({path})")
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    base = read("en")
    if locale == "en":
        return base

    def merge(fallback: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
        out = dict(fallback)
        for key, value in chosen.items():
            out[key] = merge(fallback.get(key, {}), value) if isinstance(value, dict) else value
        return out

    return merge(base, read(locale))


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
            delta = value - before
            sign = "+" if delta > 0 else "−" if delta < 0 else "±"
            change = tr["tile"]["vs_previous"].format(
                delta=f"{sign}{fmt.delta(name, delta)}", month=fmt.month_short(months[-2]))
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


def highlights(data: dict[str, Any], targets: dict[str, float], fmt: Formats,
               rules: ReportHighlights | None = None) -> list[str]:
    """Generated sentences: the biggest moves against the previous month, missed targets,
    the change in SLA breaches and the most frequent problem category."""
    tr, hl = fmt.tr, fmt.tr["highlights"]
    rules = rules or ReportHighlights()
    significant = {**dict.fromkeys(RATE_KPIS, rules.rate_points),
                   **dict.fromkeys(SCORE_KPIS, rules.score_points)}
    months = data["months"]
    if all(data["series"][name][-1] is None for name in TARGET_KPIS):
        return [hl["no_data"]]
    moves: list[tuple[float, str]] = []
    compared = 0
    if len(months) > 1:
        previous = fmt.month(months[-2])
        for name in TARGET_KPIS:
            before, after = data["series"][name][-2], data["series"][name][-1]
            if before is None or after is None:
                continue
            compared += 1
            delta = after - before
            if delta == 0:
                continue
            if name == "median_handling_hours":
                size = abs(delta) / max(before, 1e-9) / rules.hours_share
                key = "hours_rose" if delta > 0 else "hours_fell"
            else:
                size = abs(delta) / significant[name]
                key = "rose" if delta > 0 else "fell"
            if size >= 1:
                moves.append((size, hl[key].format(
                    kpi=tr["kpi"][name], delta=fmt.delta(name, delta), month=previous,
                    before=fmt.kpi(name, before), after=fmt.kpi(name, after))))
    lines = [text for _, text in sorted(moves, key=lambda m: -m[0])[:3]]
    if compared and not moves:
        lines.append(hl["steady"].format(month=fmt.month(months[-2])))
    missed = [name for name in TARGET_KPIS
              if _good(name, data["series"][name][-1], targets[name]) is False]
    for name in missed[:2]:
        lines.append(hl["missed"].format(kpi=tr["kpi"][name],
                                         value=fmt.kpi(name, data["series"][name][-1]),
                                         target=fmt.kpi(name, targets[name])))
    if not missed and all(data["series"][n][-1] is not None for n in TARGET_KPIS):
        lines.append(hl["met_all"])
    breaches = data["series"]["sla_breaches"]
    if len(breaches) > 1 and breaches[-2] is not None and breaches[-1] is not None:
        before, after = int(breaches[-2]), int(breaches[-1])
        if after != before and abs(after - before) >= max(
                rules.breaches_min, rules.breaches_share * max(before, 1)):
            lines.append(hl["breaches_more" if after > before else "breaches_fewer"].format(
                before=before, after=after))
    if data["categories"]:
        top = data["categories"][0]
        lines.append(hl["top_category"].format(
            category=tr["categories"].get(top["category"], top["category"]),
            share=fmt.share(top["share"])))
    return lines[:rules.max_lines]


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


# ================================================================= templates
def _autoescape(name: str | None) -> bool:
    """Everything is escaped except the plain-text e-mail body (not HTML)."""
    return not (name or "").endswith(".txt.j2")


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(str(REPORT_DIR)), autoescape=_autoescape,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def build_context(data: dict[str, Any], policy, locale: str | None = None,
                  generated_at: dt.datetime | None = None) -> dict[str, Any]:
    locale = locale or policy.report.locale
    tr = load_translations(locale)
    fmt = Formats(tr, locale)
    targets = policy.report.targets.model_dump()
    labels = [fmt.month_short(m) for m in data["months"]]
    charts = [{"name": name, "label": tr["kpi"][name],
               "chart": line_chart(name, data["series"][name], labels, targets.get(name), fmt,
                                   company=data["company_series"][name])}
              for name in TARGET_KPIS]
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    tz = policy.calendar.timezone
    from zoneinfo import ZoneInfo

    series = data["series"]
    counts = tr["tile"]["counts"].format(
        due=_int(series["visits_due"][-1]), on_time=_int(series["visits_on_time"][-1]),
        raised=_int(series["tickets_raised"][-1]), resolved=_int(series["tickets_resolved"][-1]),
        breaches=_int(series["sla_breaches"][-1]))
    first_next = month_cutoff_date(data["month"])
    return {
        "tr": tr, "fmt": fmt, "locale": locale, "lang": locale.replace("_", "-"),
        "data": data, "department": data["department"],
        "period": fmt.month(data["month"]),
        "cutoff": tr["cut_off"].format(cutoff=f"{first_next.isoformat()} 00:00 ({tz})"),
        "generated": generated_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M"),
        "tiles": tiles(data, targets, fmt),
        "counts": counts,
        "highlights": highlights(data, targets, fmt, policy.report.highlights),
        "charts": charts,
        "quality": quality_lines(data["quality"], tr),
    }


def _int(value: float | None) -> str:
    return "0" if value is None else f"{int(value):,}"


def quality_lines(quality: dict[str, Any], tr: dict[str, Any]) -> list[str]:
    q = tr["quality"]
    lines = []
    if quality.get("do_not_call_customers"):
        lines.append(q["do_not_call_customers"].format(
            count=quality["do_not_call_customers"], visits=quality.get("do_not_call_visits", 0)))
    for key in ("unrated_closed_tickets", "invalid_ratings", "tickets_without_department",
                "parse_error_rows", "quarantined"):
        if quality.get(key):
            lines.append(q[key].format(count=quality[key]))
    if not lines:
        lines.append(q["clean"])
    return lines


def render_html(data: dict[str, Any], policy, locale: str | None = None,
                generated_at: dt.datetime | None = None) -> str:
    return environment().get_template("report.html.j2").render(
        build_context(data, policy, locale, generated_at))


# ================================================================= PDF
class FetchRefused(ValueError):
    """A URL outside include/templates/ that the report renderer will not fetch."""


def template_only_fetcher(root: Path = TEMPLATES_DIR):
    """A WeasyPrint URL fetcher (weasyprint.urls.URLFetcher subclass) that serves files under
    `root` only; everything else (other files, http(s), data:, ...) is refused and recorded.

    `.requested` lists every URL asked for, `.refused` the ones refused."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = Path(root).resolve()

    class TemplateOnlyFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file",), allow_redirects=False,
                             fail_on_errors=False)
            self.requested: list[str] = []
            self.refused: list[str] = []
            self._lock = threading.Lock()

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            with self._lock:
                self.requested.append(url)
            path = self._local_path(url)
            if path is None:
                with self._lock:
                    self.refused.append(url)
                raise FetchRefused(f"refused to fetch {url!r}: only files under {root}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body=path.read_bytes(),
                                      headers={"Content-Type": mime})

        @staticmethod
        def _local_path(url: str) -> Path | None:
            parts = urlsplit(url)
            if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
                return None
            path = Path(unquote(parts.path)).resolve()  # symlinks and .. resolved first
            if not path.is_relative_to(root) or not path.is_file():
                return None
            return path

    return TemplateOnlyFetcher()


def render_pdf(html: str, fetcher=None) -> bytes:
    """The PDF of `html`; relative URLs resolve against include/templates/report/."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # one line per step
    fetcher = fetcher or template_only_fetcher()
    document = HTML(string=html, base_url=REPORT_DIR.as_uri() + "/", url_fetcher=fetcher)
    return document.write_pdf()


def render_report(data: dict[str, Any], policy, target: Path, locale: str | None = None
                  ) -> Path:
    """Render one department's PDF to `target` (atomically)."""
    from revisit.io.files import write_bytes

    return write_bytes(target, render_pdf(render_html(data, policy, locale)))


# ================================================================= e-mail bodies
def email_content(data: dict[str, Any], policy, locale: str | None = None
                  ) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the message to the department head."""
    context = build_context(data, policy, locale)
    tr = context["tr"]
    dept = data["department"]
    subject = tr["email"]["subject"].format(
        department=dept.get("name") or dept["department_id"], month=context["period"])
    context["subject"] = " ".join(subject.split())  # no CR / LF from CRM text in a header
    env = environment()
    text = env.get_template("email.txt.j2").render(context)
    html = env.get_template("email.html.j2").render(context)
    return context["subject"], text, html


__all__ = [
    "REPORT_DIR",
    "TARGET_KPIS",
    "FetchRefused",
    "Formats",
    "build_context",
    "email_content",
    "highlights",
    "line_chart",
    "load_translations",
    "render_html",
    "render_pdf",
    "render_report",
    "report_data",
    "template_only_fetcher",
    "tiles",
]
