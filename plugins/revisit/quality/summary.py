"""The written quality report (quality/D/): quarantine.csv (with the offending values: a
personal-data file like the call lists), summary.csv per table, checks.csv per check, and the
readable summary.md / summary.html (ids and reasons only) from include/templates/, which also
say how many values extract changed (text that was not valid UTF-8, control characters), per
table and column, with the first row keys.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revisit.config.paths import TEMPLATES_DIR
from revisit.io.extract import CONTROL_CHARACTERS, INVALID_UTF8, PARSE_PROBLEMS
from revisit.io.files import atomic_dir
from revisit.io.spreadsheet import write_csv

if TYPE_CHECKING:
    from revisit.quality.gate import QualityResult

EXAMPLES_PER_CHECK = 5
OUTPUT_FILES = {"quarantine": "quarantine.csv", "quarantine_typed": "quarantine.parquet",
                "summary": "summary.csv",
                "checks": "checks.csv", "summary_md": "summary.md",
                "summary_html": "summary.html"}

_PARSE_REASON = re.compile(
    r"^(\S+: (?:" + "|".join(f"(?:{p})" for p in PARSE_PROBLEMS.values()) + r")) \(.*\)$",
    re.DOTALL)
CHANGES = {INVALID_UTF8: "bytes that are not UTF-8 read as U+FFFD",
           CONTROL_CHARACTERS: "control characters removed"}


def _safe_reason(check: str, reason: str) -> str:
    """A reason fit for the readable summary: parse errors lose the raw value they quote
    (it may be anything, even personal data); the other reasons hold ids, codes, numbers and
    timestamps only."""
    if check not in PARSE_PROBLEMS:
        return reason
    match = _PARSE_REASON.match(reason)
    return match.group(1) if match else "a value does not parse (see quarantine.csv)"


def _replaced(result: QualityResult) -> list[dict[str, Any]]:
    """Values extract changed, per table, column and change: how many, the first row keys."""
    return [{"table": r.table, "column": r.column,
             "change": CHANGES.get(str(r.change), str(r.change)), "count": int(r.values),
             "rows": [str(k) for k in (r.keys or [])]}
            for r in result.replaced.itertuples(index=False)]


def _failing_checks(result: QualityResult) -> list[dict[str, Any]]:
    """The checks that failed rows, each with its first EXAMPLES_PER_CHECK quarantined rows
    (key and a safe reason): enough to see what went wrong without the values."""
    q = result.quarantine
    checks = []
    failing = result.checks[result.checks["failed_rows"] > 0]
    for row in failing.itertuples(index=False):
        sample = q[(q["table"] == row.table) & (q["check"] == row.check)
                   & (q["column"] == row.column)].head(EXAMPLES_PER_CHECK)
        checks.append({
            "table": row.table, "check": row.check, "column": row.column,
            "failed_rows": int(row.failed_rows), "description": row.description,
            "examples": [{"row_key": str(k), "reason": _safe_reason(row.check, str(r))}
                         for k, r in zip(sample["row_key"], sample["reason"], strict=True)],
        })
    return checks


def unaddressed_agents(clean: dict) -> list[str]:
    """Active agents whose e-mail address is not one Revisit can send to: their call list is
    written but cannot reach them (revisit.delivery.agent_mail skips them), so the data team
    reads their ids here."""
    import pandas as pd

    from revisit.core.addresses import valid_address

    agents = clean.get("agents")
    if agents is None or agents.empty or "email" not in agents:
        return []
    active = (pd.to_numeric(agents["active"], errors="coerce") == 1).fillna(False)
    bad = ~agents["email"].map(valid_address).astype(bool)
    return sorted(agents.loc[(active & bad).to_numpy(bool), "agent_id"].astype(str))


def _render_context(result: QualityResult, call_date: dt.date | str) -> dict[str, Any]:
    """What the summary templates show: per table, per failing check, and the totals."""
    return {
        "unaddressed_agents": unaddressed_agents(result.clean),
        "call_date": str(call_date),
        "stopped": result.stopped,
        "stop_reason": result.stop_reason or "",
        "tables": result.summary.to_dict("records"),
        "checks": _failing_checks(result),
        "checks_run": len(result.checks),
        "checks_clean": int((result.checks["failed_rows"] == 0).sum()),
        "quarantine_rows": len(result.quarantine),
        "examples_per_check": EXAMPLES_PER_CHECK,
        "replaced": _replaced(result),
    }


def _md_cell(value: object) -> str:
    """Text for a Markdown cell: a viewer renders inline HTML, so '<' and '&' are escaped."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace("\\", "\\\\")
            .replace("|", "\\|").replace("\n", " "))


def render_summary(result: QualityResult, call_date: dt.date | str, fmt: str = "md") -> str:
    """The readable quality summary (fmt 'md' or 'html'), from include/templates/. The HTML
    one is autoescaped; the Markdown one escapes its cells with the `md` filter instead
    (autoescape on top would escape them twice)."""
    from revisit.core.templating import make_environment

    env = make_environment(TEMPLATES_DIR, keep_trailing_newline=True)
    env.filters["md"] = _md_cell
    env.filters["pct"] = lambda share: f"{100 * share:.2f} %"
    return env.get_template(f"quality_summary.{fmt}.j2").render(
        **_render_context(result, call_date)
    )


