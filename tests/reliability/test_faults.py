"""Faults: an unreachable CRM, a writer killed mid-write, an SMTP server that hangs or drops the
line after taking the message, one department's PDF failing. Each is survived without a
partial file, a lost row, or a second e-mail."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import subprocess
import sys
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest

from revisit.bridge.smtp import SmtpHookTransport
from revisit.delivery.mail import (
    DeliveryLedger,
    DeliveryRefused,
    DeliveryUncertain,
    send_once,
)
from revisit.io.db import make_engine
from revisit.io.extract import ExtractError, extract_snapshot
from revisit.io.results import ensure_schema
from tests.crm_fixtures import minimal_rows, sqlite_crm

ROOT = Path(__file__).resolve().parents[2]
TZ = "Asia/Shanghai"
D = dt.date(2026, 10, 16)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- CRM unreachable
def test_unreachable_crm_fails_naming_the_host_and_keeps_the_previous_partition(tmp_path):
    target = tmp_path / "snapshots" / D.isoformat()
    extract_snapshot(sqlite_crm(tmp_path, minimal_rows()), D, target,
                     business_tz=TZ)
    before = _hashes(target)
    with pytest.raises(ExtractError, match=r"127\.0\.0\.1:1") as caught:
        extract_snapshot("postgresql+psycopg2://crm:secret@127.0.0.1:1/crm", D, target,
                         business_tz=TZ)
    assert "secret" not in str(caught.value)
    assert _hashes(target) == before  # the complete earlier partition, untouched
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp left behind


# ----------------------------------------------------------------------------- killed writer
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from revisit.io.files import atomic_dir, atomic_path
target = Path(sys.argv[1])
if sys.argv[2] == "dir":
    with atomic_dir(target) as tmp:
        (tmp / "A0001.csv").write_text("half of a call list")
        os.kill(os.getpid(), signal.SIGKILL)
else:
    with atomic_path(target) as tmp:
        tmp.write_text("half of a file")
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _kill_mid_write(target: Path, kind: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target), kind],
                          env={"PYTHONPATH": str(ROOT / "plugins")}, check=False, timeout=60)
    assert done.returncode == -9  # really killed inside the write


@pytest.mark.parametrize("previous", [False, True], ids=["first run", "rerun"])
def test_writer_killed_mid_partition_leaves_no_partial_partition_visible(tmp_path, previous):
    from revisit.io.files import atomic_dir

    target = tmp_path / "call_lists" / D.isoformat()
    if previous:
        with atomic_dir(target) as tmp:
            (tmp / "A0001.csv").write_text("the complete list of the earlier run")
    _kill_mid_write(target, "dir")
    if previous:
        assert (target / "A0001.csv").read_text() == "the complete list of the earlier run"
    else:
        assert not target.exists()
    leftovers = [p for p in target.parent.iterdir() if p.name.startswith(".")]
    assert leftovers and all(p.name.endswith(".tmp") for p in leftovers)  # hidden, never read
    with atomic_dir(target) as tmp:  # the retry: completes and clears the dead writer's temp
        (tmp / "A0001.csv").write_text("retry")
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert (target / "A0001.csv").read_text() == "retry"


def test_writer_killed_mid_file_leaves_the_old_file_whole(tmp_path):
    from revisit.io.files import write_text

    target = tmp_path / "reports" / "kpis.csv"
    write_text(target, "month,department_id,metric,value\n")
    _kill_mid_write(target, "file")
    assert target.read_text() == "month,department_id,metric,value\n"
    write_text(target, "new\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["kpis.csv"]


# ----------------------------------------------------------------------------- SMTP faults
@pytest.fixture
def ledger(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    yield DeliveryLedger(engine, TZ, kind="sla_digest")
    engine.dispose()


def _message(sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "digest", sender, "head@example.com"
    msg["Message-ID"] = "<revisit.test@example.com>"
    msg.set_content("new breaches: T1")
    return msg


def _smtp_env(monkeypatch, port: int, timeout: int = 30) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "revisit@example.com",
                  "retry_limit": 0, "timeout": timeout}}))


def test_smtp_server_that_never_answers_times_out_as_failed_and_is_retried(
        tmp_path, monkeypatch, ledger):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never says a word
    try:
        _smtp_env(monkeypatch, silent.getsockname()[1], timeout=2)
        with pytest.raises(DeliveryRefused) as caught:
            send_once(ledger, "2026-11-20", "D1", "head@example.com", _message,
                      SmtpHookTransport())
        assert caught.value.retryable
        assert ledger.get("2026-11-20", "D1")["state"] == "failed"  # safe to send again
    finally:
        silent.close()


class DropAfterData:
    """aiosmtpd handler: keeps the message, then hangs up instead of answering 250."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.received.append(envelope.content)
        server.transport.close()
        return "250 never seen"


