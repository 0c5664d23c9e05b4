"""Atomic file and folder writes: a reader (or a retry) never sees a half-written output."""

from __future__ import annotations

import contextlib
import contextvars
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

# What a task wrote, for an output root on object storage (revisit.bridge.workspace publishes
# each completed write there): ("dir", folder) from atomic_dir, ("file", path) from atomic_path.
DIR, FILE = "dir", "file"
_journal: contextvars.ContextVar[list[tuple[str, Path]] | None] = contextvars.ContextVar(
    "revisit_writes", default=None)


@contextlib.contextmanager
def recording_writes() -> Iterator[list[tuple[str, Path]]]:
    """Record every atomic write completed inside the block, in order."""
    writes: list[tuple[str, Path]] = []
    token = _journal.set(writes)
    try:
        yield writes
    finally:
        _journal.reset(token)


def _record(kind: str, target: Path) -> None:
    writes = _journal.get()
    if writes is not None:
        writes.append((kind, target))


# Where the output root lives for its users, when the stages work on a local mirror of it
# (revisit.bridge.workspace): (mirror folder, the root's URL).
_shown_root: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "revisit_shown_root", default=None)


@contextlib.contextmanager
def showing(mirror: Path, url: str) -> Iterator[None]:
    """Inside the block, shown() names paths under `mirror` by `url` instead."""
    token = _shown_root.set((str(mirror), url))
    try:
        yield
    finally:
        _shown_root.reset(token)


def shown(text: str | Path) -> str:
    """A path (or a message naming paths) as its users find it: a mirror's paths as the
    output root's URL; unchanged on a local root."""
    text = str(text)
    mapping = _shown_root.get()
    return text if mapping is None else text.replace(mapping[0], mapping[1])


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
        _record(FILE, target)
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
        _record(DIR, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def link_tree(source: Path, target: Path, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """`source`'s files (every folder below it too) as `target`, atomically (atomic_dir): hard
    links where the file system allows, else copies; `skip`: relative POSIX paths left out.
    Yields the temp folder, so the caller can add to it before it is published.

    Why links: a partition taken over from another period (the daily snapshot or gate of M's
    cut-off day) holds the same bytes; links cost no copy and no disk."""
    with atomic_dir(target) as tmp:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.is_dir() or rel.as_posix() in skip:
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, tmp / rel)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(path, tmp / rel)
        yield tmp
