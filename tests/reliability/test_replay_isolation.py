"""A what-if replay over a realistic day (the demo CRM, 300 customers) under the shipped
after-sales-handbook profile: it leaves every file of the original run and the results
database as they were, sends nothing, and its changes.csv holds exactly the verdicts whose
status differs between the two sla_status.csv files (counted here independently, with plain
Python sets), with XCom values small and free of customer data."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from revisit.bridge import tasks

D = "2026-11-18"
STAGES = ("extract_daily", "quality_gate", "call_lists", "sla", "sla_digest", "agent_mail",
          "publish")


@pytest.fixture(scope="module")
def crm(tmp_path_factory) -> Path:
    from tooling.demo_crm import build_demo_crm

    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    build_demo_crm(f"sqlite:///{path}", customers=300, as_of=dt.date(2026, 11, 20))
    return path


class NoMail:
    def __getattr__(self, name):
        raise AssertionError(f"a replay used the mail transport ({name})")


def run(params: dict) -> dict:
    context = {"params": {"call_date": D, **params}}
    return {stage: tasks.agent_mail(context, transport=NoMail()) if stage == "agent_mail"
            else getattr(tasks, stage)(context) for stage in STAGES}


def fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "replays"}


def statuses(path: Path) -> dict[tuple[str, str], str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {(r["ticket_id"], r["metric"]): r["status"] for r in csv.DictReader(handle)}


def test_a_handbook_replay_changes_only_its_own_folder_and_lists_every_flip(
        crm, tmp_path, monkeypatch):
    root = tmp_path / "out"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{crm}")
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(root))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    monkeypatch.delenv("REVISIT_POLICY", raising=False)
    monkeypatch.setattr(tasks, "_transport", NoMail)
    run({"send_email": False})
    before = fingerprint(root)
    with sqlite3.connect(root / "results.sqlite") as conn:
        rows = conn.execute("SELECT COUNT(*) FROM sla_status").fetchone()[0]

    out = run({"replay": True, "policy_profile": "after-sales-handbook", "send_email": True})
    replay = root / "replays" / out["publish"]["replay_id"]

    assert fingerprint(root) == before
    with sqlite3.connect(root / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sla_status").fetchone()[0] == rows
    assert out["sla_digest"] == {"sent": False} and out["agent_mail"] == {"sent": False}

    old = statuses(root / "sla" / D / "sla_status.csv")
    new = statuses(replay / "sla" / D / "sla_status.csv")
    expected = sorted((f"{t}/{m}", old.get((t, m), ""), new.get((t, m), ""))
                      for t, m in old.keys() | new.keys() if old.get((t, m)) != new.get((t, m)))
    with (replay / "changes.csv").open(encoding="utf-8", newline="") as handle:
        listed = [(r["key"], r["before"], r["after"]) for r in csv.DictReader(handle)
                  if r["kind"] == "sla"]
    assert listed == expected and expected  # the handbook's matrix does flip verdicts

    record = json.loads((replay / "replay.json").read_text(encoding="utf-8"))
    assert record["profile"] == "after-sales-handbook" and record["period"] == D
    assert record["original"]["policy_version"] != record["policy_version"]
    text = json.dumps(out, default=str)
    assert len(text) < 10_000
    with sqlite3.connect(crm) as conn:
        phones = [r[0] for r in conn.execute("SELECT phone FROM customers") if r[0]]
    assert not any(phone in text for phone in phones)
