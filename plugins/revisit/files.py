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


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one rename."""
    ensure_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
