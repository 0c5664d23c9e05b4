"""The output root on object storage (revisit.bridge.object_store, revisit.bridge.workspace)
against a real S3 server (moto in server mode, started here): a folder partition is replaced
atomically through its manifest, a file write lands as one object or as a manifest entry,
readers never see a version without its manifest, and a task's mirror publishes what the
task completed, also when it failed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from revisit.bridge.object_store import MANIFEST, VERSIONS, ObjectStore, publish_writes
from revisit.io.files import atomic_dir, recording_writes, write_text
from tests.s3_server import CONN_ID, s3  # noqa: F401  (the session's S3 server)


@pytest.fixture
def store(s3, monkeypatch):  # noqa: F811
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.connection())
    with s3.bucket() as bucket:
        yield ObjectStore(f"s3://{CONN_ID}@{bucket}/out"), bucket


def _folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_published_folder_reads_back_whole_and_a_rerun_leaves_no_file_of_the_old_version(
        store, s3, tmp_path):  # noqa: F811
    st, bucket = store
    st.publish_dir(_folder(tmp_path / "v1", {"A1.csv": "one", "A2.csv": "two",
                                             "sub/x.txt": "x"}), "call_lists/2026-11-20")
    st.publish_dir(_folder(tmp_path / "v2", {"A1.csv": "uno"}), "call_lists/2026-11-20")
    assert st.fetch("call_lists/2026-11-20", tmp_path / "read") == 1
    assert _tree(tmp_path / "read") == {"call_lists/2026-11-20/A1.csv": "uno"}
    keys = s3.keys(bucket, "out/call_lists/2026-11-20/")
    manifest = json.loads(st.fs.cat_file(st.key(f"call_lists/2026-11-20/{MANIFEST}")))
    assert keys == sorted([f"out/call_lists/2026-11-20/{MANIFEST}",
                           f"out/call_lists/2026-11-20/{manifest['files']['A1.csv']['object']}"])


def test_a_version_uploaded_without_its_manifest_is_never_read(store, tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "v1", {"kpis.csv": "old"}), "report_data/2026-10")
    # a writer that died after uploading its files, before its manifest
    st.fs.pipe_file(st.key(f"report_data/2026-10/{VERSIONS}/99-dead/kpis.csv"), b"half")
    st.fs.pipe_file(st.key(f"report_data/2026-10/{VERSIONS}/99-dead/extra.csv"), b"half")
    st.fetch("report_data", tmp_path / "read")
    assert _tree(tmp_path / "read") == {"report_data/2026-10/kpis.csv": "old"}


def test_a_partition_with_nothing_but_an_orphaned_version_does_not_exist(store, tmp_path):
    st, _ = store
    st.fs.pipe_file(st.key(f"clean/2026-11-20/{VERSIONS}/1-dead/customers.parquet"), b"x")
    assert st.fetch("clean/2026-11-20", tmp_path / "read") == 0
    assert not (tmp_path / "read").exists()


def test_a_file_written_into_a_published_folder_becomes_an_entry_of_its_manifest(store,
                                                                                 tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "q", {"summary.md": "v1", "summary.csv": "c"}),
                   "quality/2026-11-20")
    (tmp_path / "new.md").write_text("v2 with the SLA section", encoding="utf-8")
    st.put_file(tmp_path / "new.md", "quality/2026-11-20/summary.md")
    st.fetch("quality/2026-11-20", tmp_path / "read")
    assert _tree(tmp_path / "read") == {"quality/2026-11-20/summary.csv": "c",
                                        "quality/2026-11-20/summary.md":
                                        "v2 with the SLA section"}
    objects = [k for k in st._listing("quality/2026-11-20") if not k.endswith(MANIFEST)]
    assert len(objects) == 2  # the replaced version of summary.md is gone


def test_a_file_outside_any_partition_is_one_object_at_its_own_key(store, s3, tmp_path):  # noqa: F811
    st, bucket = store
    (tmp_path / "D01.pdf").write_bytes(b"%PDF")
    st.put_file(tmp_path / "D01.pdf", "reports/2026-10/D01.pdf")
    assert s3.keys(bucket, "out/reports/") == ["out/reports/2026-10/D01.pdf"]
    assert st.fetch("reports/2026-10/D01.pdf", tmp_path / "read") == 1
    assert (tmp_path / "read/reports/2026-10/D01.pdf").read_bytes() == b"%PDF"


def test_a_removed_partition_is_gone_for_readers_and_leaves_no_object(store, tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "s", {"customers.parquet": "c"}), "snapshots/2026-11-01")
    assert st.exists("snapshots/2026-11-01")
    st.delete("snapshots/2026-11-01")
    assert not st.exists("snapshots/2026-11-01")
    assert st._listing("snapshots") == []


def test_retention_lists_partition_folders_and_clears_only_old_orphaned_versions(store,
                                                                                 tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "a", {"x": "1"}), "sla/2026-11-19")
    old = f"{(time.time_ns() - 2 * 86_400 * 10**9):020d}-dead0000"
    st.fs.pipe_file(st.key(f"sla/2026-11-18/{VERSIONS}/{old}/x"), b"old orphan")
    st.fs.pipe_file(st.key(f"sla/2026-11-17/{VERSIONS}/{time.time_ns():020d}-live/x"),
                    b"a publish under way")
    assert st.folders("sla") == ["2026-11-17", "2026-11-18", "2026-11-19"]
    assert st.remove_trash() == 1
    assert st.folders("sla") == ["2026-11-17", "2026-11-19"]
    assert st.fetch("sla/2026-11-19", tmp_path / "read") == 1


def test_a_task_publishes_its_completed_writes_and_never_a_temp_folder(store, tmp_path):
    st, _ = store
    root = tmp_path / "mirror"
    with recording_writes() as writes:
        with atomic_dir(root / "sla/2026-11-20") as tmp:
            write_text(tmp / "sla_status.csv", "status")  # inside the temp: goes with it
        write_text(root / "sla/2026-11-20/digest_D01.csv", "digest")  # into the new partition
        write_text(root / "handoff/2026-11-20/sla_status.parquet", "typed")
        write_text(tmp_path / "elsewhere.txt", "not the output root")
    assert publish_writes(st, writes, root) == ["sla/2026-11-20",
                                                "handoff/2026-11-20/sla_status.parquet"]
    st.fetch("", tmp_path / "read")
    assert _tree(tmp_path / "read") == {
        "handoff/2026-11-20/sla_status.parquet": "typed",
        "sla/2026-11-20/digest_D01.csv": "digest",
        "sla/2026-11-20/sla_status.csv": "status"}


def test_a_failed_task_still_publishes_what_it_completed(store, monkeypatch, tmp_path):
    from revisit.bridge.workspace import workspace

    st, _ = store
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", st.url)
    monkeypatch.setenv("REVISIT_WORK_DIR", str(tmp_path / "work"))
    with pytest.raises(RuntimeError, match="quality stop"), workspace() as place:
        assert place.store is not None and place.root.is_relative_to(tmp_path / "work")
        write_text(place.root / "quality/2026-11-20/summary.md", "why the run stopped")
        raise RuntimeError("quality stop")
    assert not any((tmp_path / "work").iterdir())  # the mirror is gone
    assert st.read_text("quality/2026-11-20/summary.md") == "why the run stopped"


def test_a_task_reads_only_what_it_needs_and_its_result_names_store_urls(store, monkeypatch,
                                                                         tmp_path):
    from revisit.bridge.workspace import workspace

    st, _ = store
    st.publish_dir(_folder(tmp_path / "c", {"customers.parquet": "c"}), "clean/2026-11-20")
    st.publish_dir(_folder(tmp_path / "s", {"big.parquet": "s"}), "snapshots/2026-11-20")
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", st.url)
    with workspace() as place:
        place.needs(place.root / "clean/2026-11-20")
        assert _tree(place.root) == {"clean/2026-11-20/customers.parquet": "c"}
        result = place.locate({"path": str(place.root / "clean/2026-11-20"), "rows": 3})
    assert result == {"path": f"{st.url}/clean/2026-11-20", "rows": 3}


def test_names_with_glob_characters_are_replaced_and_removed_by_their_literal_keys(store,
                                                                                tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "v1", {"A[1].csv": "one", "A*?.csv": "x"}),
                   "call_lists/2026-11-20")
    st.publish_dir(_folder(tmp_path / "v2", {"A[1].csv": "two"}), "call_lists/2026-11-20")
    st.fetch("call_lists/2026-11-20", tmp_path / "read")
    assert _tree(tmp_path / "read") == {"call_lists/2026-11-20/A[1].csv": "two"}
    st.delete("call_lists/2026-11-20")
    assert st._listing("call_lists") == []


def test_a_publish_leaves_another_writer_s_upload_under_way_alone(store, tmp_path):
    st, _ = store
    st.publish_dir(_folder(tmp_path / "v1", {"x.csv": "1"}), "sla/2026-11-20")
    inflight = st.key(f"sla/2026-11-20/{VERSIONS}/{time.time_ns():020d}-other/x.csv")
    st.fs.pipe_file(inflight, b"the other try's upload")
    st.publish_dir(_folder(tmp_path / "v2", {"x.csv": "2"}), "sla/2026-11-20")
    assert inflight in st._listing("sla/2026-11-20")
    assert len(st._listing("sla/2026-11-20")) == 3  # manifest, the new x.csv, the other's


def test_an_object_that_is_not_what_its_manifest_names_is_never_read(store, tmp_path):
    from revisit.bridge.object_store import StoreError

    st, _ = store
    manifest = st.publish_dir(_folder(tmp_path / "v1", {"x.csv": "abc"}), "sla/2026-11-20")
    st.fs.pipe_file(st.key(f"sla/2026-11-20/{manifest.files['x.csv']['object']}"), b"xyz")
    with pytest.raises(StoreError, match="size or sha256"):
        st.fetch("sla/2026-11-20", tmp_path / "read")


def test_a_mirror_of_a_killed_task_is_deleted_and_a_live_one_kept(tmp_path):
    import os
    import subprocess
    import sys

    from revisit.bridge.workspace import MIRROR_PREFIX, remove_dead_mirrors

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dead = _folder(tmp_path / f"{MIRROR_PREFIX}{gone}-abc", {"clean/x.parquet": "personal"})
    live = _folder(tmp_path / f"{MIRROR_PREFIX}{os.getpid()}-def", {"x": "mine"})
    assert remove_dead_mirrors(tmp_path) == [dead]
    assert live.is_dir() and not dead.exists()


def test_a_stage_error_names_the_store_not_the_task_s_mirror(store, monkeypatch):
    from revisit.bridge import tasks
    from revisit.core.errors import RevisitError

    st, _ = store
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", st.url)
    monkeypatch.setenv("AIRFLOW_CONN_REVISIT_RESULTS", "sqlite://")
    seen = {}

    @tasks.fail_fast
    def stage() -> None:
        seen["root"] = str(tasks._root())
        raise RevisitError(f"no clean data: {tasks._root() / 'clean/2026-11-20'} is missing")

    with pytest.raises(RevisitError) as error:
        stage()
    assert str(error.value) == f"no clean data: {st.url}/clean/2026-11-20 is missing"
    assert seen["root"] not in str(error.value)


def test_an_object_store_root_without_a_results_database_fails_every_task_at_once(
        store, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.bridge import tasks

    st, _ = store
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", st.url)
    monkeypatch.delenv("AIRFLOW_CONN_REVISIT_RESULTS", raising=False)
    with pytest.raises(AirflowFailException, match="define connection revisit_results"):
        tasks.extract_daily({"params": {"call_date": "2026-11-20"}})
