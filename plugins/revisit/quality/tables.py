"""The canonical tables as the gate takes them: in which order (parents first, for the
cascade), each one present, with its canonical columns typed, on a positional index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from graphlib import TopologicalSorter

import pandas as pd

from revisit.config.schema import TABLES, Table
from revisit.io.extract import PARSE_ERRORS
from revisit.quality.errors import QualityError
from revisit.quality.suites import suite_columns

_NUMERIC_KINDS = ("int", "bool", "money")


def table_order() -> list[str]:
    """Parents before children, otherwise in schema order (departments, agents, customers,
    orders, tickets, ticket_pauses, visits)."""
    parents = {name: set(table.references.values()) - {name} for name, table in TABLES.items()}
    TopologicalSorter(parents).prepare()  # raises CycleError on a reference cycle
    order: list[str] = []
    while len(order) < len(TABLES):
        order.append(next(n for n in TABLES if n not in order and parents[n] <= set(order)))
    return order


def empty_frame(table: Table) -> pd.DataFrame:
    """A table with no rows, typed as read_snapshot would type it (the optional
    ticket_pauses when a snapshot has none)."""
    return pd.DataFrame({
        col: pd.Series(dtype="string" if kind in ("id", "text") else
                       "Int64" if kind == "int" else "Int8" if kind == "bool" else
                       "float64" if kind == "money" else "datetime64[us]")
        for col, kind in table.columns.items()
    })


def check_columns(name: str, frame: pd.DataFrame, suite: dict) -> None:
    """Every canonical column (and every column the suite names) is there, and typed: a
    timestamp held as text would be compared as text, so that is refused too."""
    expected = [*TABLES[name].columns, *suite_columns(suite)]
    for col in dict.fromkeys(expected):
        if col != PARSE_ERRORS and col not in frame.columns:
            raise QualityError(f"table {name} has no column {col} (the quality gate needs the "
                               "canonical columns of revisit.config.schema)")
    for col, kind in TABLES[name].columns.items():
        series = frame[col]
        if kind == "datetime":
            typed = pd.api.types.is_datetime64_any_dtype(series)
        elif kind == "date":  # Parquet date32 reads back as datetime.date objects
            typed = not pd.api.types.is_string_dtype(series) or series.dtype == object
        elif kind in _NUMERIC_KINDS:
            typed = pd.api.types.is_numeric_dtype(series)
        else:
            continue
        if not typed and series.notna().any():
            raise QualityError(f"table {name} column {col} holds {series.dtype} values, not "
                               f"{kind} (pass frames typed as read_snapshot returns them)")


def table_input(frames: Mapping[str, pd.DataFrame], suites: dict[str, dict],
                name: str) -> tuple[pd.DataFrame, dict]:
    """One table and its suite, checked, on a positional index (failures are positions) and
    with a `_parse_errors` column (frames built by hand may have none). A missing table is
    an error, except the optional ticket_pauses: a snapshot from before pauses were kept."""
    if name in frames:
        frame = frames[name]
    elif name == "ticket_pauses":
        frame = empty_frame(TABLES[name])
    else:
        raise QualityError(f"no frame for table {name} (the snapshot must hold every "
                           "canonical table)")
    suite = suites.get(name)
    if suite is None:
        raise QualityError(f"no expectation suite for table {name}")
    check_columns(name, frame, suite)
    frame = frame.reset_index(drop=True)
    if PARSE_ERRORS not in frame.columns:
        frame = frame.assign(**{PARSE_ERRORS: pd.Series(pd.NA, index=frame.index,
                                                         dtype="string")})
    return frame, suite


def table_rows(frames: Mapping[str, pd.DataFrame], name: str) -> int:
    """How many rows table `name` has (a snapshot's file says it without reading)."""
    if name not in frames:
        return 0
    rows = getattr(frames, "rows", None)
    return rows(name) if rows is not None else len(frames[name])


def table_chunks(frames: Mapping[str, pd.DataFrame], suite: dict, name: str, size: int,
                 columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Table `name` in consecutive chunks of at most `size` rows as table_input gives the
    whole table (checked, positional index, `_parse_errors`), or only its `columns`. A
    snapshot (revisit.io.extract.SnapshotTables) reads one chunk at a time."""
    reader = getattr(frames, "chunks", None)
    if reader is not None:
        source = reader(name, size, columns)
    else:
        whole = frames[name] if columns is None else frames[name][columns]
        source = (whole.iloc[start:start + size] for start in range(0, len(whole), size))
    for chunk in source:
        if columns is None:
            check_columns(name, chunk, suite)
            chunk = chunk.reset_index(drop=True)
            if PARSE_ERRORS not in chunk.columns:
                chunk = chunk.assign(**{PARSE_ERRORS: pd.Series(pd.NA, index=chunk.index,
                                                                 dtype="string")})
        yield chunk


__all__ = ["check_columns", "empty_frame", "table_chunks", "table_input", "table_order",
           "table_rows"]
