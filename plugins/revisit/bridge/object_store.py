"""The output root on object storage (DESIGN.md "Deployment": scale-out), through Airflow's
ObjectStoragePath: `s3://<conn_id>@bucket/prefix`, `gs://…`, any scheme a provider registers.

An object store has no rename, so a partition folder cannot be swapped in whole as on a disk
(revisit.io.files.atomic_dir). A folder partition is published instead as

    <partition>/_v/<version>/<file>...   the files of one version, uploaded first
    <partition>/_manifest.json           written last, in one PUT: which objects are the files

and readers trust only the manifest: a partition without one does not exist, and a reader
sees the old version or the new one whole, never a mix, because one PUT replaces the manifest
atomically. Objects of older versions are deleted after the new manifest is in place. A file
written on its own (a PDF into reports/M, a handoff Parquet) is one object, which a single
PUT (or a multipart upload, visible only once complete) also replaces atomically; inside a
folder partition it becomes a new entry of that partition's manifest. One writer per
partition at a time, which the DAGs' task order gives.

Nothing here knows a rule: it moves files between the store and a task's local mirror
(revisit.bridge.workspace) by their path relative to the output root.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from revisit.core.errors import RevisitError

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
VERSIONS = "_v"
FORMAT = 1
ORPHAN_AGE_S = 24 * 3600  # an unreferenced version this old is no publish under way
GLOB_CHARACTERS = frozenset("*?[")  # fsspec's bulk rm takes a key holding one for a pattern


class StoreError(RevisitError):
    """The store holds something a reader must not trust: a manifest naming a missing or a
    different object (a republish under way, or a broken one). Retryable: a republish that
    was under way is complete on the next try."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    """A new version's name: sortable by time, unique across writers."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Manifest:
    """A folder partition's published files: relative name -> object (relative to the
    partition), size and sha256."""

    version: str
    files: dict[str, dict[str, Any]]

    def to_bytes(self) -> bytes:
        return (json.dumps({"format": FORMAT, "version": self.version, "files": self.files},
                           indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        record = json.loads(data)
        return cls(str(record["version"]), dict(record["files"]))


class ObjectStore:
    """The output root at `url` (an ObjectStoragePath URL); `rel` arguments are POSIX paths
    relative to it ('call_lists/2026-11-20')."""

    def __init__(self, url: str) -> None:
        from airflow.sdk import ObjectStoragePath

        self.url = url.rstrip("/")
        self.base = ObjectStoragePath(self.url)
        self.fs = self.base.fs
        self.prefix = self.base.path.rstrip("/")

    # ------------------------------------------------------------- keys
    def key(self, rel: str | PurePosixPath) -> str:
        rel = str(rel).strip("/")
        return f"{self.prefix}/{rel}" if rel else self.prefix

    def location(self, rel: str | PurePosixPath) -> str:
        """The URL a user finds `rel` at (for logs and XCom)."""
        rel = str(rel).strip("/")
        return f"{self.url}/{rel}" if rel else self.url

    def _cat(self, key: str) -> bytes | None:
        try:
            return self.fs.cat_file(key)
        except FileNotFoundError:
            return None

    def manifest(self, partition: str) -> Manifest | None:
        data = self._cat(self.key(f"{partition}/{MANIFEST}"))
        return None if data is None else Manifest.from_bytes(data)

    def partition_of(self, rel: str) -> tuple[str, Manifest] | None:
        """The folder partition holding `rel` (or being `rel`) with its manifest, else None."""
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts) + 1):
            partition = "/".join(parts[:depth])
            manifest = self.manifest(partition)
            if manifest is not None:
                return partition, manifest
        return None

    def _listing(self, rel: str) -> list[str]:
        """Every object key under `rel`/ (fresh: never an earlier listing's cache)."""
        key = self.key(rel)
        self.fs.invalidate_cache(key)
        try:
            return sorted(self.fs.find(key, detail=False))
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------- read
    def exists(self, rel: str) -> bool:
        """Whether `rel` is a published partition, a file of one, or a plain object/folder."""
        if self.partition_of(rel) is not None:
            return True
        return bool(self._listing(rel))

    def fetch(self, rel: str, local_root: Path) -> int:
        """Download `rel` (a partition, a file inside one, or a plain folder or object) to
        local_root/rel as the readers' view: manifests resolved, versions hidden. Returns the
        number of files; 0 when the store has nothing there."""
        pairs = self._resolve(rel)
        if not pairs:
            return 0
        targets = [local_root / name for name, _, _ in pairs]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get([key for _, key, _ in pairs], [str(t) for t in targets])
        except FileNotFoundError as error:
            raise StoreError(f"{self.location(rel)}: an object its manifest names is gone "
                             f"(republished meanwhile?): {error}") from error
        for (name, key, entry), target in zip(pairs, targets, strict=True):
            if entry is not None and (target.stat().st_size != entry["size"]
                                      or _sha256(target) != entry["sha256"]):
                raise StoreError(f"{self.location(name)}: {key} is not the object its manifest "
                                 "names (size or sha256 differ)")
        return len(pairs)

    def _resolve(self, rel: str) -> list[tuple[str, str, dict | None]]:
        """(name relative to the root, object key, its manifest entry) of what `rel` holds."""
        rel = rel.strip("/")
        owner = self.partition_of(rel)
        if owner is not None:
            return self._manifest_files(*owner, under=rel)
        keys = self._listing(rel)
        partitions = sorted({k[: -len(MANIFEST) - 1] for k in keys
                             if k.endswith(f"/{MANIFEST}") and f"/{VERSIONS}/" not in k})
        out: list[tuple[str, str, dict | None]] = []
        for partition_key in partitions:
            partition = self._rel(partition_key)
            manifest = self.manifest(partition)
            if manifest is not None:
                out.extend(self._manifest_files(partition, manifest, under=partition))
        for key in keys:
            if not any(key == p or key.startswith(p + "/") for p in partitions) \
                    and f"/{VERSIONS}/" not in key:  # a version counts only by its manifest
                out.append((self._rel(key), key, None))
        return out

    def _manifest_files(self, partition: str, manifest: Manifest,
                        under: str) -> list[tuple[str, str, dict | None]]:
        out = []
        for name, entry in sorted(manifest.files.items()):
            full = f"{partition}/{name}"
            if full == under or full.startswith(under + "/") or under == partition:
                out.append((full, self.key(f"{partition}/{entry['object']}"), entry))
        return out

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if key.startswith(self.prefix + "/") else key

    # ------------------------------------------------------------- write
    def publish_dir(self, local: Path, rel: str) -> Manifest:
        """Replace partition `rel` with the local folder's files: upload a new version, then
        the manifest (the atomic step), then delete what no manifest names any more."""
        version = _version()
        files = sorted(p for p in local.rglob("*") if p.is_file())
        entries = {}
        for path in files:
            name = path.relative_to(local).as_posix()
            entries[name] = {"object": f"{VERSIONS}/{version}/{name}",
                             "size": path.stat().st_size, "sha256": _sha256(path)}
        if files:
            self.fs.put([str(p) for p in files],
                        [self.key(f"{rel}/{entries[p.relative_to(local).as_posix()]['object']}")
                         for p in files])
        previous = self.manifest(rel)
        manifest = Manifest(version, entries)
        self.fs.pipe_file(self.key(f"{rel}/{MANIFEST}"), manifest.to_bytes())
        self._collect(rel, previous, manifest)
        return manifest

    def put_file(self, local: Path, rel: str) -> None:
        """Replace the single file `rel`: one object, or a new entry of the manifest of the
        folder partition it lies in."""
        owner = self.partition_of(rel)
        if owner is None:
            self.fs.put_file(str(local), self.key(rel))
            return
        partition, manifest = owner
        name = rel[len(partition) + 1:]
        version = _version()
        entry = {"object": f"{VERSIONS}/{version}/{name}", "size": local.stat().st_size,
                 "sha256": _sha256(local)}
        self.fs.put_file(str(local), self.key(f"{partition}/{entry['object']}"))
        updated = Manifest(manifest.version, {**manifest.files, name: entry})
        self.fs.pipe_file(self.key(f"{partition}/{MANIFEST}"), updated.to_bytes())
        self._collect(partition, manifest, updated)

    def _collect(self, partition: str, previous: Manifest | None, current: Manifest) -> None:
        """Delete the objects the previous manifest named and the current one does not. An
        object no manifest of ours named (another writer's upload under way) is left to
        remove_trash's age rule."""
        if previous is None:
            return
        keep = {e["object"] for e in current.files.values()}
        self._delete([self.key(f"{partition}/{e['object']}") for e in previous.files.values()
                      if e["object"] not in keep])

    def _delete(self, keys: list[str]) -> None:
        """Delete these objects by their literal keys (never as glob patterns)."""
        literal = [k for k in keys if GLOB_CHARACTERS.isdisjoint(k)]
        if literal:
            self.fs.rm(literal)
        for key in keys:
            if not GLOB_CHARACTERS.isdisjoint(key):
                self.fs.rm_file(key)

    # ------------------------------------------------------------- retention's Tree
    def folders(self, rel: str) -> list[str]:
        """The names of the folders directly under `rel` (partitions of a kind, replays)."""
        key = self.key(rel)
        self.fs.invalidate_cache(key)
        try:
            entries = self.fs.ls(key, detail=True)
        except FileNotFoundError:
            return []
        names = (PurePosixPath(e["name"]).name for e in entries
                 if e.get("type") == "directory")
        return sorted(n for n in names if not n.startswith("."))

    def delete(self, rel: str) -> None:
        """Delete `rel` whole: a folder partition's manifest first (readers stop seeing it at
        once), then every object under it."""
        manifest_key = self.key(f"{rel}/{MANIFEST}")
        if self._cat(manifest_key) is not None:
            self.fs.rm_file(manifest_key)
        self._delete(self._listing(rel))

    def remove_trash(self, older_than_s: float = ORPHAN_AGE_S) -> int:
        """Delete versions no manifest names (left by a writer that died between its upload
        and its manifest, or by an interrupted remove) once older than `older_than_s`: a
        younger one may be a publish under way."""
        now = time.time_ns()
        by_partition: dict[str, list[str]] = {}
        for key in self._listing(""):
            partition, sep, rest = key.partition(f"/{VERSIONS}/")
            born = rest.split("/", 1)[0].split("-", 1)[0]
            if sep and born.isdigit() and now - int(born) >= older_than_s * 1e9:
                by_partition.setdefault(self._rel(partition), []).append(key)
        orphans = []
        for partition, keys in by_partition.items():
            manifest = self.manifest(partition)
            named = set() if manifest is None else {
                self.key(f"{partition}/{e['object']}") for e in manifest.files.values()}
            orphans += [k for k in keys if k not in named]
        self._delete(orphans)
        return len(orphans)

    def read_text(self, rel: str) -> str | None:
        """A small file's text through the readers' view, None when absent."""
        pairs = self._resolve(rel)
        if len(pairs) != 1 or pairs[0][0] != rel.strip("/"):
            return None
        data = self._cat(pairs[0][1])
        return None if data is None else data.decode("utf-8")

    def materialise(self, local_root: Path) -> int:
        """The whole root as its readers see it, into `local_root` (a copy to compare with a
        local run, or to hand someone)."""
        return self.fetch("", local_root)


