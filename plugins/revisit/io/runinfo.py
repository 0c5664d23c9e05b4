"""run.json: what produced a partition (DESIGN.md "Reproducible reruns and what-if replay").

Every partition a run writes for users (call_lists/D, sla/D, quality/D, clean/D, quality/M,
reports/M, and the same under replays/<replay_id>/) holds one run.json saying which policy
(policy_version, profile), which snapshot (its cut-off and when it was extracted) and which code
(package version, git commit) made it. The stage writes it inside its atomic_dir, so it lands
with the files it describes and a partition never shows another run's provenance.

run.json holds nothing that changes between reruns of the same code over the same snapshot (no
clock, no host, no process id): a rerun reproduces it byte for byte, like the files beside it.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from revisit import __version__
from revisit.config.paths import PROJECT_ROOT
from revisit.config.policy import Policy
from revisit.io.files import write_text

RUN_FILE = "run.json"
_COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1 or SHA-256 object names


def run_info(policy: Policy, snapshot: Path, period: str) -> dict[str, Any]:
    """The provenance of `period`'s outputs computed under `policy` from the snapshot folder
    `snapshot`: cut-off and extracted_at from its snapshot.json (None for a snapshot taken
    before manifests were written)."""
    from revisit.io.extract import snapshot_manifest

    manifest = snapshot_manifest(snapshot) if snapshot.is_dir() else {}
    return {
        "period": period,
        "policy_version": policy.version,
        "profile": _shown_profile(policy.profile),
        "snapshot": {"cutoff": manifest.get("cutoff"),
                     "extracted_at": manifest.get("extracted_at")},
        "code": code_version(),
    }


def write_run_info(folder: Path, info: dict[str, Any]) -> Path:
    """folder/run.json (atomic; sorted keys, so equal info gives equal bytes)."""
    text = json.dumps(info, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    return write_text(folder / RUN_FILE, text)


def _shown_profile(profile: str) -> str:
    """A profile name as is; a policy file inside the project relative to it (the same on every
    host of a deployment), any other file as given."""
    path = Path(profile)
    if path.is_absolute() and path.is_relative_to(PROJECT_ROOT):
        return path.relative_to(PROJECT_ROOT).as_posix()
    return profile


@cache
def code_version() -> dict[str, str | None]:
    """The revisit package version and, when the project is a git checkout, the commit of
    HEAD (None outside one); computed once per process."""
    return {"package": __version__, "commit": git_commit(PROJECT_ROOT)}


def git_commit(root: Path) -> str | None:
    """HEAD's commit when `root` is a git checkout; None without git or outside a checkout (a
    wheel, an image without .git). code_version caches it: one `git` call per process."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and _COMMIT.fullmatch(value) else None


__all__ = ["RUN_FILE", "code_version", "git_commit", "run_info", "write_run_info"]
