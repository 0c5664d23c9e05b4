"""What-if replay (DESIGN.md "Reproducible reruns and what-if replay"): a past day or month
recomputed from its stored snapshot under another policy, compared with the original run in
changes.csv — flips worked out by hand below — without sending anything or touching the
original run's files and results database.

Calendar facts used (CN 2026, business hours 09:00-18:00): Fri 16 Oct, Mon 19 Oct, Tue 20 Oct
are working days, Sat 17 / Sun 18 Oct are not. The "what-if" policy is policy.yaml with
general first_response `24 hours` (the after-sales handbook's general response, wall clock)
instead of `8 business_hours`, and early_use starting 14 days after delivery instead of 7.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from revisit.bridge import tasks
from revisit.config.paths import PROJECT_ROOT
from revisit.config.policy import DEFAULT_POLICY_PATH, load_policy
from revisit.stages.partitions import MonthPartitions
from revisit.stages.replay import CHANGE_COLUMNS
from tests.crm_fixtures import minimal_rows, sqlite_crm
from tests.monthly_fixtures import write_snapshot

D = "2026-10-21"  # a Wednesday; the run sees the CRM as of 21 Oct 00:00
DAILY = ("extract_daily", "quality_gate", "call_lists", "sla", "sla_digest", "agent_mail",
         "publish")
HEADER = ",".join(CHANGE_COLUMNS) + "\n"


def ticket(tid, created, first, verified) -> dict:
    return {"ticket_id": tid, "customer_id": "C0000001", "order_id": None,
            "department_id": "D01", "handler_agent_id": "A002", "type": "consultation",
            "channel": "phone", "priority": "general", "category": "other",
            "description": "…", "created_at": created, "first_response_at": first,
            "verified_at": verified, "plan_at": None, "resolved_at": None,
            "result_fed_back_at": None, "closed_at": None, "status": "in_progress",
            "satisfaction": None}


def day_rows() -> dict[str, list[dict]]:
    rows = minimal_rows()
    newcomer = {**rows["customers"][0], "customer_id": "C0000002", "name": "苏州新客户有限公司",
                "phone": "13912345678", "cooperation_start_date": "2026-09-01",
                "created_at": "2026-09-01 10:00:00"}
    rows["customers"].append(newcomer)
    # C0000002's only order: welcome [2 Sep, 4 Sep] is past its 30 overdue days by 21 Oct;
    # early_use from delivery 12 Oct: [19 Oct, 27 Oct] (listed on D) under 7 days,
    # [26 Oct, 27 Oct] (not yet) under 14 days.
    rows["orders"] = [{"order_id": "O1", "customer_id": "C0000002", "product": "P",
                       "product_version": "1", "amount": 1.0, "ordered_at": "2026-09-01 10:00:00",
                       "delivered_at": "2026-10-12 10:00:00"}]
    rows["tickets"] = [
        # TA: Mon 10:00 -> Tue 09:30 = 8.5 business hours (Mon 10-18, Tue 09-09:30), 23.5 h.
        # 8 business_hours: due Mon 18:00, late: breached. 24 hours: due Tue 10:00: met.
        ticket("TA", "2026-10-19 10:00:00", "2026-10-20 09:30:00", "2026-10-19 11:00:00"),
        # TB: Fri 17:00 -> Mon 10:00 = 2 business hours (Fri 17-18, Mon 09-10), 65 h.
        # 8 business_hours: due Mon 16:00: met. 24 hours: due Sat 17:00, late: breached.
        ticket("TB", "2026-10-16 17:00:00", "2026-10-19 10:00:00", "2026-10-16 17:30:00"),
        # TC: answered within the hour: met under both; only its deadline moves
        # (Mon 18:00 -> Tue 10:00), which is no row of changes.csv.
        ticket("TC", "2026-10-19 10:00:00", "2026-10-19 11:00:00", "2026-10-19 11:30:00"),
    ]
    return rows


def what_if_policy(folder: Path, edit) -> Path:
    """policy.yaml with `edit(data)` applied, as a policy file of its own."""
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    edit(data)
    path = folder / "what-if.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def day_what_if(data: dict) -> None:
    data["sla"]["targets"]["general"]["first_response"] = "24 hours"
    data["visits"]["kinds"]["early_use"]["start"] = "14 days"


class NoMail:
    """A transport that fails the test if anything is handed to it."""

    def send(self, *args, **kwargs):
        raise AssertionError("a replay sent an e-mail")

    def __getattr__(self, name):
        raise AssertionError(f"a replay used the mail transport ({name})")


@pytest.fixture
def day(tmp_path, monkeypatch) -> Path:
    """The original run of D (send_email off) in its output root; returns that root."""
    crm = sqlite_crm(tmp_path, day_rows())
    root = tmp_path / "out"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", crm)
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(root))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    monkeypatch.delenv("REVISIT_POLICY", raising=False)
    monkeypatch.setattr(tasks, "_transport", NoMail)
    run(DAILY, {"call_date": D, "send_email": False})
    return root


def run(stages, params: dict) -> dict:
    context = {"params": params}
    out = {}
    for stage in stages:
        if stage == "agent_mail":
            out[stage] = tasks.agent_mail(context, transport=NoMail())
        else:
            out[stage] = getattr(tasks, stage)(context)
    return out


def fingerprint(root: Path) -> dict[str, str]:
    """SHA-256 of every file of the original run (replays/ aside)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "replays"}