def publish_writes(store: ObjectStore, writes: Iterable[tuple[str, Path]],
                   local_root: Path) -> list[str]:
    """Publish a task's completed local writes (revisit.io.files.recording_writes) to the
    store as they stand now; returns the relative paths published. A write inside a folder
    the task also wrote goes with that folder; one inside a temp folder (a partition being
    built) never counts."""
    from revisit.io.files import DIR

    todo: dict[Path, str] = {}
    for kind, path in writes:
        try:
            rel = path.relative_to(local_root)
        except ValueError:
            continue  # outside the output root (a scratch file)
        if any(part.startswith(".") and part.endswith(".tmp") for part in rel.parts):
            continue
        todo[path] = DIR if DIR in (kind, todo.get(path)) else kind
    folders = [path for path, kind in todo.items() if kind == DIR]
    published = []
    for path, kind in todo.items():
        if any(path != folder and path.is_relative_to(folder) for folder in folders):
            continue  # the folder's publish carries it
        rel = path.relative_to(local_root).as_posix()
        if kind == DIR and path.is_dir():
            store.publish_dir(path, rel)
        elif path.is_file():
            store.put_file(path, rel)
        else:
            continue
        published.append(rel)
        log.info("published %s", store.location(rel))
    return published


__all__ = ["MANIFEST", "VERSIONS", "Manifest", "ObjectStore", "StoreError", "publish_writes"]
