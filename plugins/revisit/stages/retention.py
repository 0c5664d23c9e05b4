"""Retention: the daily run deletes the partitions holding personal data once they are older
than policy `retention.snapshot_days` (DESIGN.md "Configuration": retention).

PIPL art. 19 (《个人信息保护法》第十九条): "个人信息的保存期限应当为实现处理目的所必要的最短
时间". What a partition of D is kept for is a rerun or a what-if replay of D (both need D's
snapshot); once that window has passed, nothing the pipeline does reads it again.

What goes (every one holds customers' names, phones or CRM text):
- a day's snapshots/D, clean/D, handoff/D, quality/D (the quarantine holds the offending
  values), call_lists/D (names, phones), sla/D (the digests name the customer, with a masked
  phone) — aged from D;
- a month's snapshots/M, quality/M, report_data/M (customer names of the report's tables) —
  aged from M's cut-off, the 1st of M+1 (the day that snapshot was taken as of); likewise a
  quarter's report_data/<YYYY>-Q<n> (the company report's data), aged from the 1st after it.

A replay, replays/<replay_id>/, holds a copy of what its period's run holds (clean frames,
call lists): it goes whole with its period, aged like the period it replayed (its replay.json
says which; else the id's leading day or month, as the default ids begin; a replay folder
that says neither is kept and named in the log).

What stays: reports/M (the delivered PDFs, kpis.csv, agents.csv: the monthly review itself)
and the results database (ids and verdicts, no names or phones). A folder that is no
partition name (a date YYYY-MM-DD or a month YYYY-MM) is never touched, nor today's partition
or a newer one.

Each partition goes atomically: renamed to a hidden trash name first (one rename: readers and
snapshot_exists stop seeing it at once), then deleted; a crash between the two leaves only the
trash, which the next run removes. A rerun finds nothing more to delete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from revisit.core.periods import DAY_PATTERN, MONTH_PATTERN, QUARTER_PATTERN, month_cutoff_date

log = logging.getLogger(__name__)

# Per kind of partition: the output-root folders that hold it (see the module docstring).
DAY_FOLDERS = ("snapshots", "clean", "handoff", "quality", "call_lists", "sla")
MONTH_FOLDERS = ("snapshots", "quality", "report_data")
REPLAYS = "replays"  # replays/<replay_id>/: aged by the period each replayed
_LEADING_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{4}-\d{2}|\d{4}-Q[1-4])(?:_|$)")
TRASH_SUFFIX = ".expired.tmp"  # .<name>.<pid>.expired.tmp: hidden, like atomic_dir's temps


@dataclass(frozen=True)
class Expired:
    """One partition past its retention: `folder` (snapshots, quality ...) / `name`."""

    path: Path
    folder: str
    name: str


def partition_age(name: str, today: dt.date) -> int | None:
    """Days between a partition's reference day and `today`: a day D is aged from D, a month M
    from its cut-off (the 1st of M+1), a quarter from the 1st after it. None for a name that
    is no partition."""
    day = _reference_day(name)
    return None if day is None else (today - day).days


def _reference_day(name: str) -> dt.date | None:
    try:
        if DAY_PATTERN.fullmatch(name):
            return dt.date.fromisoformat(name)
    except ValueError:  # 2026-02-30: not a day
        return None
    if MONTH_PATTERN.fullmatch(name) or QUARTER_PATTERN.fullmatch(name):
        return month_cutoff_date(name)  # a quarter's: the 1st after its last month
    return None


def expired_partitions(root: Path, today: dt.date, keep_days: int) -> list[Expired]:
    """The partitions under the output root `root` older than `keep_days` on `today` (age >
    keep_days), never today's or a newer one, in a stable order."""
    found = []
    for folder in sorted(set(DAY_FOLDERS) | set(MONTH_FOLDERS)):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            name = path.name
            if not path.is_dir() or path.is_symlink() or name.startswith("."):
                continue
            kinds = DAY_FOLDERS if DAY_PATTERN.fullmatch(name) else MONTH_FOLDERS
            if folder not in kinds:
                continue
            age = partition_age(name, today)
            if age is None or age <= 0 or age <= keep_days:  # never today's nor a newer one
                continue
            found.append(Expired(path, folder, name))
    return found


def expired_replays(root: Path, today: dt.date, keep_days: int) -> list[Expired]:
    """The replays under `root` whose replayed period is older than `keep_days` on `today`."""
    base = root / REPLAYS
    found = []
    for path in sorted(base.iterdir()) if base.is_dir() else []:
        if not path.is_dir() or path.is_symlink() or path.name.startswith("."):
            continue
        period = _replayed_period(path)
        age = partition_age(period, today) if period else None
        if age is None:
            log.warning("retention: replay %s names no period (replay.json): kept", path.name)
        elif age > keep_days:
            found.append(Expired(path, REPLAYS, path.name))
    return found


def _replayed_period(folder: Path) -> str | None:
    record = folder / "replay.json"
    try:
        period = json.loads(record.read_text(encoding="utf-8")).get("period")
    except (OSError, ValueError, AttributeError):
        period = None
    if isinstance(period, str) and _reference_day(period) is not None:
        return period
    leading = _LEADING_PERIOD.match(folder.name)
    return leading.group(1) if leading else None


def delete_partition(partition: Expired) -> None:
    """Rename the partition to its trash name (atomic), then delete the trash."""
    trash = partition.path.with_name(f".{partition.name}.{os.getpid()}{TRASH_SUFFIX}")
    os.replace(partition.path, trash)
    shutil.rmtree(trash)


def remove_trash(root: Path) -> int:
    """Delete what an interrupted retention left renamed but not yet deleted."""
    removed = 0
    for folder in sorted(set(DAY_FOLDERS) | set(MONTH_FOLDERS) | {REPLAYS}):
        base = root / folder
        if not base.is_dir():
            continue
        for trash in sorted(base.glob(f".*{TRASH_SUFFIX}")):
            shutil.rmtree(trash, ignore_errors=True)
            removed += 1
    return removed


def apply_retention(root: Path, today: dt.date, keep_days: int) -> dict:
    """Delete every expired partition under `root` and every expired replay (whole, never a
    partition inside one); counts per folder, logged. `today`: the run's call date D, so a
    rerun of D deletes what D's first run did."""
    leftovers = remove_trash(root)
    expired = [*expired_partitions(root, today, keep_days),
               *expired_replays(root, today, keep_days)]
    deleted: dict[str, int] = {folder: 0 for folder in sorted(set(DAY_FOLDERS) |
                                                              set(MONTH_FOLDERS) | {REPLAYS})}
    for partition in expired:
        delete_partition(partition)
        deleted[partition.folder] += 1
    kept_from = today - dt.timedelta(days=keep_days)
    for folder, count in deleted.items():
        log.info("retention: %d partition(s) of %s/ deleted (reference day before %s, "
                 "retention.snapshot_days = %d)", count, folder, kept_from, keep_days)
    return {"deleted": deleted, "total": len(expired), "kept_from": kept_from.isoformat(),
            "keep_days": keep_days, "trash_removed": leftovers}


__all__ = [
    "DAY_FOLDERS",
    "MONTH_FOLDERS",
    "REPLAYS",
    "Expired",
    "apply_retention",
    "delete_partition",
    "expired_partitions",
    "expired_replays",
    "partition_age",
    "remove_trash",
]
