"""End-to-end fixtures: a self-contained Airflow (SQLite metadata) and a demo CRM per module.

DAGs run with `airflow dags test` in a subprocess, exactly as the README's main command runs
them, with connections given as AIRFLOW_CONN_* environment variables.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
# `airflow dags test` through the project's wrapper (tooling/dags_test.py: apache/airflow#73428)
DAGS_TEST = (sys.executable, "-m", "tooling.dags_test")
RUN_TIMEOUT = 600  # seconds; a failing task with retries would otherwise wait for its delay
STATE = re.compile(r"DagRun Finished: dag_id=(\w+).*?state=(\w+)")


@dataclass
class AirflowRun:
    state: str
    log: str


@dataclass
class Sandbox:
    """One Airflow home, output root and demo CRM; env is what every airflow call gets."""

    root: Path
    env: dict[str, str]
    crm: Path
    entry_errors: dict[str, list]  # keys given a data-entry error, per table

    @property
    def output(self) -> Path:
        return Path(self.env["REVISIT_OUTPUT_DIR"])

    def dags_test(self, dag_id: str, logical_date: str, *, extra_env: dict | None = None
                  ) -> AirflowRun:
        env = {**self.env, **(extra_env or {})}
        done = subprocess.run(
            [*DAGS_TEST, dag_id, logical_date], env=env, cwd=ROOT,
            capture_output=True, text=True, errors="replace", timeout=RUN_TIMEOUT, check=False,
        )
        log = done.stdout + done.stderr
        states = [state for dag, state in STATE.findall(log) if dag == dag_id]
        return AirflowRun(states[-1] if states else f"no state (exit {done.returncode})", log)


def smtp_connection(host: str, port: int) -> str:
    """AIRFLOW_CONN_SMTP_DEFAULT for a plain local SMTP server (no TLS, no provider retries)."""
    import json

    return json.dumps({"conn_type": "smtp", "host": host, "port": port, "extra": {
        "disable_tls": True, "disable_ssl": True, "from_email": "revisit@example.com",
        "retry_limit": 0, "timeout": 10}})


@pytest.fixture(scope="module")
def mail_sink(tmp_path_factory):
    """A real SMTP server (aiosmtpd) storing what it receives, for the module's DAG runs."""
    from tooling.mailsink import MailSink

    with MailSink(tmp_path_factory.mktemp("mail") / "maildir") as sink:
        yield sink


def project_airflow_env(home: Path, output: Path, crm_url: str) -> dict[str, str]:
    """The caller's environment without its Airflow and Revisit settings, pointed at this
    project (dags, plugins, Shanghai time), the output root `output` and the CRM `crm_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVISIT_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "PYTHONPATH": str(ROOT / "plugins"),
        "REVISIT_OUTPUT_DIR": str(output),
        "AIRFLOW_CONN_CRM_DB": crm_url,
    })
    return env


def airflow_env(root: Path, crm_url: str) -> dict[str, str]:
    """project_airflow_env with SQLite metadata and the output root under `root`."""
    home = root / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    env = project_airflow_env(home, root / "output", crm_url)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    return env


def make_sandbox(root: Path, customers: int, as_of: str, entry_errors: float) -> Sandbox:
    from tooling.demo_crm import add_entry_errors, build_demo_crm

    crm = root / "crm.sqlite"
    build_demo_crm(f"sqlite:///{crm}", customers=customers, as_of=dt.date.fromisoformat(as_of))
    touched = add_entry_errors(f"sqlite:///{crm}", entry_errors)
    env = airflow_env(root, f"sqlite:///{crm}")
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=RUN_TIMEOUT)
    return Sandbox(root, env, crm, touched)


@pytest.fixture(scope="module")
def sandbox_factory(tmp_path_factory):
    def factory(name: str, customers: int = 400, as_of: str = "2026-11-20",
                entry_errors: float = 0.0) -> Sandbox:
        return make_sandbox(tmp_path_factory.mktemp(name), customers, as_of, entry_errors)

    return factory
