"""Agent files: formula injection neutralised, XLSX formatted, written atomically."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from openpyxl import load_workbook

from revisit.io.spreadsheet import Entry, csv_ready, neutralise, write_csv, write_xlsx

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


# ================================================================= the agent's call list XLSX
def _call_list() -> pd.DataFrame:
    """Two rows as build_call_list makes them (the columns and types of its CSV)."""
    from revisit.rules.calllist import CALL_LIST_COLUMNS

    return pd.DataFrame({
        "call_date": ["2026-11-20", "2026-11-20"],
        "rank": [1, 2],
        "agent_id": ["A0002", "A0002"],
        "customer_id": ["C0000359", "C0000096"],
        "customer_name": ["常州佳鼎化工有限公司", "=HYPERLINK(\"http://evil\",\"x\")"],
        "contact_name": ["胡文华", "@SUM(A1)"],
        "phone": ["13961368441", "+14155552671"],
        "tier": ["standard", "key"],
        "reasons": ["post_resolution;early_use", "key_account"],
        "window_end": ["2026-11-16", None],
        "overdue_days": [4, 0],
        "ticket_id": ["T000001426", None],
        "order_id": ["O000004166;O000004145", None],
        "suggested_window": ["14:00-18:00", "09:00-12:00"],
        "note": ["投诉处理后回访（工单 T000001426）；使用初期回访（订单 O000004166、O000004145）；"
                 "已逾期 4 天", "-2+3 重点客户专项维护"],
    }).astype(CALL_LIST_COLUMNS)


def _write_call_list(tmp_path, locale: str):
    from revisit.stages.daily import _xlsx_ready

    frame, layout, title = _xlsx_ready(_call_list(), locale)
    path = write_xlsx(frame, tmp_path / f"A0002-{locale}.xlsx",
                      title=title.format(agent_id="A0002", date="2026-11-20"), **layout)
    ws = load_workbook(path).active
    return ws, [c.value for c in ws[1]]


ZH_HEADERS = ["回访日期", "排名", "客服\n编号", "客户编号", "客户名称", "联系人", "联系电话",
              "客户\n级别", "回访原因", "回访期限", "逾期\n天数", "工单号", "订单号", "建议时段",
              "说明", "回访结果", "满意度\n（1–10）", "回访记录"]
EN_HEADERS = ["Call date", "Rank", "Agent", "Customer ID", "Customer", "Contact", "Phone", "Tier",
              "Reasons", "Window ends", "Days overdue", "Ticket", "Order", "Best time", "Note",
              "Outcome", "Satisfaction\n(1-10)", "Call notes"]


def test_call_list_headers_and_labels_are_in_the_locale_and_every_column_is_kept(tmp_path):
    ws, headers = _write_call_list(tmp_path, "zh_CN")
    assert headers == ZH_HEADERS  # a long CJK header breaks in the middle of a narrow column
    assert ws.title == "回访清单"
    row = {h: ws.cell(row=2, column=i + 1).value for i, h in enumerate(headers)}
    assert row["回访原因"] == "投诉处理后回访；使用初期回访"  # labels, joined naturally
    assert ws.cell(row=3, column=9).value == "重点客户专项维护"
    assert (row["客户\n级别"], ws.cell(row=3, column=8).value) == ("普通", "重点")
    assert row["说明"] == _call_list().loc[0, "note"]  # the note as the CSV has it
    assert row["订单号"] == "O000004166\nO000004145"  # several ids one per line
    assert row["排名"] == 1 and row["逾期\n天数"] == 4
    assert [ws.cell(row=r, column=c).value for r in (2, 3) for c in (16, 17, 18)] == [None] * 6
    assert "回访清单 A0002" in ws.oddHeader.left.text and "&P" in ws.oddFooter.center.text

    ws, headers = _write_call_list(tmp_path, "en")
    assert headers == EN_HEADERS
    assert ws.cell(row=2, column=9).value == "Post-resolution visit; Early-use visit"
    assert ws.cell(row=3, column=8).value == "key account"


def _validations(ws) -> dict[str, object]:
    return {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}


def test_outcome_is_a_drop_down_and_satisfaction_a_checked_whole_number(tmp_path):
    ws, _ = _write_call_list(tmp_path, "zh_CN")
    checks = _validations(ws)
    assert set(checks) == {"P2:P3", "Q2:Q3"}  # outcome and satisfaction; notes: free text
    outcome, satisfaction = checks["P2:P3"], checks["Q2:Q3"]
    assert outcome.type == "list"
    assert outcome.formula1 == '"已接通,无人接听,拒绝回访,另约时间,号码错误"'
    assert outcome.showErrorMessage and outcome.error
    assert satisfaction.type == "whole" and (satisfaction.formula1, satisfaction.formula2) == (
        "1", "10")
    assert satisfaction.showErrorMessage and satisfaction.errorStyle in (None, "stop")
    assert "1 到 10" in satisfaction.error and "\n" not in satisfaction.errorTitle

    ws, _ = _write_call_list(tmp_path, "en")
    assert _validations(ws)["P2:P3"].formula1 == \
        '"Reached,No answer,Refused,Rescheduled,Wrong number"'


def test_call_list_prints_a4_landscape_one_page_wide_with_the_header_on_every_page(tmp_path):
    ws, _ = _write_call_list(tmp_path, "zh_CN")
    setup = ws.page_setup
    assert setup.orientation == "landscape"
    assert int(setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert (setup.fitToWidth or 1) == 1  # 1 is the file format's default, written as absent
    assert int(setup.fitToHeight) == 0  # as many pages tall as it takes
    assert ws.print_title_rows == "$1:$1"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:R3"  # the data and the columns the agent fills in


def test_call_list_widths_fit_chinese_text_and_long_text_wraps(tmp_path):
    ws, headers = _write_call_list(tmp_path, "zh_CN")
    width = {h: ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width
             for i, h in enumerate(headers)}
    assert width["客户名称"] >= 2 * len("常州佳鼎化工有限公司") - 2  # wide characters count 2
    assert width["说明"] <= 30 and width["联系人"] < 10
    assert sum(width.values()) < 230  # one page wide stays readable
    note = ws.cell(row=2, column=headers.index("说明") + 1)
    assert note.alignment.wrap_text
    assert ws.row_dimensions[2].height > 2 * 15  # the wrapped note's lines fit in the row
    assert ws.cell(row=1, column=1).alignment.wrap_text


def test_call_list_phones_stay_text_dates_are_dates_and_nothing_is_a_formula(tmp_path):
    ws, headers = _write_call_list(tmp_path, "zh_CN")
    phone = headers.index("联系电话") + 1
    cells = [ws.cell(row=r, column=phone) for r in (2, 3)]
    assert [c.value for c in cells] == ["13961368441", "+14155552671"]
    assert all(c.data_type == "s" and c.number_format == "@" for c in cells)
    assert ws.cell(row=2, column=1).is_date
    assert ws.cell(row=2, column=1).value == dt.datetime(2026, 11, 20)
    assert ws.cell(row=3, column=headers.index("回访期限") + 1).value is None
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    assert ws.cell(row=3, column=5).value == "=HYPERLINK(\"http://evil\",\"x\")"  # as written


def test_call_list_preparation_leaves_the_csv_frame_as_it_was():
    from revisit.stages.daily import _xlsx_ready

    frame = _call_list()
    before = csv_ready(frame).to_csv(index=False)
    _xlsx_ready(frame, "zh_CN")
    assert csv_ready(frame).to_csv(index=False) == before
    assert frame.loc[0, "reasons"] == "post_resolution;early_use"


def test_headers_and_choices_that_look_like_formulas_are_written_as_text(tmp_path):
    entries = [Entry("=1+1", choices=("=A1", "+cmd", "@x")), Entry("-2", whole=(1, 10)),
               Entry("@note")]
    path = write_xlsx(_frame(), tmp_path / "x.xlsx",
                      headers={"customer_name": "=SUM(A1)", "rank": "+rank"}, entries=entries)
    ws = load_workbook(path).active
    assert [c.value for c in ws[1]] == ["+rank", "=SUM(A1)", "window_end", "overdue_days",
                                        "=1+1", "-2", "@note"]
    assert all(c.data_type == "s" for c in ws[1])
    assert _validations(ws)["E2:E9"].formula1 == '"=A1,+cmd,@x"'  # a literal list


def test_a_drop_down_choice_holding_a_comma_is_refused():
    with pytest.raises(ValueError, match="comma"):
        Entry("x", choices=("a,b", "c")).validation()
    with pytest.raises(ValueError, match="255"):
        Entry("x", choices=tuple("长" * 20 + str(i) for i in range(20))).validation()


def test_a_csv_written_in_chunks_is_the_file_written_at_once(tmp_path, monkeypatch):
    import revisit.io.spreadsheet as spreadsheet

    frame = pd.DataFrame({
        "id": [f"=X{i}" if i % 7 == 0 else f"T{i}" for i in range(23)],
        "share": [i / 3 if i % 5 else None for i in range(23)],
        "at": pd.date_range("2026-11-20 09:00", periods=23, freq="37min", tz="Asia/Shanghai"),
        "note": ["a\r\nb" if i == 11 else "" for i in range(23)],
    })
    spreadsheet.write_csv(frame, tmp_path / "whole.csv")
    monkeypatch.setattr(spreadsheet, "CSV_CHUNK_ROWS", 4)
    spreadsheet.write_csv(frame, tmp_path / "chunks.csv")
    assert (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    # pandas formats naive timestamps per column (the finest value's precision): whole
    naive = pd.DataFrame({"at": pd.to_datetime(["2026-01-01"] * 5 + ["2026-01-02 10:00:00.5"],
                                               format="ISO8601")})
    spreadsheet.write_csv(naive, tmp_path / "naive.csv")
    assert (tmp_path / "naive.csv").read_text().splitlines()[1] == "2026-01-01 00:00:00.000"


def test_a_csv_written_part_after_part_refuses_naive_timestamps_it_cannot_format_alike(
        tmp_path):
    from revisit.io.spreadsheet import csv_writer

    naive = pd.DataFrame({"at": pd.to_datetime(["2026-01-01", "2026-01-02 10:00:00.5"],
                                               format="ISO8601")})
    with pytest.raises(ValueError, match="naive timestamps cannot be written in parts"), \
            csv_writer(tmp_path / "parts.csv") as write:
        write(naive.iloc[:1])
        write(naive.iloc[1:])
    assert not (tmp_path / "parts.csv").exists()  # nothing half-written is published