def row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0] for n in names}


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ================================================================= a day
def test_a_replay_under_another_policy_lists_the_hand_computed_changes(day, tmp_path):
    policy_file = what_if_policy(tmp_path, day_what_if)
    before, counts = fingerprint(day), row_counts(day / "results.sqlite")
    out = run(DAILY, {"call_date": D, "replay": True, "policy_profile": str(policy_file),
                      "send_email": True})
    result = out["publish"]
    replay = day / "replays" / result["replay_id"]
    assert result["replay_id"] == f"{D}_what-if_{load_policy(policy_file).version}"

    changes = read(replay / "changes.csv")
    assert changes.to_dict("records") == [
        {"kind": "sla", "key": "TA/first_response", "before": "breached", "after": "met"},
        {"kind": "sla", "key": "TB/first_response", "before": "met", "after": "breached"},
        {"kind": "call_list", "key": "C0000002", "before": "A002:early_use", "after": ""},
    ]
    assert result["sla"]["flips"] == {
        "first_response": {"general": {"breached->met": 1, "met->breached": 1}}}
    assert result["sla"]["same_verdict_other_deadline"] == 1  # TC
    assert result["call_list"]["removed"] == 1 and result["call_list"]["added"] == 0
    assert result["changes"] == 3 and result["by_kind"] == {"call_list": 1, "sla": 2}

    # The replay's own SLA rows say why: the new deadlines, its own policy_version.
    sla = read(replay / "sla" / D / "sla_status.csv").set_index(["ticket_id", "metric"])
    assert sla.loc[("TB", "first_response"), "deadline"] == "2026-10-17T17:00:00+08:00"
    assert sla.loc[("TB", "first_response"), "overdue_minutes"] == "2460"  # Sat 17 -> Mon 10
    assert set(sla["policy_version"]) == {load_policy(policy_file).version}

    record = (replay / "replay.json").read_text(encoding="utf-8")
    assert load_policy().version in record and load_policy(policy_file).version in record
    summary = (replay / "summary.md").read_text(encoding="utf-8")
    assert "| first_response | general | met->breached | 1 |" in summary
    assert "Added 0, removed 1, changed 0" in summary

    # Nothing sent, the original run's files and results database untouched.
    assert out["sla_digest"] == {"sent": False} and out["agent_mail"] == {"sent": False}
    assert fingerprint(day) == before
    assert row_counts(day / "results.sqlite") == counts
    assert "C0000002" not in str(result) and "13912345678" not in summary


def test_a_replay_under_the_same_policy_changes_nothing(day):
    out = run(DAILY, {"call_date": D, "replay": True, "replay_id": "same"})
    assert (day / "replays" / "same" / "changes.csv").read_text(encoding="utf-8") == HEADER
    assert out["publish"]["changes"] == 0


