"""The production shape for real, without Docker: the daily DAG run by a scheduler and two Celery
workers over Redis, with Airflow metadata, the CRM and the results database in PostgreSQL and the
output root on object storage; and the same call lists from a MariaDB CRM as from a SQLite one.

The Celery test starts `airflow api-server`, `airflow dag-processor`, `airflow scheduler` and two
`airflow celery worker`s as subprocesses (each in its own process group, logs to files) with a
temporary AIRFLOW_HOME, free ports and a fresh JWT secret; the Celery broker is the local Redis
under a unique key prefix. The workers share nothing but the object store (an S3 server, moto,
started here: s3://revisit_s3@<bucket>/out): each has its own working directory, temp directory
and REVISIT_WORK_DIR, and no output folder on disk exists at all. It triggers revisit_daily for
call date 2026-11-20, waits for the run, and checks the outputs (read back from the store), that
every task instance went through Celery (its Celery task id is in the result backend) and that
both workers ran tasks. Afterwards every process group is stopped, every scratch database dropped,
the bucket and every Redis key under the prefix deleted, whether the test passed or not; on a
failure the end of every process log and task log is in the assertion message.

Servers: PostgreSQL 127.0.0.1:5432 (REVISIT_TEST_POSTGRES_URL), MariaDB 127.0.0.1:3306
(REVISIT_TEST_MARIADB_URL), Redis 127.0.0.1:6379 (REVISIT_TEST_REDIS_URL). A server that cannot
be reached skips the test on a laptop and fails it under CI=true.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import service_unavailable
from tests.e2e.conftest import DAGS_TEST, airflow_env, project_airflow_env
from tests.integration.crm_databases import scratch_database
from tests.s3_server import CONN_ID as S3_CONN_ID
from tests.s3_server import s3_server

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
D = "2026-11-20"                       # a Friday
LOGICAL_DATE = f"{D}T06:00:00+08:00"   # the daily schedule's 06:00 Asia/Shanghai
CUSTOMERS = 300
DAILY_TASKS = {"extract", "quality_gate", "call_lists", "sla", "publish"}  # at least these
RUN_TIMEOUT = 900      # seconds for the DAG run on a loaded 2-core machine
START_TIMEOUT = 240    # seconds for the api-server to answer and the DAG to be parsed
CLI_TIMEOUT = 300
REDIS_URL = os.environ.get("REVISIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SIDE_FILES = {"sms_notice", "carried_over", "not_listed"}
WORKERS = ("worker-a", "worker-b")
SHARD_CUSTOMERS = 60  # of the CUSTOMERS: several mapped sla_shard tasks for the two workers


@contextlib.contextmanager
def _s3_connection(s3) -> Iterator[None]:
    """The S3 connection in this process, for reading the store back."""
    name = f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"
    os.environ[name] = s3.connection()
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"


# ================================================================= processes
@dataclass
class Stack:
    """Airflow components as subprocesses, each in its own process group."""

    home: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.home / "process-logs"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None,
              cwd: Path = ROOT) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [str(AIRFLOW), *args], env={**self.env, **(env or {})}, cwd=cwd, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(AIRFLOW), *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, errors="replace",
                              timeout=CLI_TIMEOUT, check=False)
        if done.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{self.report()}")
        return done.stdout

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited: {dead}\n{self.report()}")

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after a grace period."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for proc in self.procs.values():  # the group, even when its leader already exited
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def report(self) -> str:
        """The end of every component log and of every task log, for a failure message."""
        parts = [f"--- {p.name} ---\n{_tail(p)}" for p in sorted(self.logs.glob("*.log"))]
        for path in sorted((self.home / "logs").rglob("*.log")):
            parts.append(f"--- task log {path.relative_to(self.home)} ---\n{_tail(path, 40)}")
        return "\n".join(parts)


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the local Redis; every key under it is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        service_unavailable("Redis", str(error))
    prefix = f"revisit_test_{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        assert not list(client.scan_iter(match=f"{prefix}*")), "Redis keys left behind"
        client.close()


def smtp_connection(host: str, port: int) -> str:
    """AIRFLOW_CONN_SMTP_DEFAULT for a plain local SMTP server (no TLS, no provider retries)."""
    return json.dumps({"conn_type": "smtp", "host": host, "port": port, "extra": {
        "disable_tls": True, "disable_ssl": True, "from_email": "revisit@example.com",
        "retry_limit": 0, "timeout": 10}})


def _sharding_policy(root: Path) -> Path:
    """policy.yaml with shards of at most SHARD_CUSTOMERS customers: the run maps several."""
    text = (ROOT / "include" / "config" / "policy.yaml").read_text(encoding="utf-8")
    assert "max_customers_per_shard: 150000" in text
    path = root / "policy.yaml"
    path.write_text(text.replace("max_customers_per_shard: 150000",
                                 f"max_customers_per_shard: {SHARD_CUSTOMERS}"), "utf-8")
    return path


def _stack_env(home: Path, output: Path | str, metadata_url: str, crm_url: str,
               results_url: str, prefix: str, smtp: str) -> dict[str, str]:
    api_port = _free_port()
    env = project_airflow_env(home, output, crm_url)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        # Only the run this test triggers: no scheduled run competes for max_active_runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"),
                                                     os.environ.get("PYTHONPATH")])),
        "AIRFLOW_CONN_REVISIT_RESULTS": results_url,
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp,
    })
    return env


def _plain_env(home: Path) -> dict[str, str]:
    """The caller's environment without Airflow settings, with a scratch AIRFLOW_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVISIT_"))}
    env["AIRFLOW_HOME"] = str(home)
    return env