def write_quality_outputs(result: QualityResult, folder: Path,
                          call_date: dt.date | str,
                          run_info: dict | None = None) -> dict[str, Path]:
    """Write quarantine.csv, summary.csv (per table), checks.csv (per check), summary.md and
    summary.html into `folder` (quality/D), replacing the folder whole and atomically;
    `run_info`: the run's provenance, written as run.json with them (revisit.io.runinfo)."""
    names = OUTPUT_FILES
    md = render_summary(result, call_date, "md")
    html = render_summary(result, call_date, "html")
    with atomic_dir(folder) as tmp:
        # The project's CSV writer: a bare CR inside an offending value is written as a line
        # break Python's csv quotes (read back as one row), formulas neutralised.
        for key, frame in (("quarantine", result.quarantine), ("summary", result.summary),
                           ("checks", result.checks)):
            write_csv(frame, tmp / names[key])
        # The same rows as written, for machines (publish): the CSV is for people, whose
        # spreadsheet must not run a key like '=1+1' (so the CSV shows it neutralised).
        result.quarantine.astype("string").to_parquet(tmp / names["quarantine_typed"],
                                                      index=False)
        (tmp / names["summary_md"]).write_text(md, encoding="utf-8")
        (tmp / names["summary_html"]).write_text(html, encoding="utf-8")
        if run_info is not None:
            from revisit.io.runinfo import write_run_info

            write_run_info(tmp, run_info)
    return {key: folder / name for key, name in names.items()}


# ----------------------------------------------------------------- SLA verdicts unknown
# The gate writes the summary before the SLA stage runs; the SLA stage then puts its own section
# into summary.md / summary.html between these markers (HTML comments: invisible in a viewer),
# leaving every byte outside them as the gate wrote it. A rerun of the SLA stage replaces the
# section; a rerun of the gate writes the summary afresh, without it, until SLA runs again.
SLA_UNKNOWN_LISTED = 20
SLA_UNKNOWN_BEGIN = "<!-- revisit:sla-unknown:begin -->"
SLA_UNKNOWN_END = "<!-- revisit:sla-unknown:end -->"


def _sla_unknown_section(unknown: Any, fmt: str, listed: int) -> str:
    """The section (markers included) for `unknown`: rows of SLA status `unknown` with
    ticket_id and metric (ids only), the count per metric and the first `listed` rows."""
    from html import escape

    total = len(unknown)
    per_metric = unknown["metric"].astype(str).value_counts(sort=False).sort_index()
    first = list(zip(unknown["ticket_id"].astype(str), unknown["metric"].astype(str),
                     strict=True))[:listed]
    if fmt == "md":
        lines = ["## SLA verdicts unknown", ""]
        if not total:
            lines.append("No SLA verdict is unknown.")
        else:
            lines += [f"{total} SLA verdict(s) are `unknown`: the ticket's record shows it moved "
                      "past the step but the step has no time stamp, so on time or late cannot "
                      "be told (counted as neither met nor breached; sla_status.csv has all).",
                      "", "| metric | unknown |", "| --- | ---: |"]
            lines += [f"| {_md_cell(m)} | {n} |" for m, n in per_metric.items()]
            lines += ["", f"First {len(first)} of {total}: " + ", ".join(
                f"`{_md_cell(t)}` {_md_cell(m)}" for t, m in first) + "."]
        body = "\n".join(lines)
    else:
        parts = ["<h2>SLA verdicts unknown</h2>"]
        if not total:
            parts.append("<p>No SLA verdict is unknown.</p>")
        else:
            parts.append(f"<p>{total} SLA verdict(s) are <code>unknown</code>: the ticket's record "
                         "shows it moved past the step but the step has no time stamp, so on time "
                         "or late cannot be told (counted as neither met nor breached; "
                         "sla_status.csv has all).</p>")
            parts.append("<table>\n<thead><tr><th>metric</th><th>unknown</th></tr></thead>\n"
                         "<tbody>\n" + "".join(
                             f"<tr><td>{escape(m)}</td><td class=\"n\">{n}</td></tr>\n"
                             for m, n in per_metric.items()) + "</tbody>\n</table>")
            parts.append(f"<p>First {len(first)} of {total}: " + ", ".join(
                f"<code>{escape(t)}</code> {escape(m)}" for t, m in first) + ".</p>")
        body = "\n".join(parts)
    return f"{SLA_UNKNOWN_BEGIN}\n{body}\n{SLA_UNKNOWN_END}"


def _with_section(text: str, section: str, fmt: str) -> str:
    """`text` with the section replaced (a rerun) or added: at the end of the Markdown, before
    </body> in the HTML (at the end when there is none)."""
    begin, end = text.find(SLA_UNKNOWN_BEGIN), text.find(SLA_UNKNOWN_END)
    if begin >= 0 and end > begin:
        return text[:begin] + section + text[end + len(SLA_UNKNOWN_END):]
    if fmt == "html" and "</body>" in text:
        at = text.rindex("</body>")
        return text[:at] + section + "\n" + text[at:]
    return text + ("" if text.endswith("\n") or not text else "\n") + "\n" + section + "\n"


def write_sla_unknown_section(folder: Path, unknown: Any,
                              listed: int = SLA_UNKNOWN_LISTED) -> list[Path]:
    """Put the "SLA verdicts unknown" section into quality/D's summary.md and summary.html
    (each rewritten atomically; the rest of each file byte-identical). `unknown`: the SLA rows
    of status unknown (ticket_id, metric). Files that do not exist are left alone (returns the
    paths written)."""
    from revisit.io.files import write_text

    written = []
    for fmt, key in (("md", "summary_md"), ("html", "summary_html")):
        path = folder / OUTPUT_FILES[key]
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        write_text(path, _with_section(text, _sla_unknown_section(unknown, fmt, listed), fmt))
        written.append(path)
    return written


__all__ = ["EXAMPLES_PER_CHECK", "OUTPUT_FILES", "SLA_UNKNOWN_LISTED", "render_summary",
           "write_quality_outputs", "write_sla_unknown_section"]
