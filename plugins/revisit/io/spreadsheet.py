"""Agent-facing files: CSV and formatted XLSX, safe to open in a spreadsheet program.

CRM text is typed by people and may start with '=', '+', '-', '@', a tab or a carriage
return; a spreadsheet would run such a cell as a formula (CSV injection). Text cells are
neutralised with a leading apostrophe in CSV, and XLSX cells are always written as strings,
never formulas (headers and labels too).

The XLSX is generic: the caller gives the headers to show, the columns whose text wraps, and
the empty columns the reader fills in with their checks (Entry); this module knows no call
list, no locale.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
COLUMN_MARGIN = 1.0  # beyond the widest value, in character widths
FONT = {"font_name": "Microsoft YaHei", "font_size": 10}
LINE_HEIGHT = 14.0  # points per line of FONT in a wrapped cell
DEFAULT_ROW_HEIGHT = 15.0


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


# Rows prepared and written at a time: every cell is written on its own (csv_ready), so the
# file is the same, and the text copies of a few million rows (the SLA status of a million
# customers) are never held at once.
CSV_CHUNK_ROWS = 200_000


def _rows_at_a_time(frame: pd.DataFrame) -> int:
    """CSV_CHUNK_ROWS, or every row when pandas would format a column as a whole: it writes
    naive timestamps and durations with the precision the column's finest value needs."""
    return max(len(frame), 1) if _formats_by_frame(frame) else CSV_CHUNK_ROWS


def _formats_by_frame(frame: pd.DataFrame) -> bool:
    """Whether pandas formats a column of `frame` as a whole (naive timestamps, durations)."""
    return any(pd.api.types.is_datetime64_dtype(t) or pd.api.types.is_timedelta64_dtype(t)
               for t in frame.dtypes)


def write_csv(frame: pd.DataFrame, target: Path, *, ready: bool = False) -> Path:
    """UTF-8 CSV with a header row, written atomically. ready: `frame` already went through
    csv_ready (one pass for all the files split from it)."""
    step = _rows_at_a_time(frame)
    with csv_writer(target, ready=ready) as write:
        for start in range(0, max(len(frame), 1), step):
            write(frame.iloc[start:start + step])
    return target


@contextlib.contextmanager
def csv_writer(target: Path, *, ready: bool = False
               ) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends frames of the same columns to one UTF-8 CSV (the header before
    the first), published atomically at the end: a merge step writes its rows as they come.
    A frame with naive timestamps or durations is refused (pandas would format them by the
    frame, not by the cell, see _rows_at_a_time)."""
    parts: list[bool] = []  # per part written: whether pandas formats it by the frame
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8", newline="") as out:
        def write(rows: pd.DataFrame) -> None:
            parts.append(_formats_by_frame(rows))
            if len(parts) > 1 and any(parts):
                raise ValueError(f"{target.name}: naive timestamps cannot be written in parts")
            (rows if ready else csv_ready(rows)).to_csv(out, index=False, header=len(parts) == 1,
                                                        lineterminator="\n")

        yield write


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _display_width(value: object) -> int:
    """Columns a value takes in a spreadsheet: CJK (wide) characters count double."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return sum(2 if _is_wide(ch) else 1 for ch in text)


@dataclass(frozen=True)
class Entry:
    """An empty column after the data, for the reader to fill in.

    choices: a drop-down of these texts, nothing else accepted; whole: (lowest, highest), a
    whole number in that range; neither: free text. error: the message when an entry is
    refused; prompt: the hint shown on the selected cell."""

    header: str
    choices: tuple[str, ...] = ()
    whole: tuple[int, int] | None = None
    error: str = ""
    prompt: str = ""
    width: float = 12  # at least; wider when a word of the header needs it
    wrap: bool = False

    def validation(self) -> dict | None:
        """The xlsxwriter data validation of this column (None: free text)."""
        if self.choices:
            listed = ",".join(self.choices)
            # Written as one quoted list: a comma or quote would split or end it, and Excel
            # refuses a list longer than 255 characters.
            if any("," in c or '"' in c for c in self.choices) or len(listed) > 255:
                raise ValueError(f"{self.header!r}: drop-down choices must hold no comma or "
                                 f"double quote and take at most 255 characters: "
                                 f"{self.choices!r}")
            check: dict = {"validate": "list", "source": list(self.choices)}
        elif self.whole is not None:
            check = {"validate": "integer", "criteria": "between",
                     "minimum": self.whole[0], "maximum": self.whole[1]}
        else:
            return None
        check |= {"error_type": "stop", "ignore_blank": True}
        title = " ".join(self.header.split())[:32]  # Excel's limits: 32 and 255 characters
        if self.error:
            check |= {"error_title": title, "error_message": self.error[:255]}
        if self.prompt:
            check |= {"input_title": title, "input_message": self.prompt[:255]}
        return check


