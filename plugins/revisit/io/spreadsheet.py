"""Agent-facing files: CSV and formatted XLSX, safe to open in a spreadsheet program.

CRM text is typed by people and may start with '=', '+', '-', '@', a tab or a carriage
return; a spreadsheet would run such a cell as a formula (CSV injection). Text cells are
neutralised with a leading apostrophe in CSV, and XLSX cells are always written as strings,
never formulas.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.io.files import atomic_path

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A signed number is no formula: an international phone (+14155552671) stays as written.
_SIGNED_NUMBER = r"^[+-]?[0-9]+(?:\.[0-9]+)?$"
MAX_COLUMN_WIDTH = 60


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would read as a formula get a leading apostrophe (a
    plain signed number such as '+14155552671' or '-5' is left alone: nothing to run)."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            text = col.astype("string")
            risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
            if not risky.any():
                continue
            # The number check only where a cell starts like a formula (a regex on every cell
            # of every column dominated writing a million-row file).
            risky[risky] = ~text[risky].str.fullmatch(_SIGNED_NUMBER).fillna(False)
            out[name] = text.mask(risky, "'" + text)
    return out


def _iso_timestamps(col: pd.Series) -> pd.Series:
    """Timestamp.isoformat() of every cell (2026-11-20T18:00:00+08:00), vectorised when no
    cell has a fraction of a second (what the CRM stamps hold), per cell otherwise."""
    known = col.dropna()
    if not ((known.dt.microsecond == 0).all() and (known.dt.nanosecond == 0).all()):
        return col.map(lambda t: t.isoformat() if pd.notna(t) else None)
    local = col.dt.tz_localize(None).to_numpy("datetime64[s]")
    utc = col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
    minutes = ((local - utc).astype("int64") // 60).astype("int64")
    offsets, inverse = np.unique(minutes, return_inverse=True)
    labels = pa.array([f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
                       for m in offsets], pa.string())  # one per distinct offset
    offset = pa.DictionaryArray.from_arrays(pa.array(inverse.astype(np.int32)), labels)
    text = pc.binary_join_element_wise(
        pa.array(np.datetime_as_string(local, unit="s"), pa.string()),
        offset.cast(pa.string()), "")
    text = pc.if_else(pa.array(col.isna().to_numpy()), pa.scalar(None, pa.string()), text)
    return pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.large_string())), index=col.index)


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as its CSV shows it: ISO timestamps, formulas neutralised, line breaks as
    '\\n'. Per cell, so a frame prepared once can be split into many files."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            out[name] = _iso_timestamps(col)
    out = neutralise(out)
    for name in out.columns:
        col = out[name]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            # Python's csv writer quotes a cell holding '\n' but not one holding a bare '\r',
            # which a spreadsheet then reads as the end of the row: the rest of the cell would
            # start a new row (and could start with '='). Line breaks are written as '\n'.
            text = col.astype("string")
            out[name] = text.str.replace("\r\n", "\n", regex=False).str.replace(
                "\r", "\n", regex=False)
    return out


def write_csv(frame: pd.DataFrame, target: Path, *, ready: bool = False) -> Path:
    """UTF-8 CSV with a header row, written atomically. ready: `frame` already went through
    csv_ready (one pass for all the files split from it)."""
    with atomic_path(target) as tmp:
        (frame if ready else csv_ready(frame)).to_csv(tmp, index=False, encoding="utf-8",
                                                      lineterminator="\n")
    return target


def _display_width(value: object) -> int:
    """Columns a value takes in a spreadsheet: CJK (wide) characters count double."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def write_xlsx(frame: pd.DataFrame, target: Path, sheet: str = "call_list") -> Path:
    """Formatted XLSX: bold header, fitted widths, frozen header row, auto-filter.

    Every text cell is written with write_string (never a formula); dates as real dates."""
    import xlsxwriter

    with atomic_path(target) as tmp:
        workbook = xlsxwriter.Workbook(
            str(tmp),
            {"strings_to_formulas": False, "strings_to_urls": False,
             "strings_to_numbers": False, "default_date_format": "yyyy-mm-dd"},
        )
        # A fixed creation date keeps reruns byte-identical.
        workbook.set_properties({"created": dt.datetime(2000, 1, 1)})
        ws = workbook.add_worksheet(sheet)
        header = workbook.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1,
                                      "font_name": "Microsoft YaHei"})
        text_fmt = workbook.add_format({"font_name": "Microsoft YaHei"})
        date_fmt = workbook.add_format({"num_format": "yyyy-mm-dd", "font_name": "Microsoft YaHei"})
        columns = list(frame.columns)
        for c, name in enumerate(columns):
            ws.write_string(0, c, name, header)
        for c, name in enumerate(columns):
            col = frame[name]
            for r, value in enumerate(col.tolist(), start=1):
                if value is None or (not isinstance(value, str) and pd.isna(value)):
                    ws.write_blank(r, c, None, text_fmt)
                elif isinstance(value, (dt.date, pd.Timestamp)):
                    stamp = pd.Timestamp(value)
                    stamp = stamp.tz_localize(None) if stamp.tzinfo else stamp
                    ws.write_datetime(r, c, stamp.to_pydatetime(), date_fmt)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    ws.write_number(r, c, value, text_fmt)
                else:
                    ws.write_string(r, c, str(value), text_fmt)
            widest = max([_display_width(name), *(_display_width(v) for v in col.tolist())])
            ws.set_column(c, c, min(widest + 2, MAX_COLUMN_WIDTH))
        ws.freeze_panes(1, 0)
        if columns:
            ws.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
        workbook.close()
    return target
