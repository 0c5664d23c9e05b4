"""`python -m revisit replay`: the what-if replay for a data analyst, without Airflow.

    python -m revisit replay --date 2026-10-16 --profile after-sales-handbook
    python -m revisit replay --month 2026-10 --profile after-sales-handbook [--pdf]

It runs the stage functions the DAG tasks run, over partitions built as revisit.bridge.tasks
builds a replay's (root replays/<replay_id>/ of the output root, the original root as
`source`), then compares with the original run (revisit.stages.replay) and prints the summary.
Like a replay in Airflow it reads only the stored snapshot (never the CRM), sends nothing and
writes nothing outside replays/<replay_id>/: the original results database is opened read-only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from revisit.core.periods import MONTH_PATTERN

log = logging.getLogger("revisit.cli")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _month(text: str) -> str:
    if not MONTH_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM (MM 01-12)")
    return text


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m revisit", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    replay = commands.add_parser(
        "replay", help="recompute a past day or month under another policy and compare",
        description="Recompute a past call date or report month from its stored snapshot under "
        "another policy into replays/<replay_id>/ of the output root, and write changes.csv, "
        "summary.md and replay.json there. Nothing is sent or published.")
    period = replay.add_mutually_exclusive_group(required=True)
    period.add_argument("--date", type=_date, help="a call date D (YYYY-MM-DD) of a daily run")
    period.add_argument("--month", type=_month, help="a report month M (YYYY-MM)")
    replay.add_argument("--profile", help="a policy profile of include/config/profiles/ or a "
                        "policy file (default: REVISIT_POLICY, else policy.yaml)")
    replay.add_argument("--output-root", type=Path, help="the original run's output root "
                        "(default: REVISIT_OUTPUT_DIR, else output/)")
    replay.add_argument("--replay-id", help="the replay's folder name (default: "
                        "<period>_<profile>_<policy version>)")
    replay.add_argument("--results-url", help="the original results database, read for the "
                        "month's quality history (default: results.sqlite of the output root, "
                        "opened read-only)")
    replay.add_argument("--pdf", action="store_true", help="monthly: render the PDFs as well")
    replay.add_argument("-v", "--verbose", action="store_true", help="log the stages' progress")
    return top


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with the summary printed; 1 with the reason when the replay cannot be made."""
    from revisit.config.policy import PolicyError
    from revisit.core.errors import RevisitError

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        result = replay_day(args) if args.date else replay_month(args)
    except (RevisitError, PolicyError, FileNotFoundError, ValueError) as error:
        if args.verbose:
            log.exception("replay failed")
        print(f"python -m revisit replay: {error}", file=sys.stderr)
        return 1
    print(Path(result["summary_md"]).read_text(encoding="utf-8"))
    print(f"written: {Path(result['changes_csv']).parent}")
    return 0


def _setup(args: argparse.Namespace, period: str):
    """The policy, the original output root and the replay's root (the bridge's rule)."""
    from revisit.config.paths import output_root
    from revisit.config.policy import load_profile
    from revisit.stages.replay import replay_id, replay_root

    policy = load_profile(args.profile)
    source = (args.output_root or output_root()).resolve()
    return policy, source, replay_root(source, replay_id(period, policy, args.replay_id))


def replay_day(args: argparse.Namespace) -> dict:
    """run_quality, run_call_lists, run_sla over the stored snapshot of D, then compare_day."""
    from revisit.rules.calendar import BusinessCalendar
    from revisit.stages.daily import run_call_lists, run_quality, run_sla
    from revisit.stages.partitions import DayPartitions
    from revisit.stages.replay import compare_day, require_snapshot

    policy, source, root = _setup(args, args.date.isoformat())
    parts = DayPartitions(root, args.date, source=source)
    require_snapshot(parts)
    calendar = BusinessCalendar(policy.calendar)
    log.info("quality: %s", run_quality(parts, policy))
    log.info("call lists: %s", run_call_lists(parts, policy, calendar))
    log.info("sla: %s", run_sla(parts, policy, calendar))
    return compare_day(parts, policy)


def replay_month(args: argparse.Namespace) -> dict:
    """compute_kpis over the stored snapshot of M (the original results database read-only,
    for the month's quality history), the PDFs with --pdf, then compare_month."""
    from revisit.stages.monthly import compute_kpis, render_department
    from revisit.stages.partitions import MonthPartitions
    from revisit.stages.replay import compare_month, require_snapshot

    policy, source, root = _setup(args, args.month)
    parts = MonthPartitions(root, args.month, source=source)
    require_snapshot(parts)
    kpis = compute_kpis(parts, policy, args.results_url or read_only_results_url(source))
    if args.pdf:
        for department_id in kpis["departments"]:
            log.info("pdf: %s", render_department(parts, policy, department_id))
    return compare_month(parts, policy)


def read_only_results_url(source: Path) -> str:
    """results.sqlite of the original output root as a read-only SQLite URI: the replay can
    read the quality history but neither create the file nor write a row to it. Without the
    file (the results live elsewhere: pass --results-url), an empty in-memory database: no
    history, as on a first run."""
    from urllib.parse import quote

    if not (source / "results.sqlite").is_file():
        log.warning("no results.sqlite in %s: the month is replayed without the call-list "
                    "and quality history (--results-url names the results database)", source)
        return "sqlite://"
    return f"sqlite:///file:{quote(str(source / 'results.sqlite'))}?mode=ro&uri=true"


__all__ = ["main", "parser", "read_only_results_url", "replay_day", "replay_month"]
