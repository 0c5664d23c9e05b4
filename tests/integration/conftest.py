"""Fixtures of the integration tests that e-mail through a real local SMTP server (a module may
define its own of the same name): the server, the output root the bridge uses pointed at it,
and a per-test copy of the module's `demo_crm`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.mail_env import smtp_connection
from tooling.mailsink import MailSink


@pytest.fixture
def crm(demo_crm: Path, tmp_path: Path) -> Path:
    """This test's own copy of the module's demo CRM (a test may change it)."""
    path = tmp_path / "crm.sqlite"
    shutil.copyfile(demo_crm, path)
    return path


@pytest.fixture
def sink(tmp_path):
    with MailSink(tmp_path / "maildir") as server:
        yield server


@pytest.fixture
def env(tmp_path, monkeypatch, sink) -> Path:
    """The output root the bridge uses, SMTP pointed at the sink, results in the output root."""
    root = tmp_path / "out"
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", str(root))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(sink.port))
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    return root
