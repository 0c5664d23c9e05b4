"""No CRM value stops or stalls a monthly run: long texts are shortened before WeasyPrint sees
them, a render that still stalls is stopped after report.render_timeout_seconds and fails its
own department only (the summary names it), and every task of both DAGs has a time limit."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from revisit.config.policy import DEFAULT_POLICY_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_every_task_of_both_dags_has_an_execution_timeout(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for dag_id in ("revisit_daily", "revisit_monthly"):
        for task in bag.dags[dag_id].tasks:
            assert task.execution_timeout is not None, (dag_id, task.task_id)
            assert dt.timedelta(minutes=5) <= task.execution_timeout <= dt.timedelta(hours=2)


def _smtp_env(monkeypatch, port: int) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "revisit@example.com",
                  "retry_limit": 0, "timeout": 30}}))


def test_a_render_that_stalls_is_stopped_and_fails_only_its_department(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks
    from revisit.delivery import pdf
    from revisit.stages.monthly import NO_PDF
    from tooling.demo_crm import build_demo_crm
    from tooling.mailsink import MailSink

    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["report"]["render_timeout_seconds"] = 10  # the policy's lowest bound
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("REVISIT_POLICY", str(policy_file))
    crm = tmp_path / "crm.sqlite"
    build_demo_crm(f"sqlite:///{crm}", customers=200, as_of=dt.date(2026, 11, 20))
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{crm}")
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    context = {"params": {"month": "2026-10"}}
    tasks.extract_monthly(context)
    departments = tasks.monthly_kpis(context)["departments"]
    stalled = departments[1]
    # The real child process, which stalls (as WeasyPrint did on a 350,000-character name)
    # for the stalled department's HTML only; the parent must kill it.
    marker = f"({stalled})</td>"
    monkeypatch.setattr(pdf, "_CHILD", (
        "import sys, time\n"
        "html = sys.stdin.buffer.read().decode('utf-8')\n"
        f"if {marker!r} in html:\n"
        "    time.sleep(600)\n"
        "from revisit.delivery.pdf import render_pdf\n"
        "sys.stdout.buffer.write(render_pdf(html))\n"))
    with MailSink(tmp_path / "maildir") as sink:
        _smtp_env(monkeypatch, sink.port)
        for department_id in departments:  # what the mapped task group does, one by one
            if department_id == stalled:
                started = time.perf_counter()
                with pytest.raises(AirflowFailException, match="did not finish within 10 s"):
                    tasks.render(context, department_id)  # not retryable: fails at once
                assert time.perf_counter() - started < 30
                continue  # the send task is upstream_failed
            tasks.render(context, department_id)
            tasks.send(context, department_id)
        with pytest.raises(AirflowFailException, match=rf"{stalled} \(not_attempted\)"):
            tasks.summary(context)
        received = sink.messages()
    assert len(received) == len(departments) - 1
    delivery = json.loads((tmp_path / "out" / "reports" / "2026-10" / "delivery.json")
                          .read_text(encoding="utf-8"))
    by_id = {d["department_id"]: d for d in delivery["deliveries"]}
    assert by_id[stalled]["pdf"] is None and by_id[stalled]["error"] == NO_PDF
    assert {d["state"] for i, d in by_id.items() if i != stalled} == {"sent"}


def test_a_department_with_100k_character_names_renders_in_normal_time(policy, calendar,
                                                                       tmp_path):
    """The render task's own path (render_report: shortened texts, the bounded child)."""
    import pandas as pd

    from revisit.delivery.report import render_report, report_data
    from revisit.rules.kpis import compute_monthly
    from tests.monthly_fixtures import hand_built_frames

    frames = hand_built_frames()
    long = "名" * 100_000
    for table, columns in (("departments", ("name", "head_name")), ("agents", ("name",)),
                           ("customers", ("name",))):
        frames[table] = frames[table].assign(
            **{c: pd.Series(long, index=frames[table].index, dtype="string") for c in columns})
    data = report_data(compute_monthly(frames, policy, calendar, "2026-10"), "D1")
    started = time.perf_counter()
    target = render_report(data, policy, tmp_path / "long.pdf")
    seconds = time.perf_counter() - started
    assert target.read_bytes().startswith(b"%PDF-")
    assert seconds < 30, seconds  # ≈ 5 s on the CI machine; > 120 s before shortening


def test_an_agents_e_mail_shows_a_long_name_shortened(policy):
    from revisit.core.templating import ELLIPSIS
    from revisit.delivery.agent_mail import ListSummary, email_content

    agent = {"agent_id": "A1", "name": "客服" * 50_000, "email": "a1@example.com"}
    summary = ListSummary(customers=3, overdue=1, reasons={})
    _, text, html = email_content(summary, agent, dt.date(2026, 11, 20), policy, "en")
    limit = policy.report.max_text_chars
    for body in (text, html):
        assert "客服" * (limit // 2) not in body
        assert ("客服" * limit)[:limit - 1] + ELLIPSIS in body
