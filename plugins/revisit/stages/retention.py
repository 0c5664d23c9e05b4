"""Retention: the daily run deletes the partitions holding personal data once they are older
than policy `retention.snapshot_days` (DESIGN.md "Configuration": retention).

PIPL art. 19 (《个人信息保护法》第十九条): "个人信息的保存期限应当为实现处理目的所必要的最短
时间". What a partition of D is kept for is a rerun or a what-if replay of D (both need D's
snapshot); once that window has passed, nothing the pipeline does reads it again.

What goes (every one holds customers' names, phones or CRM text):
- a day's snapshots/D, clean/D, handoff/D, quality/D (the quarantine holds the offending
  values), call_lists/D (names, phones), sla/D (the digests name the customer, with a masked
  phone) — aged from D;
- a month's snapshots/M, clean/M, handoff/M (the gated rows, by shard), quality/M,
  report_data/M (customer names of the report's tables) —
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

Each partition goes atomically: on a disk renamed to a hidden trash name first (one rename:
readers and snapshot_exists stop seeing it at once), then deleted, a crash between the two
leaving only the trash, which the next run removes; on object storage its manifest goes first
(revisit.bridge.object_store). A rerun finds nothing more to delete.
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
from typing import Protocol

from revisit.core.periods import DAY_PATTERN, MONTH_PATTERN, QUARTER_PATTERN, month_cutoff_date

log = logging.getLogger(__name__)

# Per kind of partition: the output-root folders that hold it (see the module docstring).
DAY_FOLDERS = ("snapshots", "clean", "handoff", "quality", "call_lists", "sla")
MONTH_FOLDERS = ("snapshots", "clean", "handoff", "quality", "report_data")
REPLAYS = "replays"  # replays/<replay_id>/: aged by the period each replayed
_LEADING_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{4}-\d{2}|\d{4}-Q[1-4])(?:_|$)")
TRASH_SUFFIX = ".expired.tmp"  # .<name>.<pid>.expired.tmp: hidden, like atomic_dir's temps
ALL_FOLDERS = tuple(sorted(set(DAY_FOLDERS) | set(MONTH_FOLDERS) | {REPLAYS}))


class Tree(Protocol):
    """The output root as retention sees it: folders by relative POSIX path."""

    def folders(self, rel: str) -> list[str]:
        """The names of the partition folders directly under `rel` (no hidden one, no
        symlink), sorted; [] when `rel` does not exist."""

    def read_text(self, rel: str) -> str | None:
        """A small file's text, None when it cannot be read."""

    def delete(self, rel: str) -> None:
        """Delete folder `rel` whole, invisible to readers in one step first."""

    def remove_trash(self) -> int:
        """Delete what an interrupted delete left; the number removed."""


@dataclass(frozen=True)
class LocalTree:
    """A local output root: a partition goes by one rename to a hidden trash name (readers
    and snapshot_exists stop seeing it at once), then is deleted; a crash between the two
    leaves only the trash, which the next run removes."""

    root: Path

    def folders(self, rel: str) -> list[str]:
        base = self.root / rel
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def read_text(self, rel: str) -> str | None:
        try:
            return (self.root / rel).read_text(encoding="utf-8")
        except (OSError, ValueError):
            return None

    def delete(self, rel: str) -> None:
        path = self.root / rel
        trash = path.with_name(f".{path.name}.{os.getpid()}{TRASH_SUFFIX}")
        os.replace(path, trash)
        shutil.rmtree(trash)

    def remove_trash(self) -> int:
        removed = 0
        for folder in ALL_FOLDERS:
            base = self.root / folder
            if not base.is_dir():
                continue
            for trash in sorted(base.glob(f".*{TRASH_SUFFIX}")):
                shutil.rmtree(trash, ignore_errors=True)
                removed += 1
        return removed


@dataclass(frozen=True)
class Expired:
    """One partition past its retention: `folder` (snapshots, quality ...) / `name`."""

    folder: str
    name: str

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.name}"


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


def _tree(root: Path | Tree) -> Tree:
    return LocalTree(root) if isinstance(root, Path) else root


def expired_partitions(root: Path | Tree, today: dt.date, keep_days: int) -> list[Expired]:
    """The partitions under the output root `root` older than `keep_days` on `today` (age >
    keep_days), never today's or a newer one, in a stable order."""
    tree = _tree(root)
    found = []
    for folder in sorted(set(DAY_FOLDERS) | set(MONTH_FOLDERS)):
        for name in tree.folders(folder):
            kinds = DAY_FOLDERS if DAY_PATTERN.fullmatch(name) else MONTH_FOLDERS
            if folder not in kinds:
                continue
            age = partition_age(name, today)
            if age is None or age <= 0 or age <= keep_days:  # never today's nor a newer one
                continue
            found.append(Expired(folder, name))
    return found


def expired_replays(root: Path | Tree, today: dt.date, keep_days: int) -> list[Expired]:
    """The replays under `root` whose replayed period is older than `keep_days` on `today`."""
    tree = _tree(root)
    found = []
    for name in tree.folders(REPLAYS):
        period = _replayed_period(tree, name)
        age = partition_age(period, today) if period else None
        if age is None:
            log.warning("retention: replay %s names no period (replay.json): kept", name)
        elif age > keep_days:
            found.append(Expired(REPLAYS, name))
    return found


def _replayed_period(tree: Tree, name: str) -> str | None:
    text = tree.read_text(f"{REPLAYS}/{name}/replay.json")
    try:
        period = json.loads(text).get("period") if text is not None else None
    except (ValueError, AttributeError):
        period = None
    if isinstance(period, str) and _reference_day(period) is not None:
        return period
    leading = _LEADING_PERIOD.match(name)
    return leading.group(1) if leading else None


def apply_retention(root: Path | Tree, today: dt.date, keep_days: int) -> dict:
    """Delete every expired partition under `root` (a local folder, or any Tree such as the
    object store's) and every expired replay (whole, never a partition inside one); counts
    per folder, logged. `today`: the run's call date D, so a rerun of D deletes what D's
    first run did."""
    tree = _tree(root)
    leftovers = tree.remove_trash()
    expired = [*expired_partitions(tree, today, keep_days),
               *expired_replays(tree, today, keep_days)]
    deleted: dict[str, int] = {folder: 0 for folder in ALL_FOLDERS}
    for partition in expired:
        tree.delete(partition.rel)
        deleted[partition.folder] += 1
    kept_from = today - dt.timedelta(days=keep_days)
    for folder, count in deleted.items():
        log.info("retention: %d partition(s) of %s/ deleted (reference day before %s, "
                 "retention.snapshot_days = %d)", count, folder, kept_from, keep_days)
    return {"deleted": deleted, "total": len(expired), "kept_from": kept_from.isoformat(),
            "keep_days": keep_days, "trash_removed": leftovers}


__all__ = [
    "ALL_FOLDERS",
    "DAY_FOLDERS",
    "MONTH_FOLDERS",
    "REPLAYS",
    "Expired",
    "LocalTree",
    "Tree",
    "apply_retention",
    "expired_partitions",
    "expired_replays",
    "partition_age",
]
