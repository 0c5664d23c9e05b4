"""The quarantine frame: one row per (removed row, failed check), naming the row by its key, in
the order of the tables, then of the rows, then of the checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revisit.config.schema import Table, reason_width, row_key_width
from revisit.quality.failures import KEY_SEPARATOR, Failure

QUARANTINE_COLUMNS = ["table", "row_key", "check", "column", "reason", "value"]
_SORT_COLUMNS = ["_table", "_pos", "_order"]


def row_keys(frame: pd.DataFrame, table: Table, positions: np.ndarray,
             offset: int = 0) -> np.ndarray:
    """The key value(s) of the rows at `positions` joined by '|' (timestamps ISO), or
    '<row N>' (N from 1 in the table's order: `frame` is the table from row `offset` on)
    when a key value is missing or blank, or when
    the key is longer than the results database's quality_issues.row_key holds (the key's
    value is still in the quarantine row's reason and value)."""
    parts = []
    for col in table.key:
        part = frame[col].iloc[positions]
        if pd.api.types.is_datetime64_any_dtype(part):
            part = part.where(part.notna()).astype("string").str.replace(" ", "T", n=1)
            if table.columns.get(col) == "date":
                part = part.str.slice(0, 10)
        parts.append(part.astype("string").reset_index(drop=True))
    missing = pd.Series(False, index=range(len(positions)))
    for part in parts:
        missing |= part.isna() | (part.str.strip() == "").fillna(True)
    joined = parts[0].fillna("")
    for part in parts[1:]:
        joined = joined + KEY_SEPARATOR + part.fillna("")
    missing |= joined.str.len() > row_key_width()
    fallback = "<row " + pd.Series(positions + offset + 1).astype("string") + ">"
    return joined.where(~missing, fallback).to_numpy(dtype=object)


def quarantine_parts(table: Table, frame: pd.DataFrame, failures: list[Failure],
                     table_index: int, offset: int = 0) -> list[pd.DataFrame]:
    """One table's quarantine rows, one frame per failure with rows, carrying the sort
    columns (`table_index`: the table's place in the run; `_order`: the failure's place in
    `failures`) that quarantine_frame orders by. Row keys are computed once per failing row,
    however many checks it fails. `frame` may be a chunk: the table from row `offset` on."""
    all_positions = [f.positions for f in failures if len(f.positions)]
    if not all_positions:
        return []
    positions = np.unique(np.concatenate(all_positions))
    keys = pd.Series(row_keys(frame, table, positions, offset), index=positions)
    return [pd.DataFrame({
        "table": table.name,
        "row_key": keys.loc[f.positions].to_numpy(),
        "check": f.check,
        "column": f.column,
        "reason": f.reason if isinstance(f.reason, str) else f.reason.to_numpy(),
        "value": f.value.to_numpy(),
        "_table": table_index,
        "_pos": f.positions + offset,
        "_order": order,
    }) for order, f in enumerate(failures) if len(f.positions)]


def quarantine_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Every table's parts as the quarantine frame (QUARANTINE_COLUMNS, all strings): a row's
    failures together, in check order, rows in table order."""
    if parts:
        quarantine = pd.concat(parts, ignore_index=True)
        quarantine = quarantine.sort_values(_SORT_COLUMNS, kind="stable")
        quarantine = quarantine[QUARANTINE_COLUMNS].reset_index(drop=True)
    else:
        quarantine = pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS})
    quarantine = quarantine.astype(dict.fromkeys(QUARANTINE_COLUMNS, "string"))
    # Reasons quote at most VALUE_WIDTH characters of a value, so this cut is a last guard:
    # the results database's quality_issues.reason holds reason_width() characters.
    return quarantine.assign(reason=quarantine["reason"].str.slice(0, reason_width()))


__all__ = ["QUARANTINE_COLUMNS", "quarantine_frame", "quarantine_parts", "row_keys"]
