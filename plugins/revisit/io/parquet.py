"""Parquet tables written chunk after chunk (the quality gate's clean tables and shard rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


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


__all__ = ["ParquetTables", "file_schemas"]
