"""Parquet tables written chunk after chunk (the quality gate's clean tables and shard rows),
and shards' sorted results read back in one order a batch at a time (the merge steps)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Row groups of a file a merge reads beside many others (a shard's SLA status): the merge holds
# one row group of every file at a time (merged_frames), ~2 MB of Arrow per file at this size.
MERGED_ROW_GROUP_ROWS = 10_000


class ParquetTables:
    """<folder>/<name>.parquet for each table given, chunk after chunk (a quality gate sink,
    revisit.quality.gate.Sink). A table's chunks share its first chunk's schema; a column
    that chunk holds no value of (pandas cannot tell its type) takes its type from `types`
    (the snapshot's schemas), so a later chunk with values fits."""

    def __init__(self, folder: Path, types: dict[str, pa.Schema] | None = None) -> None:
        self.folder = folder
        self.types = types or {}
        self.writers: dict[str, pq.ParquetWriter] = {}

    def __call__(self, name: str, frame: pd.DataFrame) -> None:
        writer = self.writers.get(name)
        if writer is not None:
            writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema,
                                                    preserve_index=False))
            return
        table = self._typed(name, pa.Table.from_pandas(frame, preserve_index=False))
        self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        self.writers[name].write_table(table)

    def _typed(self, name: str, table: pa.Table) -> pa.Table:
        hint = self.types.get(name)
        if hint is None:
            return table
        for i, field in enumerate(table.schema):
            if pa.types.is_null(field.type) and field.name in hint.names:
                typed = field.with_type(hint.field(field.name).type)
                table = table.set_column(i, typed, table.column(i).cast(typed.type))
        return table

    def __enter__(self) -> ParquetTables:
        return self

    def __exit__(self, *exc) -> None:
        for writer in self.writers.values():
            writer.close()


def file_schemas(folder: Path) -> dict[str, pa.Schema]:
    """The arrow schema of each <name>.parquet in `folder` (read from the footers only)."""
    return {path.stem: pq.read_schema(path) for path in sorted(folder.glob("*.parquet"))}


def merged_frames(paths: list[Path], key: str, rows: int) -> Iterator[pd.DataFrame]:
    """The rows of several parquet files, each sorted by `key` and no two sharing a key value,
    in `key` order, as frames of about `rows` / 2 rows (typed by unified_schema; a merge holds
    about `rows` rows, the batches in hand and the frame being filled, plus one row group of
    each file: MERGED_ROW_GROUP_ROWS for a file written to be merged): what a stable sort of
    their concatenation by `key` gives, without holding it (a merge step's memory is `rows`,
    not the CRM's). No rows at all: one empty frame, so a reader still learns the columns.

    Why frames of many rounds: each frame costs its reader a fixed overhead (a CSV part, a
    parquet row group), and a round holds only what every file has in hand."""
    if not paths:
        raise ValueError("merged_frames needs at least one file")
    schema = unified_schema(paths)
    filling: list[pd.DataFrame] = []
    for frame in _merged_rounds(paths, schema, key, max(rows // (2 * len(paths)), 1)):
        filling.append(frame)
        if sum(len(f) for f in filling) >= rows // 2:
            yield pd.concat(filling, ignore_index=True)
            filling = []
    if filling:
        yield pd.concat(filling, ignore_index=True)


def _merged_rounds(paths: list[Path], schema: pa.Schema, key: str, size: int
                   ) -> Iterator[pd.DataFrame]:
    """merged_frames' rounds: every file's rows up to the smallest last key among the batches
    in hand (`size` rows of each file), sorted.

    Why it is exact: those rows of every file are all in hand (each file is sorted), and
    nothing after them sorts before them; a key's rows come from one file, so they keep that
    file's order."""
    sources = [_batches(path, schema, size, key) for path in paths]
    held = [next(source, None) for source in sources]
    if all(frame is None for frame in held):
        yield schema.empty_table().to_pandas()
    while any(frame is not None for frame in held):
        live = [i for i, frame in enumerate(held) if frame is not None]
        bound = min(held[i][key].iloc[-1] for i in live)
        out = []
        for i in live:
            upto = int((held[i][key] <= bound).to_numpy(bool).sum())  # a sorted prefix
            out.append(held[i].iloc[:upto])
            rest = held[i].iloc[upto:]
            held[i] = rest if len(rest) else next(sources[i], None)
        yield pd.concat(out, ignore_index=True).sort_values(key, kind="stable",
                                                            ignore_index=True)


def unified_schema(paths: list[Path]) -> pa.Schema:
    """One schema for parquet files of the same columns: a column one file holds no value of
    (null type) takes the type another file gives it."""
    return pa.unify_schemas([pq.read_schema(path) for path in paths],
                            promote_options="permissive")


def _batches(path: Path, schema: pa.Schema, size: int, key: str) -> Iterator[pd.DataFrame]:
    """The rows of one parquet file as frames of at most `size` rows, typed by `schema`, one
    row group in memory at a time (ParquetFile.iter_batches reads ahead ~10 MB per file, which
    a merge over many files would hold for each). Raises ValueError when the file is not
    sorted by `key`: the merge would be silently wrong."""
    file = pq.ParquetFile(path)
    last = None
    for group in range(file.metadata.num_row_groups):
        rows = file.read_row_group(group).cast(schema)
        for start in range(0, rows.num_rows, size):
            frame = rows.slice(start, size).to_pandas()
            keys = frame[key]
            if not keys.is_monotonic_increasing or (last is not None and keys.iloc[0] < last):
                raise ValueError(f"{path.name} is not sorted by {key}: it cannot be merged")
            last = keys.iloc[-1]
            yield frame


def frames_of(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """One parquet file as frames of at most `rows` rows; an empty file gives one empty frame,
    so a reader still learns its columns. The file is opened here, before the first frame is
    asked for: a file that cannot be read fails before its reader writes anything."""
    file = pq.ParquetFile(path)

    def frames() -> Iterator[pd.DataFrame]:
        empty = True
        for batch in file.iter_batches(batch_size=rows):
            empty = False
            yield pa.Table.from_batches([batch]).to_pandas()
        if empty:
            yield file.schema_arrow.empty_table().to_pandas()

    return frames()


@contextlib.contextmanager
def parquet_writer(target: Path, schema: pa.Schema | None = None
                   ) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends a frame to the parquet file `target` (the caller's temp path):
    every frame takes `schema`, else the first frame's."""
    writer: pq.ParquetWriter | None = None

    def write(frame: pd.DataFrame) -> None:
        nonlocal writer
        table = pa.Table.from_pandas(frame, preserve_index=False,
                                     schema=schema if writer is None else writer.schema)
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema)
        writer.write_table(table)

    try:
        yield write
    finally:
        if writer is not None:
            writer.close()


__all__ = ["MERGED_ROW_GROUP_ROWS", "ParquetTables", "file_schemas", "frames_of",
           "merged_frames", "parquet_writer", "unified_schema"]
