"""The run params of reproducible reruns, replays and retention (DESIGN.md "Reproducible reruns
and what-if replay"): params.policy_profile picks a profile or fails as a BadParam naming the
known ones; a replay of a date whose snapshot retention deleted fails saying so; the retention
task deletes by the run's policy and D, and a replay skips it."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import AirflowFailException

from revisit.bridge import tasks
from revisit.core.errors import BadParam
from revisit.io.extract import SnapshotMissing

D = "2026-11-20"


def context(**params) -> dict:
    return {"params": {"call_date": D, "send_email": False, **params}}


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("REVISIT_POLICY", raising=False)
    return tmp_path / "out"


def test_a_known_profile_is_the_runs_policy(out):
    policy = tasks.run_policy(context(policy_profile="after-sales-handbook"))
    assert policy.profile == "after-sales-handbook"
    assert policy.sla.escalate_priorities == ("urgent", "important")


def test_no_profile_is_policy_yaml(out):
    from revisit.config.policy import load_policy

    assert tasks.run_policy(context()).version == load_policy().version


def test_an_unknown_profile_is_a_bad_param_naming_the_known_profiles(out):
    with pytest.raises(BadParam, match=re.escape("params.policy_profile = 'acme'")) as caught:
        tasks.run_policy(context(policy_profile="acme"))
    assert caught.value.retryable is False and caught.value.param == "policy_profile"
    assert "profiles: after-sales-handbook, feedback-form" in str(caught.value)


def test_a_task_with_an_unknown_profile_fails_without_retries_before_any_work(out, monkeypatch):
    monkeypatch.setattr(tasks, "_snapshot", lambda *a: pytest.fail("work started"))
    with pytest.raises(AirflowFailException, match="policy_profile"):
        tasks.extract_daily(context(policy_profile="acme"))


def test_a_replay_of_a_day_whose_snapshot_is_gone_fails_saying_so(out):
    with pytest.raises(SnapshotMissing) as caught:
        tasks._snapshot(*tasks.day_partitions(context(replay=True)), False)
    message = str(caught.value)
    assert f"no stored snapshot of {D} at {out / 'snapshots' / D}" in message
    assert "retention.snapshot_days" in message
    # Through the task: no retry (a retry cannot bring the snapshot back), the same message.
    with pytest.raises(AirflowFailException, match=re.escape(f"no stored snapshot of {D}")):
        tasks.extract_daily(context(replay=True))


def test_the_retention_task_deletes_by_the_runs_policy_and_day(out):
    for name in ("2026-09-18", "2026-09-19"):  # 63 and 62 days before D
        (out / "snapshots" / name).mkdir(parents=True)
    result = tasks.retention(context())
    assert result["deleted"]["snapshots"] == 1 and result["keep_days"] == 62
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["2026-09-19"]


def test_a_replay_deletes_nothing(out):
    (out / "snapshots" / "2020-01-01").mkdir(parents=True)
    assert tasks.retention(context(replay=True)) == {"skipped": "replay"}
    assert (out / "snapshots" / "2020-01-01").is_dir()


def test_a_call_date_after_today_ages_partitions_from_today(out):
    """A typo of 2027 for 2026 in a manual run's call_date must not delete today's data."""
    import pendulum

    today = pendulum.now("Asia/Shanghai").date()
    kept = [today.isoformat(), today.subtract(days=30).isoformat()]
    gone = today.subtract(days=100).isoformat()
    for name in (*kept, gone):
        (out / "snapshots" / name).mkdir(parents=True)
    future = today.add(years=1).isoformat()
    result = tasks.retention({"params": {"call_date": future, "send_email": False}})
    assert result["deleted"]["snapshots"] == 1
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == sorted(kept)
