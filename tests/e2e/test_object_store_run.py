"""The daily and monthly DAGs with the output root on object storage (s3://revisit_s3@bucket/…,
a real S3 server: moto in server mode, started here) give the same files as with a local root.

Both runs read one demo CRM and e-mail the same SMTP sink; each has its own results database
(an object store holds no database file: the S3 run names connection revisit_results). The
S3 root starts with the local run's snapshots, as a rerun keeps its stored snapshot: from the
same snapshot every output must be the same bytes. The S3 root is read back as its readers
see it (manifests resolved) and compared file by file with the local root; the only values
allowed to differ are delivery.json's `sent_at` (when each run's e-mail went) and the results
database. That an extract into the store writes the same snapshot as one to a disk (all but
its `extracted_at`) is tested on its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from revisit.bridge.object_store import MANIFEST, VERSIONS
from tests.e2e.conftest import Sandbox, smtp_connection
from tests.s3_server import CONN_ID, s3  # noqa: F401  (the session's S3 server)

D = "2026-11-20"
MONTH_RUN = "2026-11-02"  # the monthly run of 2026-10
DAG_RUNS = (("revisit_daily", D), ("revisit_monthly", MONTH_RUN))
CLOCK_KEYS = {"sent_at"}  # when each run's e-mail went: differs between any two runs


def _comparable(path: Path) -> str:
    """A file's digest; JSON with the wall-clock values blanked (nothing else)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        data = json.dumps(_blank(json.loads(data)), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def _blank(value):
    if isinstance(value, dict):
        return {k: (None if k in CLOCK_KEYS else _blank(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _comparable(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "results.sqlite"}


@contextlib.contextmanager
def _connection(s3) -> Iterator[None]:  # noqa: F811
    """The S3 connection in this process (for the test's own reads and writes)."""
    name = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    before = os.environ.get(name)
    os.environ[name] = s3.connection()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest.fixture(scope="module")
def runs(sandbox_factory, mail_sink, s3, tmp_path_factory):  # noqa: F811
    from revisit.bridge.object_store import ObjectStore

    box: Sandbox = sandbox_factory("object_store", customers=400, entry_errors=0.01)
    box.env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mail_sink.host, mail_sink.port)
    for dag_id, date in DAG_RUNS:
        run = box.dags_test(dag_id, date)
        assert run.state == "success", run.log[-4000:]
    scratch = tmp_path_factory.mktemp("s3_run")
    with s3.bucket() as bucket, _connection(s3):
        url = f"s3://{CONN_ID}@{bucket}/revisit"
        store = ObjectStore(url)
        for snapshot in sorted((box.output / "snapshots").iterdir()):
            store.publish_dir(snapshot, f"snapshots/{snapshot.name}")
        remote = {"REVISIT_OUTPUT_DIR": url, "REVISIT_WORK_DIR": str(scratch / "work"),
                  f"AIRFLOW_CONN_{CONN_ID.upper()}": s3.connection(),
                  "AIRFLOW_CONN_REVISIT_RESULTS": f"sqlite:///{scratch / 'results.sqlite'}"}
        for dag_id, date in DAG_RUNS:
            run = box.dags_test(dag_id, date, extra_env=remote)
            assert run.state == "success", run.log[-4000:]
        store.materialise(scratch / "read")
        yield box, scratch, s3.keys(bucket)


def test_the_s3_root_holds_the_same_files_as_the_local_root(runs):
    box, scratch, _ = runs
    local, remote = _files(box.output), _files(scratch / "read")
    assert sorted(remote) == sorted(local)
    assert {name for name in local if local[name] != remote[name]} == set()
    assert any(name.startswith("call_lists/") for name in local)
    assert any(name.endswith(".pdf") for name in local)


def test_every_folder_partition_on_s3_is_published_through_its_manifest(runs):
    _, _, keys = runs
    for partition in (f"snapshots/{D}", f"clean/{D}", f"quality/{D}", f"call_lists/{D}",
                      f"sla/{D}", "snapshots/2026-10", "report_data/2026-10"):
        assert f"revisit/{partition}/{MANIFEST}" in keys, partition
        assert all(k.startswith(f"revisit/{partition}/{VERSIONS}/")
                   for k in keys if k.startswith(f"revisit/{partition}/")
                   and not k.endswith(MANIFEST)), partition


def test_no_task_leaves_its_local_mirror_behind(runs):
    _, scratch, _ = runs
    assert not any((scratch / "work").iterdir())


def test_an_extract_into_the_store_writes_the_snapshot_a_local_extract_writes(
        runs, s3, monkeypatch, tmp_path):  # noqa: F811
    from revisit.bridge import tasks
    from revisit.bridge.object_store import ObjectStore

    box, _, _ = runs
    with s3.bucket() as bucket, _connection(s3):
        url = f"s3://{CONN_ID}@{bucket}/fresh"
        monkeypatch.setenv("REVISIT_OUTPUT_DIR", url)
        monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", box.env["AIRFLOW_CONN_CRM_DB"])
        monkeypatch.setenv("AIRFLOW_CONN_REVISIT_RESULTS", f"sqlite:///{tmp_path / 'r.sqlite'}")
        result = tasks.extract_daily({"params": {"call_date": D}})
        assert result["path"] == f"{url}/snapshots/{D}" and result["extracted"]
        ObjectStore(url).fetch(f"snapshots/{D}", tmp_path)
    local = box.output / "snapshots" / D
    fresh = tmp_path / "snapshots" / D
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in local.iterdir())
    for path in sorted(local.iterdir()):
        if path.suffix == ".parquet":
            assert (fresh / path.name).read_bytes() == path.read_bytes(), path.name
    before, after = (json.loads((f / "snapshot.json").read_text()) for f in (local, fresh))
    assert {**after, "extracted_at": None} == {**before, "extracted_at": None}


def test_no_output_names_a_task_s_local_mirror(runs):
    from revisit.bridge.workspace import MIRROR_PREFIX

    _, scratch, _ = runs
    named = [p.relative_to(scratch / "read").as_posix() for p in (scratch / "read").rglob("*")
             if p.is_file() and MIRROR_PREFIX.encode() in p.read_bytes()]
    assert named == []
