"""Agent files: formula injection neutralised, XLSX formatted, written atomically."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from openpyxl import load_workbook

from revisit.io.spreadsheet import neutralise, write_csv, write_xlsx

HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd",
           "正常文本", "a=b"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "rank": range(1, len(HOSTILE) + 1),
        "customer_name": HOSTILE,
        "window_end": [dt.date(2026, 10, 16)] * len(HOSTILE),
        "overdue_days": [0, 3, 0, 0, 0, 0, 0, 0],
    })


def test_text_cells_that_start_like_formulas_get_an_apostrophe():
    out = neutralise(_frame())
    assert out["customer_name"].tolist()[:6] == ["'" + v for v in HOSTILE[:6]]
    assert out["customer_name"].tolist()[6:] == ["正常文本", "a=b"]
    assert out["rank"].tolist() == list(range(1, 9))  # numbers are left alone


def test_signed_numbers_such_as_international_phones_stay_as_written():
    out = neutralise(pd.DataFrame({"phone": ["+14155552671", "-5", "+1+1", "-2-3", "+1 cmd"]}))
    assert out["phone"].tolist() == ["+14155552671", "-5", "'+1+1", "'-2-3", "'+1 cmd"]


def test_csv_is_utf8_with_header_and_neutralised(tmp_path):
    path = write_csv(_frame(), tmp_path / "A001.csv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "rank,customer_name,window_end,overdue_days"
    assert "正常文本" in text
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in back["customer_name"])


def test_a_carriage_return_cannot_split_a_csv_row(tmp_path):
    frame = pd.DataFrame({"name": ["a\r=1+1", "b\r\nc", "\r=2+2"], "n": [1, 2, 3]})
    back = pd.read_csv(write_csv(frame, tmp_path / "x.csv"), dtype=str, keep_default_na=False)
    assert back["n"].tolist() == ["1", "2", "3"]  # still three rows
    assert back["name"].tolist() == ["a\n=1+1", "b\nc", "'\n=2+2"]


def test_xlsx_has_no_formula_cells_and_is_formatted(tmp_path):
    path = write_xlsx(_frame(), tmp_path / "A001.xlsx")
    ws = load_workbook(path).active
    assert [c.value for c in ws[1]] == ["rank", "customer_name", "window_end", "overdue_days"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref is not None
    assert ws["A1"].font.bold
    names = [ws.cell(row=r, column=2) for r in range(2, len(HOSTILE) + 2)]
    assert all(cell.data_type == "s" for cell in names)  # strings, never formulas ("f")
    assert names[0].value == HOSTILE[0]
    assert ws["C2"].is_date and ws["C2"].value == dt.datetime(2026, 10, 16)
    assert ws.column_dimensions["B"].width >= len("customer_name")


def test_rewriting_the_same_frame_gives_identical_bytes(tmp_path):
    first = write_xlsx(_frame(), tmp_path / "a.xlsx").read_bytes()
    second = write_xlsx(_frame(), tmp_path / "a.xlsx").read_bytes()
    assert first == second
    assert write_csv(_frame(), tmp_path / "a.csv").read_bytes() == \
        write_csv(_frame(), tmp_path / "a.csv").read_bytes()


def test_files_are_not_world_readable_and_no_temp_file_remains(tmp_path):
    path = write_csv(_frame(), tmp_path / "out" / "A001.csv")
    assert path.stat().st_mode & 0o007 == 0
    assert [p.name for p in path.parent.iterdir()] == ["A001.csv"]


def test_csv_timestamps_are_iso_with_the_offset_of_each_instant(tmp_path):
    from revisit.io.spreadsheet import write_csv

    stamps = pd.Series(pd.to_datetime(["2026-03-08 01:30:00", "2026-07-01 12:00:05", None])
                       .tz_localize("America/New_York"))
    fractional = pd.Series(pd.to_datetime(["2026-11-20 18:00:00.25"])
                           .tz_localize("Asia/Shanghai"))
    write_csv(pd.DataFrame({"id": ["a", "b", "c"], "at": stamps}), tmp_path / "a.csv")
    write_csv(pd.DataFrame({"at": fractional}), tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text().splitlines() == [
        "id,at", "a,2026-03-08T01:30:00-05:00", "b,2026-07-01T12:00:05-04:00", "c,"]
    assert (tmp_path / "b.csv").read_text().splitlines() == [
        "at", "2026-11-20T18:00:00.250000+08:00"]
