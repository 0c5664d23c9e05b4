"""The report's agent section and the per-agent XLSX beside the PDF: the PDF shows the strongest
and the weakest `report.agent_rows` agents by visit timeliness (every agent when few), the
XLSX holds every agent with the numbers of agents.csv, text never a formula, and the head's
e-mail carries both files."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from revisit.delivery.pdf import render_pdf
from revisit.delivery.report import (
    agent_section,
    agents_workbook,
    render_html,
    report_data,
)
from revisit.rules.kpis import compute_monthly
from revisit.stages.partitions import MonthPartitions
from tests.monthly_fixtures import hand_built_frames

MONTH = "2026-10"
HOSTILE_NAME = "=cmd|' /C calc'!A0"


def agent(agent_id: str, due: int, on_time: int, active: bool = True, **more) -> dict:
    """One agent row of report data (the fields agent_section and the template read)."""
    return {"agent_id": agent_id, "name": f"Agent {agent_id}", "role": "agent",
            "active": active, "home_department_id": "D1", "visits_due": due,
            "visits_on_time": on_time,
            "visit_timeliness_rate": on_time / due if due else None, "visits_made": 0,
            "visits_reached": 0, "avg_visit_satisfaction": None, "tickets_handled": 0,
            "sla_breaches": 0, **more}


@pytest.fixture(scope="module")
def kpis(policy, calendar):
    return compute_monthly(hand_built_frames(), policy, calendar, MONTH)


def with_agent_rows(policy, rows: int):
    return policy.model_copy(update={"report": policy.report.model_copy(
        update={"agent_rows": rows})})


def ids(rows: list[dict]) -> list[str]:
    return [row["agent_id"] for row in rows]


# ================================================================= which agents the PDF shows
def test_strongest_and_weakest_by_timeliness_ties_to_more_visits_due_then_agent_id():
    """Nine agents, agent_rows 3 (9 > 2 × 3: split). Rates by hand: C 10/10 = B 1/1 = D 5/5
    = 100 %, A 9/10 = 90 %, H 3/6 = 50 %, F 0/10 = E 0/1 = I 0/2 = 0 %, G nothing due.
    Strongest: C before B (more visits due on a tie), D skipped (inactive), then A.
    Weakest, weakest first: F (0 of 10), I (0 of 2, inactive: allowed), E (0 of 1).
    G is in neither list (nothing due: not ranked)."""
    rows = [agent("A", 10, 9), agent("B", 1, 1), agent("C", 10, 10),
            agent("D", 5, 5, active=False), agent("E", 1, 0), agent("F", 10, 0),
            agent("G", 0, 0), agent("H", 6, 3), agent("I", 2, 0, active=False)]
    section = agent_section(rows, 3)
    assert section["split"] is True and section["total"] == 9 and section["unranked"] == 1
    assert ids(section["strongest"]) == ["C", "B", "A"]
    assert ids(section["weakest"]) == ["F", "I", "E"]


def test_an_equal_tie_is_broken_by_agent_id_and_nobody_is_in_both_lists():
    rows = [agent(name, 4, 2) for name in "QPSRUT"]  # all 50 %, all 4 due
    section = agent_section(rows, 2)
    assert ids(section["strongest"]) == ["P", "Q"]
    assert ids(section["weakest"]) == ["R", "S"]  # the next by id: P and Q are taken


def test_every_agent_is_shown_in_its_order_when_at_most_twice_agent_rows():
    rows = [agent("B", 3, 1), agent("A", 0, 0, active=False), agent("C", 2, 2),
            agent("D", 5, 0)]
    section = agent_section(rows, 2)
    assert section == {"split": False, "all": rows, "total": 4}


def test_the_pdf_shows_the_strongest_and_weakest_and_points_to_the_xlsx(kpis, policy):
    """12 agents, agent_rows 2: X00 .. X11 with 11 - i of 11 on time; the strongest are X00,
    X01, the weakest X11, X10; X05 is in neither table."""
    data = report_data(kpis, "D1")
    data["agents"] = [agent(f"X{i:02d}", 11, 11 - i) for i in range(12)]
    pdf = render_pdf(render_html(data, with_agent_rows(policy, 2), "en"))
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
                    .split())
    assert "Strongest 2 by visit timeliness" in text and "Weakest 2 by visit timeliness" in text
    assert "The full table of all 12 agents is in the spreadsheet (XLSX)" in text
    for shown in ("X00", "X01", "X10", "X11"):
        assert f"Agent {shown} {shown}" in text
    assert "X05" not in text
    assert text.index("Agent X11") < text.index("Agent X10")  # weakest first


def test_a_small_department_shows_every_agent_and_still_names_the_xlsx(kpis, policy):
    data = report_data(kpis, "D1")
    html = render_html(data, policy, "zh_CN")
    assert f"本部门全部 {len(data['agents'])} 位客服" in html
    assert "回访及时率最高" not in html


# ================================================================= the XLSX
def sheet_rows(path) -> tuple[list[str], list[list]]:
    sheet = load_workbook(path).worksheets[0]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    return [str(h).replace("\n", "") for h in rows[0]], rows[1:]


def test_the_xlsx_has_every_agent_with_the_numbers_of_agents_csv(kpis, policy, tmp_path):
    from revisit.rules.kpis import write_agents_csv

    csv = pd.read_csv(write_agents_csv(kpis, tmp_path / "agents.csv"),
                      dtype={"month": str, "department_id": str, "agent_id": str})
    for dept in ("D1", "D2"):
        path = agents_workbook(report_data(kpis, dept), policy, tmp_path / f"{dept}.xlsx", "en")
        headers, rows = sheet_rows(path)
        assert headers == ["Agent ID", "Name", "Role", "Status", "Department now", "Due",
                           "On time", "Timeliness", "Visits made", "Reached", "Visit rating",
                           "Tickets handled", "Breaches"]
        got = pd.DataFrame(rows, columns=headers)
        mine = csv[csv["department_id"] == dept].reset_index(drop=True)
        assert got["Agent ID"].tolist() == mine["agent_id"].tolist()
        for header, name in (("Due", "visits_due"), ("On time", "visits_on_time"),
                             ("Visits made", "visits_made"), ("Reached", "visits_reached"),
                             ("Visit rating", "avg_visit_satisfaction"),
                             ("Tickets handled", "tickets_handled"),
                             ("Breaches", "sla_breaches")):
            pd.testing.assert_series_equal(got[header].astype(float), mine[name].astype(float),
                                           check_names=False)
    # A1 of D1 by hand: 4 due, 1 on time -> the rate as a number, shown as a percentage.
    sheet = load_workbook(tmp_path / "D1.xlsx").worksheets[0]
    assert sheet["H2"].value == 0.25 and sheet["H2"].number_format == "0.0%"
    assert sheet["F2"].data_type == "n" and sheet["K2"].value == 70.0
    # Fitted to "25.0%" as shown, not to the float's 18 digits.
    assert sheet.column_dimensions["H"].width < 15


def test_the_xlsx_headers_are_in_the_report_locale(kpis, policy, tmp_path):
    headers, _ = sheet_rows(agents_workbook(report_data(kpis, "D1"), policy,
                                            tmp_path / "zh.xlsx", "zh_CN"))
    assert headers[:4] == ["客服编号", "姓名", "岗位", "状态"]
    assert "回访评分" in headers and "及时率" in headers


def test_a_hostile_agent_name_is_text_in_the_xlsx_never_a_formula(kpis, policy, tmp_path):
    data = report_data(kpis, "D1")
    data["agents"][0] = {**data["agents"][0], "name": HOSTILE_NAME, "role": "@SUM(A1)"}
    sheet = load_workbook(agents_workbook(data, policy, tmp_path / "x.xlsx", "en")).worksheets[0]
    assert sheet["B2"].value == "'" + HOSTILE_NAME and sheet["B2"].data_type == "s"
    assert sheet["C2"].value == "'@SUM(A1)"
    raw = (tmp_path / "x.xlsx").read_bytes()
    assert b"<f>" not in raw  # no formula anywhere in the workbook


def test_the_xlsx_name_cannot_collide_with_another_departments_files(tmp_path):
    """Each department writes <id>.pdf and <id>_agents.xlsx: ids that look alike (one ending
    in "_agents", one called "agents") still name distinct files, none of them agents.csv."""
    parts = MonthPartitions(tmp_path, MONTH)
    departments = ["D", "D_agents", "D_agents_agents", "agents", "D.pdf"]
    files = [p.name for d in departments for p in (parts.pdf(d), parts.agents_xlsx(d))]
    assert len(set(files)) == len(files)
    assert not {"agents.csv", "kpis.csv", "sla_status.csv", "run.json",
                "delivery.json"} & set(files)
    assert parts.agents_xlsx("D_agents").name == "D_agents_agents.xlsx"


# ================================================================= the e-mail
class Sink:
    """A transport that keeps what it sends."""

    sender = "revisit@example.com"

    def __init__(self) -> None:
        self.sent = []

    def send(self, message) -> None:
        self.sent.append(message)


def test_the_heads_email_carries_the_pdf_and_the_xlsx(kpis, policy, tmp_path):
    from revisit.delivery.mail import DeliveryLedger, deliver
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    data = report_data(kpis, "D1")
    data["department"]["head_email"] = "head.d1@example.com"
    pdf = tmp_path / "D1.pdf"
    pdf.write_bytes(b"%PDF-1.7 stand-in")
    xlsx = agents_workbook(data, policy, tmp_path / "D1_agents.xlsx")
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    sink = Sink()
    try:
        deliver(DeliveryLedger(engine, "Asia/Shanghai"), data, pdf, policy, sink,
                xlsx_path=xlsx)
    finally:
        engine.dispose()
    [message] = sink.sent
    first, second = message.iter_attachments()
    assert (first.get_filename(), first.get_content()) == (
        f"revisit-report-{MONTH}-D1.pdf", pdf.read_bytes())
    assert second.get_filename() == f"revisit-agents-{MONTH}-D1.xlsx"
    assert second.get_content_type().endswith("spreadsheetml.sheet")
    assert second.get_content() == xlsx.read_bytes()
    assert "XLSX" in message.get_body(("plain",)).get_content()
