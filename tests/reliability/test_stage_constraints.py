"""What the stages after the quality gate rely on, checked by the gate: a hostile-but-realistic
CRM runs extract -> quality gate -> call lists -> SLA, and every value that used to stop a stage
is quarantined with its true reason while the stages run for everyone else.

The classes (project issue "No single CRM value stops or stalls a run"):
- an id that names files but is too long for a file name (the call-list writer failed with
  'File name too long' for every agent, on every retry) or for its results database column;
- ids that differ only in letter case name the same file on a case-insensitive file system
  (one agent's list replaced the other's);
- a stamp outside the years a stage can count on: year 9999 west of UTC (the extract
  overflowed), a ticket created in 1900 (the SLA task stopped: outside the calendar's years);
- DST: an ambiguous local time was quarantined as "not a datetime", a skipped one silently
  moved; both now follow one stated rule (quarantined as what they are);
- text that is not UTF-8 became U+FFFD without a word: now counted in the quality summary.

The hand-made CRM stamps in America/New_York (policy source_timezone) and runs with
max_failure_share 1.0: the stop rule is not what these tests are about (a 5-row table fails
its share with one bad row). The last test runs the default policy on the demo CRM.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from revisit.config.schema import results_column_widths
from revisit.quality.constraints import fold_case
from tests.crm_fixtures import minimal_rows, sqlite_crm
from tests.reliability.conftest import (
    Crm,
    copy_crm,
    read_csv,
    run_daily,
    with_max_failure_share,
)

WEST = "America/New_York"
LONG_AGENT = "A" + "x" * 229  # 230 bytes: no file system takes '<id>.xlsx' plus a temp name
UPPER, LOWER = "A0003", "a0003"  # the same file on macOS / Windows
WIDE_TICKET = "T" + "9" * 16  # 17 characters: sla_status.ticket_id holds 16
OUTPUT_FILES = {"sms_notice.csv", "carried_over.csv", "not_listed.csv", "run.json"}
CLOSED_YESTERDAY = {  # a closed complaint: post_resolution is due on D (New York time)
    "order_id": None, "department_id": "D01", "handler_agent_id": "A002", "type": "complaint",
    "channel": "phone", "priority": "general", "category": "other", "description": "设备无法启动",
    "created_at": "2026-11-16 09:30:00", "first_response_at": "2026-11-16 09:45:00",
    "verified_at": "2026-11-16 10:00:00", "plan_at": "2026-11-16 11:00:00",
    "resolved_at": "2026-11-18 10:00:00", "result_fed_back_at": "2026-11-18 15:00:00",
    "closed_at": "2026-11-19 09:00:00", "status": "closed", "satisfaction": 4,
}
OPEN = dict.fromkeys(("first_response_at", "verified_at", "plan_at", "resolved_at",
                      "result_fed_back_at", "closed_at", "satisfaction"))


def hostile_rows() -> dict[str, list[dict]]:
    """minimal_rows() plus one row of each hostile class, each customer due a call on D."""
    rows = minimal_rows()
    agent, customer = rows["agents"][1], rows["customers"][0]
    rows["agents"] += [{**agent, "agent_id": a} for a in (LONG_AGENT, UPPER, LOWER)]
    rows["customers"] += [
        {**customer, "customer_id": "C_LONG", "owner_agent_id": LONG_AGENT},
        {**customer, "customer_id": "C_UPPER", "owner_agent_id": UPPER},
        {**customer, "customer_id": "C_LOWER", "owner_agent_id": LOWER},
        {**customer, "customer_id": "C_UTF8"},  # its name is made invalid UTF-8 below
        {**customer, "customer_id": "C_CTRL", "contact_name": "陈\x00明\x07"},
        # The visit rules count Monday-Friday before the calendar: old stamps are no error.
        {**customer, "customer_id": "C_OLD", "created_at": "0001-01-02 10:00:00",
         "cooperation_start_date": "1600-01-01"},
    ]
    due = ["C0000001", "C_LONG", "C_UPPER", "C_LOWER", "C_UTF8", "C_CTRL", "C_OLD"]
    rows["tickets"] = [{**CLOSED_YESTERDAY, "ticket_id": f"T{n}", "customer_id": c}
                       for n, c in enumerate(due, start=1)]
    rows["tickets"] += [
        {**CLOSED_YESTERDAY, **OPEN, "ticket_id": "T_1900", "customer_id": "C0000001",
         "created_at": "1900-01-01 09:00:00", "status": "pending"},
        {**CLOSED_YESTERDAY, "ticket_id": "T_AMBIGUOUS", "customer_id": "C0000001",
         "created_at": "2026-11-01 01:30:00"},  # New York falls back at 02:00 that night
        {**CLOSED_YESTERDAY, "ticket_id": "T_SKIPPED", "customer_id": "C0000001",
         "created_at": "2026-03-08 02:30:00"},  # ... and springs forward at 02:00 on 8 March
        {**CLOSED_YESTERDAY, "ticket_id": WIDE_TICKET, "customer_id": "C0000001"},
    ]
    rows["orders"] = [{"order_id": "O_OLD", "customer_id": "C_OLD", "product": "云ERP",
                       "product_version": "1.0", "amount": 1.0,
                       "ordered_at": "0001-01-03 10:00:00", "delivered_at": "0001-01-05 10:00:00"}]
    visit = {"customer_id": "C0000001", "agent_id": "A002", "kind": "periodic",
             "ticket_id": None, "order_id": None, "method": "phone", "outcome": "reached",
             "satisfaction": 8, "notes": "ok"}
    rows["visits"] = [{**visit, "visit_id": "V_9999", "visited_at": "9999-12-31 23:00:00"},
                      {**visit, "visit_id": "V_1600", "customer_id": "C_OLD",
                       "visited_at": "1600-06-01 10:00:00"}]
    return rows


@pytest.fixture(scope="module")
def west_policy(policy):
    return with_max_failure_share(policy, 1.0).model_copy(update={"source_timezone": WEST})


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, west_policy, calendar):
    folder = tmp_path_factory.mktemp("hostile")
    sqlite_crm(folder, hostile_rows())
    with sqlite3.connect(folder / "crm.sqlite") as conn:
        conn.execute("UPDATE customers SET name = CAST(X'E4B8ADFF41' AS TEXT) "
                     "WHERE customer_id = 'C_UTF8'")
    out = run_daily(folder / "crm.sqlite", folder / "output", west_policy, calendar)
    assert out.stopped is None, out.stopped
    return out


def _quarantined(out, table: str, key: str) -> pd.DataFrame:
    q = out.quarantine
    rows = q[(q["table"] == table) & (q["row_key"] == key)]
    assert len(rows), f"{table} {key} was not quarantined:\n{q.to_string()}"
    return rows


def _list_files(out) -> set[str]:
    return {p.name for p in out.parts.call_lists.iterdir()} - OUTPUT_FILES


def test_an_agent_id_too_long_for_a_file_name_is_quarantined_and_the_others_get_lists(hostile):
    q = hostile.quarantine
    agent = q[(q["table"] == "agents") & q["value"].str.startswith("Axxx")]
    assert set(agent["check"]) == {"file_name_length", "width"}
    assert agent["row_key"].str.fullmatch(r"<row \d+>").all()  # too long for quality_issues
    assert agent["reason"].str.contains("is longer than 64 bytes (UTF-8): too long to name its "
                                        "output files", regex=False).any()
    assert _quarantined(hostile, "customers", "C_LONG")["check"].tolist() == [
        "parent_quarantined"]
    assert hostile.lists["agents"] >= 1
    assert _list_files(hostile) == {"A002.csv", "A002.xlsx"}
    listed = set(hostile.call_lists()["customer_id"])
    assert {"C0000001", "C_UTF8", "C_CTRL", "C_OLD"} <= listed
    assert "C_LONG" not in listed


def test_agent_ids_that_differ_only_by_case_are_both_quarantined_and_no_list_replaces_another(
        hostile):
    for key, other in ((UPPER, LOWER), (LOWER, UPPER)):
        rows = _quarantined(hostile, "agents", key)
        assert rows["check"].tolist() == ["case_collision"]
        assert rows["reason"].iloc[0] == (
            f"agents.agent_id {key} and {other} name the same file on a case-insensitive file "
            "system (they differ only in letter case or accent encoding)")
    stems = {name.rsplit(".", 1)[0] for name in _list_files(hostile)}
    assert len(set(fold_case(pd.Series(sorted(stems))).to_pylist())) == len(stems)
    assert not stems & {UPPER, LOWER}
    assert not {"C_UPPER", "C_LOWER"} & set(hostile.call_lists()["customer_id"])


def test_a_ticket_stamp_outside_the_calendar_years_is_quarantined_and_the_sla_runs(hostile):
    rows = _quarantined(hostile, "tickets", "T_1900")
    assert rows["check"].tolist() == ["calendar_years"]
    assert rows["reason"].iloc[0].startswith("tickets.created_at 1900-01-01T")
    assert rows["reason"].iloc[0].endswith(
        "is outside the years the business calendar covers (2015–2040)")
    sla = read_csv(hostile.parts.sla / "sla_status.csv")
    assert hostile.sla["rows"] > 0 and "T1" in set(sla["ticket_id"])
    assert not {"T_1900", "T_AMBIGUOUS", "T_SKIPPED", WIDE_TICKET} & set(sla["ticket_id"])


def test_a_year_9999_stamp_west_of_utc_is_quarantined_and_the_extract_goes_on(hostile):
    assert hostile.counts["visits"] == 2
    rows = _quarantined(hostile, "visits", "V_9999")
    assert rows["check"].tolist() == ["timestamp_range"]
    assert rows["reason"].iloc[0] == ("visits.visited_at: outside the years 1 to 9999 in UTC or "
                                      f"in {WEST} (9999-12-31 23:00:00)")


def test_ambiguous_and_skipped_local_times_are_quarantined_by_the_one_dst_rule(hostile):
    ambiguous = _quarantined(hostile, "tickets", "T_AMBIGUOUS")
    assert ambiguous[["check", "column"]].values.tolist() == [["local_time", "created_at"]]
    assert ambiguous["reason"].iloc[0] == (
        f"tickets.created_at: ambiguous local time (DST fall-back) in {WEST} "
        "(2026-11-01 01:30:00)")
    skipped = _quarantined(hostile, "tickets", "T_SKIPPED")
    assert skipped["reason"].iloc[0] == (
        f"tickets.created_at: does not exist (DST spring-forward) in {WEST} "
        "(2026-03-08 02:30:00)")
    assert "T_SKIPPED" not in set(hostile.clean("tickets")["ticket_id"])  # not moved


def test_stamps_before_the_calendar_in_the_visit_tables_are_no_error(hostile):
    q = hostile.quarantine
    assert not q["row_key"].isin(["C_OLD", "O_OLD", "V_1600", "T7"]).any(), q.to_string()
    assert "C_OLD" in set(hostile.call_lists()["customer_id"])


def test_an_id_wider_than_its_results_column_never_reaches_the_results(hostile):
    width = results_column_widths()[("sla_status", "ticket_id")]
    rows = _quarantined(hostile, "tickets", WIDE_TICKET)
    assert rows["check"].tolist() == ["width"]
    assert rows["reason"].iloc[0] == (
        f"tickets.ticket_id {WIDE_TICKET} is longer than {width} characters (the results "
        f"database column sla_status.ticket_id holds {width})")
    calls = pd.read_parquet(hostile.parts.handoff / "call_list.parquet")
    sla = pd.read_parquet(hostile.parts.handoff / "sla_status.parquet")
    for frame, table in ((calls, "call_list"), (sla, "sla_status")):
        for col in ("agent_id", "customer_id", "ticket_id", "department_id"):
            if col in frame and (table, col) in results_column_widths():
                longest = frame[col].dropna().astype(str).str.len().max()
                assert pd.isna(longest) or longest <= results_column_widths()[(table, col)]


def test_replaced_values_are_counted_in_the_quality_summary(hostile):
    md = (hostile.parts.quality / "summary.md").read_text(encoding="utf-8")
    assert "## Values replaced" in md
    assert "| customers | name | bytes that are not UTF-8 read as U+FFFD | 1 | `C_UTF8` |" in md
    assert "| customers | contact_name | control characters removed | 1 | `C_CTRL` |" in md
    html = (hostile.parts.quality / "summary.html").read_text(encoding="utf-8")
    assert "<code>C_UTF8</code>" in html and "control characters removed" in html
    assert "陈明" not in md and "中" not in md  # ids only, never the text


# ----------------------------------------------------------------- a real-sized CRM
@pytest.fixture(scope="module")
def long_agent_in_demo(demo_crm_file, tmp_path_factory, policy, calendar):
    folder = tmp_path_factory.mktemp("long_agent")
    crm = Crm(copy_crm(demo_crm_file, folder))
    agent = crm.copy("agents", "A0002", agent_id=LONG_AGENT)
    for cid in ("CL01", "CL02"):
        crm.copy("customers", "C0000001", customer_id=cid, owner_agent_id=LONG_AGENT,
                 department_id=agent["department_id"], tier="standard", do_not_call=0)
    crm.close()
    return run_daily(folder / "crm.sqlite", folder / "output", policy, calendar)


def test_one_agent_id_too_long_for_a_file_name_does_not_stop_a_real_sized_run(
        long_agent_in_demo):
    out = long_agent_in_demo
    assert out.stopped is None, out.stopped
    q = out.quarantine
    assert set(q.loc[q["table"] == "agents", "check"]) == {"file_name_length", "width"}
    assert set(q.loc[q["table"] == "customers", "row_key"]) >= {"CL01", "CL02"}
    files = {p.stem for p in Path(out.parts.call_lists).glob("*.xlsx")}
    assert out.lists["agents"] == len(files) > 10 and LONG_AGENT not in files
    assert out.sla["rows"] > 0
