"""Each task's output root as a local folder, whatever the configured root is.

A local root (a path or file:///…, the embedded default) is used as it is. An object-store
root (revisit.bridge.object_store) gets a private mirror per task, in a fresh temp folder
(REVISIT_WORK_DIR, else the system's): the task fetches the partitions it reads
(Workspace.needs), the stages run on local files exactly as with a local root, and every
atomic write they completed is published to the store when the task ends — also when it
fails, as on a disk, where a quality stop's report stays for people to read. Then the mirror
is deleted: tasks on different hosts share nothing but the store.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from revisit.bridge.object_store import ObjectStore, publish_writes
from revisit.config.paths import on_object_store, output_location, output_root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    """`root`: the local folder the stages see as the output root; `store`: the object store
    it mirrors (None: `root` is the output root itself)."""

    root: Path
    store: ObjectStore | None = None

    def needs(self, *paths: Path) -> None:
        """Fetch these partitions, folders or files (local paths under `root`) from the
        store, unless already here; what the store lacks stays missing, for the stage to
        report as it would on a disk."""
        if self.store is None:
            return
        for path in paths:
            if path.exists():
                continue
            rel = path.relative_to(self.root).as_posix()
            count = self.store.fetch(rel, self.root)
            log.info("fetched %s (%d file(s))", self.store.location(rel), count)

    def locate(self, value: Any) -> Any:
        """`value` (a task's small result) with every mirror path turned into its URL
        (revisit.io.files.shown, which the mirror sets)."""
        from revisit.io.files import shown

        if self.store is None:
            return value
        if isinstance(value, str):
            return shown(value)
        if isinstance(value, dict):
            return {k: self.locate(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.locate(v) for v in value)
        return value


_current: contextvars.ContextVar[Workspace | None] = contextvars.ContextVar(
    "revisit_workspace", default=None)


def current() -> Workspace | None:
    """The workspace of the running task, if any."""
    return _current.get()


@contextlib.contextmanager
def workspace() -> Iterator[Workspace]:
    """The task's workspace (see the module docstring); nested calls share the outer one."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    location = output_location()
    if not on_object_store(location):
        token = _current.set(Workspace(output_root()))
        try:
            yield _current.get()  # type: ignore[misc]
        finally:
            _current.reset(token)
        return
    yield from _mirrored(ObjectStore(location))


MIRROR_PREFIX = "revisit-mirror-"  # revisit-mirror-<pid>-<random>: its task's process


def _mirrored(store: ObjectStore) -> Iterator[Workspace]:
    from revisit.io.files import ensure_dir, recording_writes, showing

    base = Path(os.environ.get("REVISIT_WORK_DIR") or tempfile.gettempdir())
    ensure_dir(base)
    remove_dead_mirrors(base)
    mirror = Path(tempfile.mkdtemp(prefix=f"{MIRROR_PREFIX}{os.getpid()}-", dir=base))
    token = _current.set(Workspace(mirror, store))
    try:
        with showing(mirror, store.url), recording_writes() as writes:
            failed = True
            try:
                yield _current.get()  # type: ignore[misc]
                failed = False
            finally:
                _publish(store, writes, mirror, failed)
    finally:
        _current.reset(token)
        shutil.rmtree(mirror, ignore_errors=True)


def remove_dead_mirrors(base: Path) -> list[Path]:
    """Delete the mirrors in `base` whose task process is gone (killed before its cleanup:
    they hold personal data); a live task's mirror is left alone."""
    from revisit.io.files import _alive

    removed = []
    for path in sorted(base.glob(f"{MIRROR_PREFIX}*")):
        pid = path.name[len(MIRROR_PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.warning("removed %d mirror(s) of killed tasks from %s", len(removed), base)
    return removed


def _publish(store: ObjectStore, writes, mirror: Path, failed: bool) -> None:
    """What the task completed goes to the store; after a failure, a publish error is logged
    and the task's own error is the one raised."""
    try:
        publish_writes(store, writes, mirror)
    except Exception:
        if not failed:
            raise
        log.exception("publishing the failed task's completed writes to %s failed", store.url)


__all__ = ["MIRROR_PREFIX", "Workspace", "current", "remove_dead_mirrors", "workspace"]