def test_connection_dropped_after_the_server_took_the_message_is_unknown_and_never_resent(
        tmp_path, monkeypatch, ledger):
    from aiosmtpd.controller import Controller

    from tooling.mailsink import free_port

    handler = DropAfterData()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        _smtp_env(monkeypatch, controller.port)
        with pytest.raises(DeliveryUncertain):
            send_once(ledger, "2026-11-20", "D1", "head@example.com", _message,
                      SmtpHookTransport())
        assert ledger.get("2026-11-20", "D1")["state"] == "unknown"
        # The retry (or a rerun of the day) must not send a second copy blindly.
        with pytest.raises(DeliveryUncertain, match="may have delivered"):
            send_once(ledger, "2026-11-20", "D1", "head@example.com", _message,
                      SmtpHookTransport())
        assert len(handler.received) == 1
    finally:
        controller.stop()


# ----------------------------------------------------------------------------- one PDF fails
def test_one_departments_pdf_failing_still_delivers_the_others_and_reports_it(
        tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks
    from revisit.delivery import report
    from tooling.demo_crm import build_demo_crm
    from tooling.mailsink import MailSink

    crm = tmp_path / "crm.sqlite"
    build_demo_crm(f"sqlite:///{crm}", customers=200, as_of=dt.date(2026, 11, 20))
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{crm}")
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    context = {"params": {"month": "2026-10"}}
    tasks.extract_monthly(context)
    departments = tasks.monthly_kpis(context)["departments"]
    broken = departments[1]
    real_render = report.render_report

    def render(data, policy, target, *args, **kwargs):
        if data["department"]["department_id"] == broken:
            raise RuntimeError("WeasyPrint fell over")
        return real_render(data, policy, target, *args, **kwargs)

    monkeypatch.setattr(report, "render_report", render)
    with MailSink(tmp_path / "maildir") as sink:
        _smtp_env(monkeypatch, sink.port)
        for department_id in departments:  # what the mapped task group does, one by one
            try:
                tasks.render(context, department_id)
            except RuntimeError:
                assert department_id == broken
                continue
            tasks.send(context, department_id)
        with pytest.raises(AirflowFailException, match=rf"{broken} \(not_attempted\)"):
            tasks.summary(context)
        received = sink.messages()
    assert len(received) == len(departments) - 1
    delivery = json.loads((tmp_path / "out" / "reports" / "2026-10" / "delivery.json")
                          .read_text(encoding="utf-8"))
    states = {d["department_id"]: d["state"] for d in delivery["deliveries"]}
    assert states.pop(broken) == "not_attempted"
    assert set(states.values()) == {"sent"}


def test_lock_free_ledger_claim_lets_only_one_of_two_racing_attempts_send(tmp_path, ledger):
    sent: list[str] = []
    barrier = threading.Barrier(2)

    class Recorder:
        sender = "revisit@example.com"

        def send(self, message: EmailMessage) -> None:
            sent.append(message["Message-ID"])

    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            send_once(ledger, "2026-11-20", "D1", "head@example.com", _message, Recorder())
            outcomes.append("returned")
        except DeliveryUncertain:  # the other attempt holds the claim and has not finished
            outcomes.append("uncertain")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 1
    assert len(outcomes) == 2 and "returned" in outcomes  # the loser never raises anything else
