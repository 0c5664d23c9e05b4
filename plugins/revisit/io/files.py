"""Atomic file and folder writes: a reader (or a retry) never sees a half-written output."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Outputs hold customers' personal data: owner-only files and folders.
FILE_MODE = 0o640
DIR_MODE = 0o750
# An id that names a file (call_lists/D/<agent_id>.csv, reports/M/<department_id>.pdf) must
# stay inside its folder: no '/', '\\', control characters, and not '.' or '..'.
SAFE_NAME_PATTERN = r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f]+$"


def safe_name(name: str) -> bool:
    """Whether `name` can name a file inside its folder (see SAFE_NAME_PATTERN)."""
    import re

    return bool(re.fullmatch(SAFE_NAME_PATTERN, name))


def ensure_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with owner/group-only permissions.

    Only folders created here are chmod-ed: an existing folder (the output root, or /tmp)
    keeps the permissions its owner gave it."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for folder in missing:
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove what a killed writer of `target` left: `.<name>.<pid>.*.tmp` siblings whose
    process is gone (a live writer's temp is left alone). Readers never see these: they are
    hidden and never renamed into place."""
    removed: list[Path] = []
    if target.parent.name.endswith(".tmp"):
        return removed  # inside a partition being written: it is new, nothing stale in it
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        parts = path.name[len(target.name) + 2:].split(".")
        if not parts[0].isdigit() or _alive(int(parts[0])):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one rename."""
    ensure_dir(target.parent)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_text(target: Path, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success it replaces `target` whole.

    Used for a run's partition so a failed or killed task leaves the previous complete
    partition (or none), never a mix."""
    ensure_dir(target.parent)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                dir=target.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
        # Whatever wrote into the folder (Parquet, pandas, a template), its files get the
        # private modes before the folder becomes visible under its name.
        for path in tmp.rglob("*"):
            os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.old.tmp")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
