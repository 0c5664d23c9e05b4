"""The params that make a run reproducible or a what-if (DESIGN.md "Reproducible reruns and
what-if replay"): a rerun keeps the period's stored snapshot unless params.refresh_snapshot, a
replay reads the original snapshot, writes under replays/<replay_id>/ and sends nothing."""

from __future__ import annotations

import datetime as dt
import json

import pendulum
import pytest

from revisit.bridge import tasks
from revisit.config.policy import DEFAULT_POLICY_PATH
from revisit.config.schema import TABLES
from revisit.core.errors import BadParam
from revisit.io.extract import SnapshotMissing


def context(**params) -> dict:
    return {"params": {"call_date": "2026-10-16", **params},
            "logical_date": pendulum.datetime(2026, 10, 15, 22, 30, tz="UTC")}


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("REVISIT_POLICY", raising=False)
    return tmp_path


@pytest.fixture
def extracted(monkeypatch) -> list[dt.date]:
    """Record each extraction instead of reading a CRM (it writes a complete snapshot)."""
    calls: list[dt.date] = []

    def extract(url, cutoff_date, target, **kwargs):
        calls.append(cutoff_date)
        target.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            (target / f"{name}.parquet").write_bytes(b"")
        return {name: 0 for name in TABLES}

    monkeypatch.setattr("revisit.io.extract.extract_snapshot", extract)
    monkeypatch.setattr("revisit.bridge.connections.airflow_sqlalchemy_url",
                        lambda conn_id: "sqlite://")
    return calls


def test_a_rerun_keeps_the_stored_snapshot(root, extracted):
    first = tasks.extract_daily(context())
    again = tasks.extract_daily(context())
    assert extracted == [dt.date(2026, 10, 16)]
    assert first["extracted"] is True and again["extracted"] is False


def test_refresh_snapshot_re_extracts_a_stored_period(root, extracted):
    tasks.extract_daily(context())
    tasks.extract_daily(context(refresh_snapshot=True))
    assert extracted == [dt.date(2026, 10, 16)] * 2


def test_a_half_written_snapshot_is_not_kept(root, extracted):
    (root / "snapshots" / "2026-10-16").mkdir(parents=True)
    (root / "snapshots" / "2026-10-16" / "customers.parquet").write_bytes(b"")
    tasks.extract_daily(context())
    assert extracted == [dt.date(2026, 10, 16)]


def test_a_replay_reads_the_original_snapshot_and_writes_under_replays(root):
    parts, _ = tasks.day_partitions(context(replay=True, replay_id="what-if"))
    assert parts.replay and parts.root == root / "replays" / "what-if"
    assert parts.snapshot == root / "snapshots" / "2026-10-16"
    assert parts.call_lists == root / "replays" / "what-if" / "call_lists" / "2026-10-16"


def test_a_replay_never_extracts_even_without_a_snapshot(root, extracted):
    """(the message: test_profile_and_retention_params.py)"""
    with pytest.raises(Exception, match=r"no stored snapshot of 2026-10-16") as caught:
        tasks.extract_daily(context(replay=True))
    assert isinstance(caught.value.__cause__, SnapshotMissing) and extracted == []


def test_a_replay_sends_nothing_even_with_send_email_on():
    assert tasks.sending(context(send_email=True)) is True
    assert tasks.sending(context(send_email=True, replay=True)) is False


def test_the_default_replay_id_names_period_and_policy_version(root):
    parts, policy = tasks.day_partitions(context(replay=True))
    name = parts.root.name
    assert name.startswith("2026-10-16_") and name.endswith(f"_{policy.version}"), name


@pytest.mark.parametrize("replay_id", ["../escape", "a/b", ".hidden"])
def test_a_replay_id_that_is_no_folder_name_is_a_bad_param(root, replay_id):
    with pytest.raises(BadParam, match=r"params\.replay_id"):
        tasks.day_partitions(context(replay=True, replay_id=replay_id))


def test_policy_profile_may_be_a_policy_file(root):
    parts, policy = tasks.day_partitions(context(policy_profile=str(DEFAULT_POLICY_PATH)))
    assert policy.version and not parts.replay


def test_a_monthly_replays_summary_compares_and_never_opens_the_results_database(
        root, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    compared = []
    monkeypatch.setattr("revisit.stages.replay.compare_month",
                        lambda parts, policy: compared.append(parts.month) or {"changes": 0})
    monkeypatch.setattr("revisit.stages.monthly.summarize",
                        lambda *a, **k: pytest.fail("the ledger was read"))
    context = {"params": {"month": "2026-10", "replay": True, "replay_id": "m"}}
    assert tasks.summary(context) == {"month": "2026-10", "replay": {"changes": 0}}
    assert compared == ["2026-10"] and not (root / "results.sqlite").exists()


def _daily_snapshot(root, day: str, business_tz: str = "Asia/Shanghai"):
    folder = root / "snapshots" / day
    folder.mkdir(parents=True)
    for name in TABLES:
        (folder / f"{name}.parquet").write_bytes(name.encode())
    (folder / "snapshot.json").write_text(json.dumps({
        "extracted_at": f"{day}T06:00:04+08:00", "cutoff": day, "business_tz": business_tz,
        "source_tz": business_tz, "rows": {name: 1 for name in TABLES}}))
    return folder


def test_the_monthly_run_takes_the_daily_snapshot_of_its_cut_off_instead_of_extracting(
        root, extracted):
    """October's run sees the CRM as of 11-01 00:00, as the daily run of 11-01 did."""
    daily = _daily_snapshot(root, "2026-11-01")
    result = tasks.extract_monthly({"params": {"month": "2026-10"}})
    month = root / "snapshots" / "2026-10"
    assert extracted == [] and result["from"] == "2026-11-01" and result["extracted"] is False
    assert sorted(p.name for p in month.iterdir()) == sorted(p.name for p in daily.iterdir())
    assert (month / "visits.parquet").read_bytes() == b"visits"
    assert (month / "visits.parquet").stat().st_ino == (daily / "visits.parquet").stat().st_ino


def test_a_daily_snapshot_of_another_zone_or_day_is_not_taken_for_the_month(root, extracted):
    _daily_snapshot(root, "2026-11-01", business_tz="Europe/Berlin")  # another instant
    _daily_snapshot(root, "2026-10-31")  # another day
    tasks.extract_monthly({"params": {"month": "2026-10"}})
    assert extracted == [dt.date(2026, 11, 1)]
