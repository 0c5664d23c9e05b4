"""run.json (revisit.io.runinfo): which policy, snapshot and code made a partition — the same
bytes for every rerun of the same code over the same snapshot, nulls for what is unknown."""

from __future__ import annotations

import json

from revisit import __version__
from revisit.config.paths import PROJECT_ROOT
from revisit.io.runinfo import RUN_FILE, code_version, git_commit, run_info, write_run_info


def test_run_info_quotes_the_policy_and_the_snapshots_manifest(policy, tmp_path):
    snapshot = tmp_path / "snapshots" / "2026-11-20"
    snapshot.mkdir(parents=True)
    (snapshot / "snapshot.json").write_text(json.dumps(
        {"extracted_at": "2026-11-20T06:00:03+08:00", "cutoff": "2026-11-20", "rows": {}}))
    info = run_info(policy, snapshot, "2026-11-20")
    assert info == {
        "period": "2026-11-20", "policy_version": policy.version,
        "profile": "feedback-form",  # policy.yaml links to the profile
        "snapshot": {"cutoff": "2026-11-20", "extracted_at": "2026-11-20T06:00:03+08:00"},
        "code": {"package": __version__, "commit": git_commit(PROJECT_ROOT)},
    }


def test_a_snapshot_without_manifest_or_none_at_all_gives_nulls(policy, tmp_path):
    (tmp_path / "old").mkdir()
    for folder in (tmp_path / "old", tmp_path / "gone"):
        assert run_info(policy, folder, "2026-11-20")["snapshot"] == {
            "cutoff": None, "extracted_at": None}


def test_equal_info_gives_equal_bytes(policy, tmp_path):
    info = run_info(policy, tmp_path, "2026-11")
    first = write_run_info(tmp_path / "a", info).read_bytes()
    second = write_run_info(tmp_path / "b", dict(reversed(list(info.items())))).read_bytes()
    assert first == second and (tmp_path / "a" / RUN_FILE).is_file()
    assert json.loads(first) == info


def test_the_code_version_is_read_once_and_stable():
    assert code_version() is code_version()
    assert code_version()["package"] == __version__


def test_the_commit_is_heads_in_a_checkout_and_none_outside_one(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c",
                    "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True)
    head = subprocess.run(["git", "-C", str(tmp_path / "repo"), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(tmp_path / "repo") == head
    (tmp_path / "plain").mkdir()
    assert git_commit(tmp_path / "plain") is None