def _celery_executor_import_error(env: dict[str, str]) -> str | None:
    """None when Airflow's CeleryExecutor imports with the installed celery, else the error."""
    done = subprocess.run(
        [sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
    if done.returncode == 0:
        return None
    from importlib.metadata import version

    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
    return (f"CeleryExecutor does not import: celery {version('celery')} with "
            f"apache-airflow-providers-celery {version('apache-airflow-providers-celery')}: "
            f"{last}")


def _airflow_conn_uri(sqlalchemy_url: str) -> str:
    """An Airflow connection URI for a scratch database URL (the driver is Revisit's choice)."""
    url = make_url(sqlalchemy_url)
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[url.get_backend_name()]
    return url.set(drivername=scheme).render_as_string(hide_password=False)


def _wait(what: str, ready, timeout: float, stack: Stack, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        result = ready()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{stack.report()}")


def _api_ready(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health",
                                    timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@dataclass
class CeleryRun:
    stack: Stack
    output: Path
    run_id: str
    state: str
    mail: list
    task_instances: pd.DataFrame
    celery_results: pd.DataFrame
    states_listing: str
    results_counts: dict[str, int]
    worker_logs: dict[str, str]


@pytest.fixture(scope="module")
def celery_run(tmp_path_factory) -> Iterator[CeleryRun]:
    from tooling.demo_crm import build_demo_crm
    from tooling.mailsink import MailSink

    root = tmp_path_factory.mktemp("celery")
    broken = _celery_executor_import_error(_plain_env(root / "import-check"))
    assert broken is None, broken
    with contextlib.ExitStack() as cleanup:
        prefix = cleanup.enter_context(redis_prefix())
        sink = cleanup.enter_context(MailSink(root / "maildir"))
        metadata = cleanup.enter_context(scratch_database("postgresql", root))
        crm = cleanup.enter_context(scratch_database("postgresql", root))
        results = cleanup.enter_context(scratch_database("postgresql", root))
        build_demo_crm(crm, customers=CUSTOMERS, as_of=dt.date.fromisoformat(D))
        s3 = cleanup.enter_context(s3_server())
        bucket = cleanup.enter_context(s3.bucket())
        store_url = f"s3://{S3_CONN_ID}@{bucket}/out"

        home = root / "airflow_home"
        home.mkdir()
        env = _stack_env(home, store_url, metadata, _airflow_conn_uri(crm),
                         _airflow_conn_uri(results), prefix, smtp_connection(sink.host, sink.port))
        env[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = s3.connection()
        env["REVISIT_POLICY"] = str(_sharding_policy(root))
        stack = Stack(home, env)
        cleanup.callback(stack.stop)  # runs before the databases are dropped
        stack.cli("db", "migrate")

        stack.start("api-server", "api-server")
        stack.start("dag-processor", "dag-processor")
        stack.start("scheduler", "scheduler")
        for worker in WORKERS:  # nothing shared on disk: own cwd, temp and mirror folders
            place = root / worker
            (place / "tmp").mkdir(parents=True)
            stack.start(worker, "celery", "worker", "--concurrency", "1",
                        "--celery-hostname", f"{worker}-{uuid.uuid4().hex[:8]}@%h",
                        "--without-gossip", "--without-mingle", cwd=place,
                        env={"TMPDIR": str(place / "tmp"),
                             "REVISIT_WORK_DIR": str(place / "mirrors")})

        meta = create_engine(metadata)
        cleanup.callback(meta.dispose)

        def query(sql: str, **params) -> pd.DataFrame:
            with meta.connect() as conn:
                return pd.read_sql(text(sql), conn, params=params)

        _wait("the api-server", lambda: _api_ready(env["AIRFLOW__API__PORT"]), START_TIMEOUT,
              stack)
        _wait("revisit_daily to be parsed", lambda: len(query(
            "SELECT 1 FROM serialized_dag WHERE dag_id = 'revisit_daily'")) > 0,
            START_TIMEOUT, stack)

        run_id = f"celery_test_{uuid.uuid4().hex[:8]}"
        stack.cli("dags", "unpause", "revisit_daily")
        stack.cli("dags", "trigger", "revisit_daily", "--logical-date", LOGICAL_DATE,
                  "--run-id", run_id, "--conf", json.dumps({"call_date": D}))

        def finished() -> str | None:
            retrying = query("SELECT task_id FROM task_instance WHERE run_id = :r AND state "
                             "IN ('up_for_retry', 'failed', 'upstream_failed')", r=run_id)
            if len(retrying):  # the DAG's retry delay is minutes: report at once instead
                raise AssertionError(f"tasks failed: {retrying['task_id'].tolist()}\n"
                                     f"{stack.report()}")
            state = query("SELECT state FROM dag_run WHERE run_id = :r", r=run_id)["state"]
            return state.iloc[0] if len(state) and state.iloc[0] in ("success", "failed") \
                else None

        state = _wait(f"dag run {run_id}", finished, RUN_TIMEOUT, stack, interval=5)
        task_instances = query(
            "SELECT ti.task_id, ti.state, ti.queue, ti.hostname, ti.executor, "
            "ti.external_executor_id, ti.try_number, j.job_type AS queued_by "
            "FROM task_instance ti LEFT JOIN job j ON j.id = ti.queued_by_job_id "
            "WHERE ti.run_id = :r ORDER BY ti.start_date", r=run_id)
        # The worker records the Celery task's result just after the task instance reports
        # success through the execution API: give the last one a moment.
        ids = [i for i in task_instances["external_executor_id"] if i]
        _wait("the Celery results", lambda: set(ids) <= set(query(
            "SELECT task_id FROM celery_taskmeta WHERE status = 'SUCCESS'")["task_id"]),
            60, stack, interval=1)
        celery_results = query("SELECT task_id, status FROM celery_taskmeta")
        listing = stack.cli("tasks", "states-for-dag-run", "revisit_daily", run_id)
        engine = create_engine(results)
        try:
            with engine.connect() as conn:
                counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t} WHERE run_date = "
                                               f"'{D}'")).scalar_one()
                          for t in ("call_list", "sla_status")}
        finally:
            engine.dispose()
        output = root / "read-back"
        with _s3_connection(s3):
            from revisit.bridge.object_store import ObjectStore

            ObjectStore(store_url).materialise(output)
        yield CeleryRun(stack, output, run_id, state, sink.messages(), task_instances,
                        celery_results, listing, counts,
                        {w: (stack.logs / f"{w}.log").read_text(errors="replace")
                         for w in WORKERS})


def test_the_pinned_celery_works_with_the_celery_provider(tmp_path):
    """requirements.txt must pin a celery the CeleryExecutor can import (the image installs
    those pins): celery 5.7 dropped celery.backends.database.retry, which
    apache-airflow-providers-celery 3.26.0 imports."""
    broken = _celery_executor_import_error(_plain_env(tmp_path))
    assert broken is None, broken


# ================================================================= MariaDB CRM vs SQLite CRM
def _call_list_outputs(output: Path) -> dict[str, object]:
    """Every call-list and SLA file of D as comparable values (XLSX as its cell values)."""
    out: dict[str, object] = {}
    for path in sorted((output / "call_lists" / D).iterdir()):
        if path.suffix == ".csv":
            out[path.name] = path.read_text(encoding="utf-8")
        elif path.suffix == ".xlsx":
            sheet = load_workbook(path, read_only=True).active
            out[path.name] = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    out["sla_status.csv"] = (output / "sla" / D / "sla_status.csv").read_text(encoding="utf-8")
    return out


def _dags_test(root: Path, crm_conn: str, smtp: str) -> tuple[str, Path, str]:
    """`airflow dags test revisit_daily D` with SQLite metadata in `root`: (state, output, log).

    A task that fails and waits for its retry (the DAG's delay is minutes) ends the run at
    once: its process group is killed and the state says which tasks failed."""
    env = airflow_env(root, crm_conn)
    env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=CLI_TIMEOUT)
    log_path = root / "dags-test.log"
    metadata = create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([*DAGS_TEST, "revisit_daily", D], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    failed: list[str] = []
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline and not failed:
            time.sleep(3)
            with contextlib.suppress(Exception), metadata.connect() as conn:  # not created yet
                failed = list(conn.execute(text(
                    "SELECT task_id FROM task_instance WHERE state IN "
                    "('up_for_retry', 'failed', 'upstream_failed')")).scalars())
    finally:
        metadata.dispose()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    log = log_path.read_text(errors="replace")
    if failed:
        return f"failed: {failed}", root / "output", log
    states = re.findall(r"DagRun Finished: dag_id=revisit_daily.*?state=(\w+)", log)
    return (states[-1] if states else f"no state (exit {proc.returncode})"), root / "output", log


@pytest.mark.mariadb
@pytest.mark.slow
def test_mariadb_crm_gives_the_same_call_lists_as_sqlite(tmp_path):
    """The same demo data in MariaDB and in SQLite: `airflow dags test` gives identical call
    lists (CSV text, XLSX cells, file names) and SLA status."""
    from tooling.demo_crm import build_demo_crm
    from tooling.mailsink import MailSink

    outputs = {}
    with scratch_database("mariadb", tmp_path) as maria, \
            MailSink(tmp_path / "maildir") as sink:
        for name, url in (("sqlite", f"sqlite:///{tmp_path / 'crm.sqlite'}"), ("mariadb", maria)):
            build_demo_crm(url, customers=CUSTOMERS, as_of=dt.date.fromisoformat(D))
            conn = url if name == "sqlite" else _airflow_conn_uri(url)
            state, output, log = _dags_test(tmp_path / name, conn,
                                            smtp_connection(sink.host, sink.port))
            assert state == "success", f"{name}: {log[-4000:]}"
            outputs[name] = _call_list_outputs(output)
    sqlite, mariadb = outputs["sqlite"], outputs["mariadb"]
    assert sorted(mariadb) == sorted(sqlite)
    assert len([n for n in sqlite if n.endswith(".xlsx")]) >= 3
    different = [name for name in sqlite if sqlite[name] != mariadb[name]]
    assert not different, f"files that differ between the SQLite and MariaDB CRM: {different}"


# ================================================================= the Celery run
@pytest.mark.postgres
@pytest.mark.celery
@pytest.mark.slow
def test_daily_dag_runs_on_celery_workers_with_postgres_metadata(celery_run: CeleryRun):
    run = celery_run
    print(f"\n{run.states_listing}")  # shown with -s: the proof of a Celery-executed run
    print(run.task_instances.to_string(index=False))
    assert run.state == "success", run.stack.report()
    tis = run.task_instances
    assert set(tis["task_id"]) >= DAILY_TASKS
    assert (tis["state"] == "success").all(), tis
    # Queued by the scheduler and executed by Celery: each task instance's external executor id
    # is the id of a Celery task that the worker completed (the result backend's row).
    assert (tis["queued_by"] == "SchedulerJob").all(), tis
    done = set(run.celery_results.loc[run.celery_results["status"] == "SUCCESS", "task_id"])
    assert tis["external_executor_id"].notna().all(), tis
    assert set(tis["external_executor_id"]) <= done, (tis, run.celery_results)
    assert (tis["queue"] == "default").all(), tis
    for task_id in DAILY_TASKS:
        assert task_id in run.states_listing


@pytest.mark.postgres
@pytest.mark.celery
@pytest.mark.slow
def test_both_workers_run_tasks_sharing_nothing_but_the_object_store(celery_run: CeleryRun):
    """Each worker executed tasks of the run (its log names their ids), and no worker left a
    mirror behind: whatever one task read of another's output came through the store."""
    executed = {worker: set(re.findall(r"task_id='([a-z_]+)'", log))
                for worker, log in celery_run.worker_logs.items()}
    assert all(executed.values()), {w: sorted(t) for w, t in executed.items()}
    assert set().union(*executed.values()) >= DAILY_TASKS | {"shards", "sla_shard",
                                                             "obligations_shard"}
    for task_id in ("sla_shard", "obligations_shard"):
        mapped = celery_run.task_instances[celery_run.task_instances["task_id"] == task_id]
        assert len(mapped) > 2 and (mapped["state"] == "success").all(), mapped
    root = celery_run.output.parent
    for worker in WORKERS:
        mirrors = root / worker / "mirrors"
        assert mirrors.is_dir() and not any(mirrors.iterdir()), worker
    # no output root on any disk: the only call lists on this machine are the read-back copy
    assert [p for p in root.rglob("call_lists") if not p.is_relative_to(celery_run.output)] == []


@pytest.mark.postgres
@pytest.mark.celery
@pytest.mark.slow
def test_celery_run_writes_the_call_lists_sla_and_results_rows(celery_run: CeleryRun):
    lists = celery_run.output / "call_lists" / D
    agent_files = [p for p in lists.glob("*.csv") if p.stem not in SIDE_FILES]
    assert len(agent_files) >= 3, sorted(p.name for p in lists.iterdir())
    assert all(p.with_suffix(".xlsx").exists() for p in agent_files)
    assert (lists / "sms_notice.csv").exists()
    assert (celery_run.output / "sla" / D / "sla_status.csv").exists()
    assert (celery_run.output / "snapshots" / D / "customers.parquet").exists()
    listed = sum(len(pd.read_csv(p, dtype=str)) for p in agent_files)
    assert celery_run.results_counts["call_list"] == listed
    assert celery_run.results_counts["sla_status"] > 0
    # The SLA digests went out through smtp_default, from the Celery worker.
    assert celery_run.mail, "no e-mail reached the SMTP sink"
    assert all(m["X-Envelope-To"] for m in celery_run.mail)