# ================================================================= the command line
def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m revisit replay ...` in a process of its own, as an analyst runs it."""
    env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}"}
    env.pop("REVISIT_POLICY", None)
    return subprocess.run([sys.executable, "-m", "revisit", "replay", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)


def test_the_command_line_replays_a_day_as_the_dag_does(day, tmp_path):
    policy_file = what_if_policy(tmp_path, day_what_if)
    run(DAILY, {"call_date": D, "replay": True, "policy_profile": str(policy_file),
                "replay_id": "dag"})
    before = fingerprint(day)
    done = cli("--date", D, "--profile", str(policy_file), "--output-root", str(day),
               "--replay-id", "cli")
    assert done.returncode == 0, done.stderr
    assert "## SLA verdicts" in done.stdout and "met->breached" in done.stdout
    replays = day / "replays"
    assert (replays / "cli" / "changes.csv").read_bytes() == \
        (replays / "dag" / "changes.csv").read_bytes()
    assert fingerprint(day) == before


def test_a_replay_of_a_day_without_a_snapshot_fails_with_the_reason(day):
    done = cli("--date", "2026-10-22", "--profile", "after-sales-handbook",
               "--output-root", str(day))
    assert done.returncode == 1
    assert "no stored snapshot of 2026-10-22" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (day / "snapshots" / "2026-10-22").exists()


def test_the_command_line_refuses_a_replay_id_that_is_no_folder_name(day):
    done = cli("--date", D, "--output-root", str(day), "--replay-id", "../escape")
    assert done.returncode == 1 and "replay_id" in done.stderr


# ================================================================= a month
def month_what_if(data: dict) -> None:
    data["sla"]["targets"]["urgent"]["first_response"] = "4 business_hours"


def test_a_month_replay_compares_kpis_the_agent_table_and_the_months_verdicts(
        policy, tmp_path, monkeypatch):
    """tests/monthly_fixtures.py: T3 (urgent, D2, handler A2) was first answered after 3
    business hours (20 Oct 09:00 -> 12:00): breached under 2 business_hours, met under 4.
    October's SLA rows (tests/unit/rules/test_kpis.py): D1 met 6 breached 1, D2 met 4
    breached 1; the replay makes D2 5 / 0, so D2's compliance 0.8 -> 1 and the company's
    10/12 -> 11/12, breaches D2 1 -> 0 and company 2 -> 1; A2's sla_breaches 1 -> 0.
    Replayed as the monthly DAG's tasks do (kpis, summary) and by the command line."""
    from revisit.io.results import default_results_url
    from revisit.stages.monthly import compute_kpis

    root = tmp_path / "out"
    write_snapshot(root / "snapshots" / "2026-10")
    compute_kpis(MonthPartitions(root, "2026-10"), policy, default_results_url(root))
    before, counts = fingerprint(root), row_counts(root / "results.sqlite")

    policy_file = what_if_policy(tmp_path, month_what_if)
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(root))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    context = {"params": {"month": "2026-10", "replay": True, "replay_id": "m",
                          "policy_profile": str(policy_file), "send_email": True}}
    tasks.monthly_kpis(context)
    result = tasks.summary(context)["replay"]

    replay = root / "replays" / "m"
    changes = read(replay / "changes.csv")
    kpis = changes[changes["kind"] == "kpi"].drop(columns="kind").to_dict("records")
    assert kpis == [
        {"key": "2026-10/ALL/sla_breaches", "before": "2", "after": "1"},
        {"key": "2026-10/ALL/sla_compliance_rate", "before": "0.833333", "after": "0.916667"},
        {"key": "2026-10/D2/sla_breaches", "before": "1", "after": "0"},
        {"key": "2026-10/D2/sla_compliance_rate", "before": "0.8", "after": "1"},
    ]
    agents = changes[changes["kind"] == "agent"].drop(columns="kind").to_dict("records")
    assert agents == [{"key": "2026-10/D2/A2/sla_breaches", "before": "1", "after": "0"}]
    verdicts = changes[changes["kind"] == "sla"].drop(columns="kind").to_dict("records")
    assert verdicts == [{"key": "T3/first_response", "before": "breached", "after": "met"}]
    assert result["sla"]["flipped"] == 1  # the verdict behind the KPI deltas above
    assert result["kpi"]["by_department"] == {"ALL": 2, "D2": 2}
    assert result["kpi"]["company_deltas"]["sla_breaches"] == -1
    summary = (replay / "summary.md").read_text(encoding="utf-8")
    assert "| D2 | sla_compliance_rate | 0.8 | 1 | +0.2 |" in summary
    assert fingerprint(root) == before
    assert row_counts(root / "results.sqlite") == counts

    done = cli("--month", "2026-10", "--profile", str(policy_file), "--output-root", str(root),
               "--replay-id", "m-cli")
    assert done.returncode == 0, done.stderr
    assert (root / "replays" / "m-cli" / "changes.csv").read_bytes() == \
        (replay / "changes.csv").read_bytes()
    assert fingerprint(root) == before
    assert row_counts(root / "results.sqlite") == counts


def test_replay_ids_come_from_one_rule_for_the_dag_and_the_command_line(policy):
    from revisit.stages.replay import default_replay_id, replay_id

    assert replay_id("2026-10", policy) == default_replay_id("2026-10", policy)
    assert replay_id("2026-10", policy, "mine") == "mine"
    assert dt.date.fromisoformat(replay_id("2026-10-16", policy).split("_")[0])


def test_without_a_results_file_the_command_line_reads_an_empty_history(tmp_path):
    """Results in PostgreSQL (connection revisit_results), none in the output root: the month
    is replayed without history, and no results.sqlite is made there."""
    from revisit.cli import read_only_results_url
    from revisit.io.results import call_list_history

    url = read_only_results_url(tmp_path)
    assert call_list_history(url, dt.date(2026, 10, 1), dt.date(2026, 11, 1)) is None
    assert not (tmp_path / "results.sqlite").exists()