def _header_width(header: str) -> int:
    """The width a header needs when it may wrap: its longest word; a word of four or more
    wide (CJK) characters breaks anywhere, so half of it, on two lines ("客服编号" -> "客服" /
    "编号")."""
    widths = []
    for word in header.split() or [""]:
        if len(word) >= 4 and all(_is_wide(ch) for ch in word):
            widths.append(2 * -(-len(word) // 2))
        else:
            widths.append(_display_width(word))
    return max(widths)


def _header_text(header: str, width: float) -> str:
    """The header as written: a word of four or more wide characters that does not fit on one
    line is broken in the middle ("客户级别" -> "客户\n级别"), not where the column ends."""
    room = width - COLUMN_MARGIN
    lines = []
    for line in header.split("\n"):
        if (len(line) >= 4 and all(_is_wide(ch) for ch in line)
                and _display_width(line) > room):
            half = -(-len(line) // 2)
            line = f"{line[:half]}\n{line[half:]}"
        lines.append(line)
    return "\n".join(lines)


def _fitted_width(header: str, values: list, limit: float) -> float:
    """Width of a column: its widest value (the header may wrap, see _header_width), plus a
    margin, at most `limit`."""
    widest = max([_header_width(header), *(_display_width(v) for v in values)])
    return min(widest + COLUMN_MARGIN, limit)


# A wide (CJK) character, or a run of other characters up to the next space or separator:
# where a spreadsheet may break a wrapped line.
_TOKENS = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff"
                     r"\uac00-\ud7af\uf900-\ufaff\uff00-\uffef;,]+[;,]?\s*|[;,]\s*|\s+")


def _line_count(value: object, width: float) -> int:
    """Lines a wrapped cell takes in a column of `width` (greedy, as a spreadsheet breaks
    them); an estimate. Why the writer sets row heights: LibreOffice (and, not reliably, Excel)
    keeps the default height of a row of wrapped text when it opens a file, cutting it off."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return 1
    room = max(width - COLUMN_MARGIN, 1.0)
    lines = 0
    for paragraph in str(value).split("\n"):
        lines += 1
        used = 0.0
        for token in _TOKENS.findall(paragraph):
            size = _display_width(token.rstrip())
            if used and used + size > room:
                lines, used = lines + 1, 0.0
            while size > room:  # a word longer than the column breaks inside it
                lines, size = lines + 1, size - room
            used += size + len(token) - len(token.rstrip())
    return lines


def _row_height(lines: int) -> float:
    return max(DEFAULT_ROW_HEIGHT, LINE_HEIGHT * lines + 3)


def _formatted(value: object, code: str) -> object:
    """About what a spreadsheet shows for `value` in a simple number format ("0.0%", "0.00"),
    to fit the column: 0.7878787878 is shown as 78.8%, not 18 characters wide."""
    if not isinstance(value, (int, float, np.number)) or pd.isna(value):
        return value
    decimals = len(code.split(".", 1)[1].rstrip("%")) if "." in code else 0
    percent = code.endswith("%")
    return f"{value * 100 if percent else value:,.{decimals}f}" + ("%" if percent else "")


def _page_text(text: str) -> str:
    """Text for a printed page header: '&' starts a control code there."""
    return text.replace("&", "&&")


def write_xlsx(frame: pd.DataFrame, target: Path, sheet: str = "call_list", *,
               headers: Mapping[str, str] | None = None, entries: Sequence[Entry] = (),
               wrap: Mapping[str, float] | None = None, title: str = "",
               number_formats: Mapping[str, str] | None = None) -> Path:
    """Formatted XLSX a person works through, on screen or on paper.

    headers: the header shown per column (default: the column's name); entries: empty
    columns after the data for the reader to fill in, with their checks; wrap: columns whose
    text wraps, each fitted to its content up to the given width (the others up to
    MAX_COLUMN_WIDTH); title: printed at the top of every page; number_formats: an Excel
    number format per numeric column (e.g. "0.0%": a rate stays a number the reader can sort
    and sum, shown as the PDF shows it).

    Bold header row, frozen, repeated on every printed page, with an auto-filter; A4
    landscape, one page wide. Every text cell is written with write_string (never a
    formula; numbers held as text, such as phones, stay text); dates as real dates."""
    import xlsxwriter
    from xlsxwriter.utility import xl_rowcol_to_cell

    headers = dict(headers or {})
    wrap = dict(wrap or {})
    columns = list(frame.columns)
    shown = [str(headers.get(name, name)) for name in columns] + [e.header for e in entries]
    last_row, last_col = max(len(frame), 1), len(shown) - 1
    with atomic_path(target) as tmp:
        workbook = xlsxwriter.Workbook(
            str(tmp),
            {"strings_to_formulas": False, "strings_to_urls": False,
             "strings_to_numbers": False, "default_date_format": "yyyy-mm-dd"},
        )
        # A fixed creation date keeps reruns byte-identical.
        workbook.set_properties({"created": dt.datetime(2000, 1, 1)})
        ws = workbook.add_worksheet(sheet)
        font = {**FONT, "valign": "top"}
        header = workbook.add_format({**font, "bold": True, "bg_color": "#DCE6F1", "border": 1,
                                      "text_wrap": True, "valign": "vcenter"})
        text_fmt = workbook.add_format({**font, "num_format": "@"})
        wrap_fmt = workbook.add_format({**font, "num_format": "@", "text_wrap": True})
        number_fmt = workbook.add_format(font)
        date_fmt = workbook.add_format({**font, "num_format": "yyyy-mm-dd"})
        entry_fmt = workbook.add_format({**font, "bg_color": "#FFF8DC", "border": 1,
                                         "border_color": "#A6A6A6"})
        entry_wrap_fmt = workbook.add_format({**font, "bg_color": "#FFF8DC", "border": 1,
                                              "border_color": "#A6A6A6", "text_wrap": True})
        shown_as = {name: workbook.add_format({**font, "num_format": code})
                    for name, code in (number_formats or {}).items()}
        widths = []
        lines = [1] * (len(frame) + 1)  # per row, the header's first
        for c, name in enumerate(columns):
            values = frame[name].tolist()
            text = wrap_fmt if name in wrap else text_fmt
            for r, value in enumerate(values, start=1):
                if value is None or (not isinstance(value, str) and pd.isna(value)):
                    ws.write_blank(r, c, None, text)
                elif isinstance(value, (dt.date, pd.Timestamp)):
                    stamp = pd.Timestamp(value)
                    stamp = stamp.tz_localize(None) if stamp.tzinfo else stamp
                    ws.write_datetime(r, c, stamp.to_pydatetime(), date_fmt)
                elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                    ws.write_number(r, c, value, shown_as.get(name, number_fmt))
                else:
                    ws.write_string(r, c, str(value), text)
            measured = values if name not in shown_as else [
                _formatted(v, number_formats[name]) for v in values]
            widths.append(_fitted_width(shown[c], measured, wrap.get(name, MAX_COLUMN_WIDTH)))
            if name in wrap:
                for r, value in enumerate(values, start=1):
                    lines[r] = max(lines[r], _line_count(value, widths[c]))
        for i, entry in enumerate(entries):
            c = len(columns) + i
            widths.append(max(entry.width, _header_width(entry.header) + COLUMN_MARGIN))
            for r in range(1, len(frame) + 1):
                ws.write_blank(r, c, None, entry_wrap_fmt if entry.wrap else entry_fmt)
            check = entry.validation()
            if check is not None:
                ws.data_validation(1, c, last_row, c, check)
        for c, name in enumerate(shown):
            name = _header_text(name, widths[c])
            ws.write_string(0, c, name, header)
            ws.set_column(c, c, widths[c])
            lines[0] = max(lines[0], _line_count(name, widths[c]))
        for r, count in enumerate(lines):
            if count > 1 or r == 0:
                ws.set_row(r, _row_height(count))
        ws.freeze_panes(1, 0)
        if shown:
            ws.autofilter(0, 0, last_row, last_col)
            # Ids and phones are text on purpose: no "number stored as text" marks.
            used = f"A1:{xl_rowcol_to_cell(last_row, last_col)}"
            ws.ignore_errors({"number_stored_as_text": used})
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)  # one page wide, as many tall as it takes
        ws.repeat_rows(0)
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.hide_gridlines(0)  # gridlines on screen and on paper
        if title:
            ws.set_header(f"&L{_page_text(title)}", {"margin": 0.25})
        ws.set_footer("&C&P / &N", {"margin": 0.25})
        workbook.close()
    return target

