"""Retention (revisit.stages.retention): the partitions holding personal data older than
retention.snapshot_days go, each atomically, and nothing else — not today's or a newer one,
not reports/, not replays/, not a folder that is no partition. A rerun deletes nothing more.

Tree around the boundary for D = 2026-11-20 and 62 days: 2026-09-19 is 62 days old (kept),
2026-09-18 63 (deleted). A month M is aged from its cut-off, the 1st of M+1: 2026-08 from
2026-09-01 (80 days: deleted), 2026-09 from 2026-10-01 (50 days: kept).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

import pytest

from revisit.stages import retention
from revisit.stages.retention import apply_retention, expired_partitions, partition_age

D = dt.date(2026, 11, 20)
KEEP = 62
OLD_DAYS = ("2026-01-05", "2026-09-17", "2026-09-18")
KEPT_DAYS = ("2026-09-19", "2026-10-31", "2026-11-19", "2026-11-20", "2026-11-21")
OLD_MONTHS = ("2026-07", "2026-08")
KEPT_MONTHS = ("2026-09", "2026-10", "2026-11")
DAY_FOLDERS = ("snapshots", "clean", "handoff", "quality", "call_lists", "sla")
MONTH_FOLDERS = ("snapshots", "quality", "report_data")
STRAYS = ("latest", "2026-02-30", "notes-2020-01-01")


def _tree(root):
    """Every kind of partition on both sides of the boundary, plus what must stay."""
    for folder in DAY_FOLDERS:
        for day in OLD_DAYS + KEPT_DAYS:
            (root / folder / day).mkdir(parents=True)
            (root / folder / day / "data.csv").write_text("customer,phone\n")
    for folder in MONTH_FOLDERS:
        for month in OLD_MONTHS + KEPT_MONTHS:
            (root / folder / month).mkdir(parents=True, exist_ok=True)
            (root / folder / month / "x.json").write_text("{}")
    for quarter in ("2026-Q2", "2026-Q3"):  # the company report's data of a quarter
        (root / "report_data" / quarter / "company").mkdir(parents=True)
    for stray in STRAYS:
        (root / "snapshots" / stray).mkdir()
    (root / "snapshots" / "2020-01-01.txt").write_text("a file, no partition")
    for month in OLD_MONTHS:  # reports/M: the delivered review stays
        (root / "reports" / month).mkdir(parents=True)
        (root / "reports" / month / "D01.pdf").write_bytes(b"%PDF")
    for folder in ("snapshots", "call_lists"):  # a replay goes whole with its period, or stays
        (root / "replays" / "r1" / folder / "2020-01-01").mkdir(parents=True)  # no period: kept
    (root / "replays" / "2026-09-18_after-sales-handbook_0123456789ab" / "clean").mkdir(
        parents=True)  # the default id's period: 63 days -> gone
    (root / "replays" / "2026-10_x").mkdir(parents=True)  # a month, cut-off 11-01: kept
    for name, period in (("old-what-if", "2026-08"), ("new-what-if", "2026-11-01")):
        (root / "replays" / name).mkdir(parents=True)  # replay.json says: 80 days / 19 days
        (root / "replays" / name / "replay.json").write_text(json.dumps({"period": period}))
    (root / "results.sqlite").write_bytes(b"")


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _everything(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("name", "age"), [
    ("2026-11-20", 0), ("2026-09-19", 62), ("2026-09-18", 63), ("2026-11-21", -1),
    ("2026-10", 19), ("2026-09", 50), ("2026-08", 80), ("2026-11", -11),
    ("2026-Q3", 50), ("2026-Q2", 142), ("2026-Q4", -42),
    ("latest", None), ("2026-02-30", None), ("2026-13", None), ("2026-Q5", None),
])
def test_a_partitions_age_is_from_its_day_or_its_months_cut_off(name, age):
    assert partition_age(name, D) == age


def test_retention_deletes_exactly_the_expired_partitions(tmp_path):
    root = tmp_path / "out"
    _tree(root)
    result = apply_retention(root, D, KEEP)
    for folder in DAY_FOLDERS:
        kept = set(_names(root / folder))
        assert not kept & set(OLD_DAYS), folder
        assert set(KEPT_DAYS) <= kept, folder
    for folder in MONTH_FOLDERS:
        kept = set(_names(root / folder))
        assert not kept & set(OLD_MONTHS), folder
        assert set(KEPT_MONTHS) <= kept, folder
    assert set(STRAYS) | {"2020-01-01.txt"} <= set(_names(root / "snapshots"))
    assert _names(root / "reports") == list(OLD_MONTHS)
    assert (root / "replays" / "r1" / "snapshots" / "2020-01-01").is_dir()
    assert (root / "replays" / "r1" / "call_lists" / "2020-01-01").is_dir()
    assert _names(root / "replays") == ["2026-10_x", "new-what-if", "r1"]
    assert (root / "results.sqlite").is_file()
    # No trash left, and the counts per folder say what went.
    assert not [p for p in root.rglob(".*")]
    assert set(_names(root / "report_data")) == set(KEPT_MONTHS) | {"2026-Q3"}
    assert result["deleted"] == {
        "call_lists": 3, "clean": 3, "handoff": 3, "quality": 3 + 2, "report_data": 2 + 1,
        "replays": 2, "sla": 3, "snapshots": 3 + 2}
    assert result["total"] == sum(result["deleted"].values())
    assert result["kept_from"] == "2026-09-19"


def test_a_rerun_deletes_nothing_more(tmp_path):
    root = tmp_path / "out"
    _tree(root)
    apply_retention(root, D, KEEP)
    before = _everything(root)
    result = apply_retention(root, D, KEEP)
    assert result["total"] == 0 and set(result["deleted"].values()) == {0}
    assert _everything(root) == before


def test_never_todays_partition_nor_a_newer_one_even_with_a_tiny_window(tmp_path):
    root = tmp_path / "out"
    _tree(root)
    apply_retention(root, D, 1)
    for folder in DAY_FOLDERS:
        assert {"2026-11-19", "2026-11-20", "2026-11-21"} <= set(_names(root / folder))
    # The month in progress (cut-off 12-01, after D) stays; October (cut-off 11-01) goes.
    assert "2026-11" in _names(root / "snapshots") and "2026-10" not in _names(root / "snapshots")


def test_counts_per_folder_are_logged(tmp_path, caplog):
    root = tmp_path / "out"
    _tree(root)
    with caplog.at_level(logging.INFO, logger="revisit.stages.retention"):
        apply_retention(root, D, KEEP)
    assert "retention: 5 partition(s) of snapshots/ deleted" in caplog.text
    assert "retention: 3 partition(s) of call_lists/ deleted" in caplog.text


def test_a_partition_goes_whole_a_crash_leaves_only_hidden_trash(tmp_path, monkeypatch):
    # Killed after the rename, before the delete: the partition is gone from its name at once
    # (nothing half-deleted looks complete), and the next run removes the trash.
    root = tmp_path / "out"
    (root / "snapshots" / "2026-01-05").mkdir(parents=True)
    (root / "snapshots" / "2026-01-05" / "customers.parquet").write_bytes(b"x")

    def crash(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(retention.shutil, "rmtree", crash)
    with pytest.raises(KeyboardInterrupt):
        apply_retention(root, D, KEEP)
    assert _names(root / "snapshots") == [f".2026-01-05.{os.getpid()}.expired.tmp"]
    monkeypatch.undo()
    result = apply_retention(root, D, KEEP)
    assert result["trash_removed"] == 1
    assert _names(root / "snapshots") == []


def test_an_empty_output_root_is_no_error(tmp_path):
    assert apply_retention(tmp_path / "none", D, KEEP)["total"] == 0
    assert expired_partitions(tmp_path, D, KEEP) == []
