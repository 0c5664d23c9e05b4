"""Call lists (revisit.rules.calllist), proved by hand against the default policy.

Rules (DESIGN.md "Business rules — visits"): one row per customer, reasons merged in the order
post_resolution, welcome, early_use, stable_use, long_term, key_account, periodic; ranked
post_resolution first, then overdue, then tier key, then low last satisfaction (visit < 6/10 or
ticket <= 2/5), then the earliest window end (then customer_id); rank from 1 per agent;
overdue_days = D - window_end (0 when not overdue). Assignment: the owner; key tier to a
supervisor of the customer's department; inactive owner to the least-loaded active agent of
the department; at most daily_capacity rows (default 40) per agent, the rest to the least-loaded
colleague, what no one can take carried over. Ties between equally loaded colleagues go to the
smaller agent_id. SMS pre-notice: customers whose first call is on the next working day.

Most tests hand the builder obligations written out below (so each window end is explicit);
the SMS, cut-off and demo tests go through revisit.rules.visits.visit_obligations.

Calendar facts (CN 2026): Wed 09-30 working; Thu 10-01 .. Wed 10-07 closed; Thu 10-08,
Fri 10-09 working; Sat 10-10 adjusted working day; Sun 09-20 adjusted working day.
Unless a test says otherwise D = Tue 2026-10-13.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from revisit.config.policy import Policy
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.calllist import (
    CALL_LIST_COLUMNS,
    CARRIED_OVER_COLUMNS,
    NOT_LISTED_COLUMNS,
    SMS_COLUMNS,
    CallListResult,
    build_call_list,
    call_slots,
    load_messages,
)
from revisit.rules.visits import OBLIGATION_COLUMNS, visit_obligations
from tests.unit.rules.test_visits import crm, customer, frames_of, order, ticket, visit

D = dt.date
DAY = D(2026, 10, 13)

CONTRACT_COLUMNS = ["call_date", "rank", "agent_id", "customer_id", "customer_name",
                    "contact_name", "phone", "tier", "reasons", "window_end", "overdue_days",
                    "ticket_id", "order_id", "suggested_window", "note"]


# ================================================================= helpers
def ob(cid: str, kind: str, end: str, status: str | None = None, *, start: str | None = None,
       order_id: str | None = None, ticket_id: str | None = None,
       day: dt.date = DAY) -> dict:
    """One obligation row; status (when not given) and overdue_days (D - end when past, also
    when unreachable; 0 when done) from the dates and D.
    Without `start` the window opened two days before its end, or at D if that is later."""
    end_d = pd.Timestamp(end)
    start_d = pd.Timestamp(start) if start else min(end_d - pd.Timedelta(days=2),
                                                    pd.Timestamp(day))
    late = (pd.Timestamp(day) - end_d).days
    if status is None:
        status = ("upcoming" if start_d > pd.Timestamp(day) else "due" if late <= 0
                  else "overdue" if late <= 30 else "missed")
    return {"customer_id": cid, "kind": kind, "order_id": order_id, "ticket_id": ticket_id,
            "anchor_at": start_d - pd.Timedelta(days=1), "window_start": start_d,
            "window_end": end_d, "status": status, "attempts": 0, "failed_attempts": 0,
            "last_attempt_at": pd.NaT, "done_at": pd.NaT,
            "overdue_days": 0 if status == "done" else max(late, 0)}


def obligations(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(OBLIGATION_COLUMNS)).astype(OBLIGATION_COLUMNS)


def agent(aid: str, dept: str = "D01", role: str = "agent", active: int = 1,
          capacity: int | None = None) -> dict:
    return {"agent_id": aid, "name": f"坐席{aid}", "email": None, "department_id": dept,
            "role": role, "active": active, "daily_capacity": capacity}


def staffed(frames: dict[str, pd.DataFrame], agents: list[dict]) -> dict[str, pd.DataFrame]:
    """frames with the agents table replaced."""
    return {**frames, "agents": frames_of({"agents": agents})["agents"]}


@pytest.fixture
def build(policy: Policy, calendar: BusinessCalendar):
    def _build(obs: pd.DataFrame, frames: dict[str, pd.DataFrame], day: dt.date = DAY,
               pol: Policy | None = None) -> CallListResult:
        return build_call_list(obs, frames, pol or policy, calendar, day)
    return _build


def listed(result: CallListResult) -> dict[str, tuple[str, int]]:
    """customer_id -> (agent_id, rank)."""
    lists = result.lists
    return {c: (a, int(r)) for c, a, r in zip(lists["customer_id"], lists["agent_id"],
                                              lists["rank"], strict=True)}


def by_customer(result: CallListResult) -> pd.DataFrame:
    return result.lists.set_index("customer_id")


# ================================================================= merge, columns, note
def test_one_row_per_customer_reasons_merged(build) -> None:
    # C1 owes welcome (O1, ends 10-15), early_use (O1, ends 10-20) and early_use (O2, ends
    # 10-14): one row, reasons in the fixed order, the earliest window end 10-14, ids distinct.
    obs = obligations([ob("C1", "early_use", "2026-10-20", order_id="O1"),
                       ob("C1", "welcome", "2026-10-15", order_id="O1"),
                       ob("C1", "early_use", "2026-10-14", order_id="O2")])
    result = build(obs, crm([customer("C1")]))
    assert list(result.lists.columns) == CONTRACT_COLUMNS
    assert len(result.lists) == 1
    row = result.lists.iloc[0]
    assert row["reasons"] == "welcome;early_use"
    assert row["order_id"] == "O1;O2"
    assert pd.isna(row["ticket_id"])
    assert row["window_end"] == "2026-10-14"
    assert row["call_date"] == "2026-10-13"
    assert (row["agent_id"], row["rank"], row["overdue_days"]) == ("A002", 1, 0)
    assert row["customer_name"] == "客户C1" and row["phone"] == "13812345678"
    assert row["note"] == "新客户首单回访（订单 O1）；使用初期回访（订单 O1、O2）"


def test_note_overdue_key_and_last_day(build, policy: Policy) -> None:
    # C1: post_resolution T1 ended 10-01 -> 13 - 1 = 12 days overdue. C2: key, window ends today.
    obs = obligations([ob("C1", "post_resolution", "2026-10-01", ticket_id="T1"),
                       ob("C2", "key_account", "2026-10-13")])
    result = build(obs, crm([customer("C1"), customer("C2", tier="key")]))
    rows = by_customer(result)
    assert rows.loc["C1", "overdue_days"] == 12
    assert rows.loc["C1", "note"] == "投诉处理后回访（工单 T1）；已逾期 12 天"
    assert rows.loc["C2", "note"] == "重点客户专项维护；今天是回访期限最后一天；重点客户"
    english = policy.model_copy(update={"report": policy.report.model_copy(
        update={"locale": "en"})})
    rows = by_customer(build(obs, crm([customer("C1"), customer("C2", tier="key")]),
                             pol=english))
    assert rows.loc["C1", "note"] == "Post-resolution visit (ticket T1); 12 days overdue"


def test_messages_of_both_locales_load() -> None:
    for locale in ("zh_CN", "en"):
        messages = load_messages(locale)
        assert set(messages.reasons) >= {"welcome", "early_use", "stable_use", "long_term",
                                         "post_resolution", "periodic", "key_account",
                                         "new_product", "major_complaint", "product_upgrade"}


# ================================================================= ranking
def test_ranking_order(build, policy: Policy) -> None:
    # All owned by agent A002; key customers stay with the owner here (key_tier_to_supervisor
    # off) so that one list shows every rule. D = 10-13.
    #   P2 post_resolution ended 10-12 (overdue 1)          -> 1 (post, overdue)
    #   P1 post_resolution ends 10-15                        -> 2 (post)
    #   L  early_use ended 10-01 (overdue 12)               -> 3 (overdue, earlier end)
    #   L2 early_use ended 10-09 (overdue 4)                -> 4 (overdue)
    #   K  key tier, ends 10-20                             -> 5 (key)
    #   S3 last rating a ticket 2/5 (<= 2: low), ends 10-19 -> 6 (low, earlier end)
    #   S  last rating a visit 4/10 (< 6: low), ends 10-21  -> 7 (low)
    #   E1 ends 10-14                                       -> 8
    #   S2 ticket 1/5 on 09-01 but visit 9/10 on 09-10: last rating not low, ends 10-15 -> 9
    #   E2 ends 10-16; a visit 6/10 is not low (6 is not < 6) -> 10
    obs = obligations([
        ob("E2", "early_use", "2026-10-16"), ob("S2", "early_use", "2026-10-15"),
        ob("E1", "early_use", "2026-10-14"), ob("S", "early_use", "2026-10-21"),
        ob("S3", "early_use", "2026-10-19"), ob("K", "key_account", "2026-10-20"),
        ob("L2", "early_use", "2026-10-09"), ob("L", "early_use", "2026-10-01"),
        ob("P1", "post_resolution", "2026-10-15", ticket_id="T1"),
        ob("P2", "post_resolution", "2026-10-12", ticket_id="T2"),
    ])
    ids = ["E2", "S2", "E1", "S", "S3", "K", "L2", "L", "P1", "P2"]
    frames = crm([customer(c, tier="key" if c == "K" else "standard") for c in ids],
                 tickets=[ticket("TS3", "S3", "2026-09-20 10:00", satisfaction=2),
                          ticket("TS2", "S2", "2026-09-01 10:00", satisfaction=1)],
                 visits=[visit("S", "periodic", "2026-09-05 10:00", satisfaction=4),
                         visit("S3", "periodic", "2026-09-05 10:00", satisfaction=9),
                         visit("S2", "periodic", "2026-09-10 10:00", satisfaction=9),
                         visit("E2", "periodic", "2026-09-10 10:00", satisfaction=6)])
    no_sup = policy.model_copy(update={"assignment": policy.assignment.model_copy(
        update={"key_tier_to_supervisor": False})})
    result = build(obs, frames, pol=no_sup)
    assert list(result.lists["customer_id"]) == ["P2", "P1", "L", "L2", "K", "S3", "S", "E1",
                                                 "S2", "E2"]
    assert list(result.lists["rank"]) == list(range(1, 11))
    assert set(result.lists["agent_id"]) == {"A002"}
    assert list(result.lists["overdue_days"]) == [1, 0, 12, 4, 0, 0, 0, 0, 0, 0]


def test_a_major_complaint_ranks_first_with_post_resolution(build) -> None:
    # D = 10-13. M major_complaint ends 10-14, P post_resolution ends 10-13, L early_use
    # overdue (ended 10-09), N new_product and U product_upgrade end 10-15: the first group
    # (post_resolution or major_complaint) by window end, then the overdue one, then by end.
    obs = obligations([
        ob("L", "early_use", "2026-10-09"), ob("N", "new_product", "2026-10-15", order_id="O9"),
        ob("M", "major_complaint", "2026-10-14", ticket_id="T1"),
        ob("P", "post_resolution", "2026-10-13", ticket_id="T2"),
        ob("U", "product_upgrade", "2026-10-16", order_id="O8"),
    ])
    result = build(obs, crm([customer(c) for c in ("L", "N", "M", "P", "U")]))
    assert list(result.lists["customer_id"]) == ["P", "M", "L", "N", "U"]
    rows = by_customer(result)
    assert rows.loc["M", "reasons"] == "major_complaint"
    assert rows.loc["M", "note"] == "重大投诉关怀回访（工单 T1）"
    assert rows.loc["N", "note"] == "新产品购买回访（订单 O9）"
    assert rows.loc["U", "note"] == "产品升级回访（订单 O8）"


def test_reasons_of_special_kinds_keep_the_fixed_order(build) -> None:
    obs = obligations([ob("C1", "product_upgrade", "2026-10-16", order_id="O1"),
                       ob("C1", "new_product", "2026-10-15", order_id="O2"),
                       ob("C1", "major_complaint", "2026-10-14", ticket_id="T1"),
                       ob("C1", "welcome", "2026-10-15", order_id="O3")])
    row = build(obs, crm([customer("C1")])).lists.iloc[0]
    assert row["reasons"] == "major_complaint;welcome;new_product;product_upgrade"
    assert row["order_id"] == "O3;O2;O1" and row["ticket_id"] == "T1"


def test_refused_is_not_listed_again_and_reported_with_reason_refused(
        build, policy: Policy, calendar: BusinessCalendar) -> None:
    # Welcome window [10-08, 10-10] (first order Wed 09-30); C1 refused on Thu 10-08 10:00.
    # D = Fri 10-09: with the default (after_refusal: end) C1 is not listed, and not_listed
    # says refused (window_end 10-10, overdue 0); with retry C1 is listed as before. C1 is a
    # new customer (cooperating since 09-01: no periodic visit yet).
    new = customer("C1", cooperation_start_date="2026-09-01", created_at="2026-09-01 10:00:00")
    frames = crm([new], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "welcome", "2026-10-08 10:00", outcome="refused")])
    day = D(2026, 10, 9)
    result = build(visit_obligations(frames, policy, calendar, day), frames, day=day)
    assert result.lists.empty and result.carried_over.empty
    nl = result.not_listed
    assert list(zip(nl["customer_id"], nl["kind"], nl["status"], nl["reason"],
                    nl["window_end"], nl["overdue_days"], strict=True)) == [
        ("C1", "welcome", "refused", "refused", "2026-10-10", 0)]
    retry = policy.model_copy(update={"visits": policy.visits.model_copy(
        update={"after_refusal": "retry"})})
    again = build(visit_obligations(frames, retry, calendar, day), frames, day=day, pol=retry)
    assert list(again.lists["customer_id"]) == ["C1"] and again.not_listed.empty


def test_a_refused_major_complaint_is_reported_not_listed(build) -> None:
    obs = obligations([ob("C1", "major_complaint", "2026-10-14", "refused", ticket_id="T1"),
                       ob("C2", "major_complaint", "2026-10-14", ticket_id="T2")])
    result = build(obs, crm([customer("C1"), customer("C2")]))
    assert list(result.lists["customer_id"]) == ["C2"]
    assert list(result.not_listed["reason"]) == ["refused"]


# ================================================================= assignment
D01_STAFF = [agent("A001", role="supervisor"), agent("A002"), agent("A003"),
             agent("A004", active=0), agent("A005", role="supervisor"), agent("A010", "D02")]


def test_owner_and_key_tier_to_supervisor(build) -> None:
    # Ranked (keys first, then window end, then id): K1 (10-14), K5 (10-14), K2 (10-15),
    # K3 (10-16), K4 (10-17), C1 (10-14).
    # Direct: C1 -> owner A002; K4 is owned by supervisor A005 of its department -> A005;
    # K5's department D02 has no supervisor -> its owner A010.
    # Supervisor pool of D01 (A001 load 0, A005 load 1 from K4), in rank order:
    #   K1 -> A001 (0 < 1); K2 -> A001 (1 = 1, tie to the smaller id); K3 -> A005 (2 > 1).
    # Ranks follow the global order in each list: A005 gets K3 (rank 1) before K4 (rank 2).
    obs = obligations([ob("C1", "early_use", "2026-10-14"),
                       ob("K1", "key_account", "2026-10-14"),
                       ob("K2", "key_account", "2026-10-15"),
                       ob("K3", "key_account", "2026-10-16"),
                       ob("K4", "key_account", "2026-10-17"),
                       ob("K5", "key_account", "2026-10-14")])
    frames = staffed(crm([customer("C1"), customer("K1", tier="key"),
                          customer("K2", tier="key", owner_agent_id="A003"),
                          customer("K3", tier="key"),
                          customer("K4", tier="key", owner_agent_id="A005"),
                          customer("K5", tier="key", owner_agent_id="A010", department_id="D02")]),
                     D01_STAFF)
    assert listed(build(obs, frames)) == {
        "K1": ("A001", 1), "K2": ("A001", 2), "K3": ("A005", 1), "K4": ("A005", 2),
        "K5": ("A010", 1), "C1": ("A002", 1)}


def test_inactive_owner_to_least_loaded_active_agent(build) -> None:
    # A004 is inactive and owns C3, C4. Direct: C1 -> A002. Agents of D01 with loads
    # A002 = 1, A003 = 0 (supervisors are not agents): C3 (10-15) -> A003; C4 (10-16): both
    # at 1 -> the smaller id A002.
    obs = obligations([ob("C1", "early_use", "2026-10-14"), ob("C3", "early_use", "2026-10-15"),
                       ob("C4", "early_use", "2026-10-16")])
    frames = staffed(crm([customer("C1"), customer("C3", owner_agent_id="A004"),
                          customer("C4", owner_agent_id="A004")]), D01_STAFF)
    assert listed(build(obs, frames)) == {"C1": ("A002", 1), "C3": ("A003", 1),
                                          "C4": ("A002", 2)}


def test_capacity_overflow_and_carry_over(build) -> None:
    # D01: A002 capacity 2, A003 capacity 1, supervisor A001 capacity 1 -> 4 rows in all.
    # A002 owns C1..C6, ranked by window end 10-14 .. 10-19.
    #   C5, C6 (ranks 5, 6 of the department) exceed the department's 4: carried over
    #   (intended agent A002, reason capacity).
    #   C1, C2 -> A002 (its capacity). C3, C4 overflow to the least-loaded colleague with room:
    #   agents first (A002's role): A003 takes C3; then nobody of that role has room, so C4 goes
    #   to the supervisor A001.
    ids = [f"C{i}" for i in range(1, 7)]
    obs = obligations([ob(c, "early_use", f"2026-10-{13 + i}") for i, c in enumerate(ids, 1)])
    frames = staffed(crm([customer(c) for c in ids]),
                     [agent("A001", role="supervisor", capacity=1), agent("A002", capacity=2),
                      agent("A003", capacity=1)])
    result = build(obs, frames)
    assert listed(result) == {"C1": ("A002", 1), "C2": ("A002", 2), "C3": ("A003", 1),
                              "C4": ("A001", 1)}
    carried = result.carried_over
    assert list(carried.columns) == list(CARRIED_OVER_COLUMNS)
    assert list(carried["customer_id"]) == ["C5", "C6"]
    assert list(carried["agent_id"]) == ["A002", "A002"]
    assert list(carried["reason"]) == ["capacity", "capacity"]
    assert list(carried["window_end"]) == ["2026-10-18", "2026-10-19"]


def test_default_capacity_is_forty(build) -> None:
    # A002 alone (daily_capacity NULL -> policy default 40) with 41 due customers: the 41st
    # (latest window end) is carried over.
    ids = [f"C{i:02d}" for i in range(41)]
    obs = obligations([ob(c, "early_use", "2026-10-20") for c in ids[:-1]]
                      + [ob(ids[-1], "early_use", "2026-10-21")])
    frames = staffed(crm([customer(c) for c in ids]), [agent("A002")])
    result = build(obs, frames)
    assert len(result.lists) == 40 and set(result.lists["agent_id"]) == {"A002"}
    assert list(result.carried_over["customer_id"]) == ["C40"]


def test_department_without_active_staff_is_carried_over(build) -> None:
    # C9's owner A020 is inactive and D03 has no one else: carried over, no_active_agent.
    obs = obligations([ob("C9", "early_use", "2026-10-14")])
    frames = staffed(crm([customer("C9", owner_agent_id="A020", department_id="D03")]),
                     [*D01_STAFF, agent("A020", "D03", active=0)])
    result = build(obs, frames)
    assert result.lists.empty
    assert list(result.carried_over["reason"]) == ["no_active_agent"]


# ================================================================= not listed
def test_do_not_call_missed_and_unreachable_are_reported(build) -> None:
    # N1 is do_not_call: its due and overdue obligations are reported, reason do_not_call; its
    # missed one (ended 09-01) is not.
    # C1: one missed (10-13 - 09-01 = 42 > 30), one unreachable (ended 10-09: 4 days late),
    # one due -> listed for the due one only, the other two reported. Done / upcoming rows are
    # neither listed nor reported; a missed one that ended 2026-08-13 (61 days > 30 + 30
    # before D) is no longer reported (see test_report_missed_days_boundary).
    obs = obligations([
        ob("N1", "early_use", "2026-10-14", order_id="O9"),
        ob("N1", "stable_use", "2026-10-12", order_id="O9"),
        ob("N1", "welcome", "2026-09-01", order_id="O9"),
        ob("C1", "welcome", "2026-09-01", order_id="O1"),
        ob("C1", "early_use", "2026-10-09", "unreachable", order_id="O1"),
        ob("C1", "stable_use", "2026-10-15", order_id="O1"),
        ob("C1", "long_term", "2026-10-15", "done", order_id="O2"),
        ob("C1", "periodic", "2026-11-15", start="2026-11-01"),
        ob("C1", "key_account", "2026-08-13"),
    ])
    result = build(obs, crm([customer("N1", do_not_call=1), customer("C1")]))
    assert listed(result) == {"C1": ("A002", 1)}
    assert result.lists.iloc[0]["reasons"] == "stable_use"
    nl = result.not_listed
    assert list(nl.columns) == list(NOT_LISTED_COLUMNS)
    got = {(c, k, r, s) for c, k, r, s in zip(nl["customer_id"], nl["kind"], nl["reason"],
                                              nl["status"], strict=True)}
    assert got == {("N1", "early_use", "do_not_call", "due"),
                   ("N1", "stable_use", "do_not_call", "overdue"),
                   ("C1", "welcome", "missed", "missed"),
                   ("C1", "early_use", "unreachable", "unreachable")}
    rows = nl.set_index(["customer_id", "kind"])
    assert tuple(rows.loc[("C1", "welcome"), ["overdue_days", "agent_id", "window_end"]]) == (
        42, "A002", "2026-09-01")
    # An unreachable obligation past its window: overdue_days = D - window_end (10-13 - 10-09).
    assert rows.loc[("C1", "early_use"), "overdue_days"] == 4
    assert rows.loc[("N1", "stable_use"), "overdue_days"] == 1


@pytest.mark.parametrize(("day", "report_days", "reported"), [
    (D(2026, 11, 9), 30, False),   # 30 days late: still overdue, on the list
    (D(2026, 11, 10), 30, True),   # 31 days late: missed today -> reported
    (D(2026, 12, 9), 30, True),    # 60 = 30 + 30 days late: the last day reported
    (D(2026, 12, 10), 30, False),  # 61 days late: no longer reported
    (D(2026, 11, 10), 0, False),   # report_missed_days 0: missed ones are never reported
    (D(2026, 11, 11), 1, False),   # 32 > 30 + 1
])
def test_report_missed_days_boundary(build, policy: Policy, calendar: BusinessCalendar,
                                     day: dt.date, report_days: int, reported: bool) -> None:
    # Rule: revisit.rules.calllist._reported. Welcome window [Thu 10-08, Sat 10-10] (order
    # Wed 09-30, see test_visits): missed from 11-10 (31 days late), reported through 12-09
    # (60 = 30 + 30 days late). (C1 was reached 09-01: its periodic cycle opens 11-30; long
    # after, its overdue / missed periodic rows are not welcome rows.)
    pol = policy.model_copy(update={"visits": policy.visits.model_copy(
        update={"report_missed_days": report_days})})
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "periodic", "2026-09-01 10:00")])
    result = build(visit_obligations(frames, pol, calendar, day), frames, day=day, pol=pol)
    welcome = result.not_listed[result.not_listed["kind"] == "welcome"]
    assert (len(welcome) == 1) == reported
    if reported:
        row = welcome.iloc[0]
        late = (pd.Timestamp(day) - pd.Timestamp("2026-10-10")).days
        assert (row["status"], row["reason"], row["overdue_days"], row["window_end"]) == (
            "missed", "missed", late, "2026-10-10")


def test_unreachable_reported_from_the_day_it_is_found(build, policy: Policy,
                                                       calendar: BusinessCalendar) -> None:
    # Welcome window [10-08, 10-10]; three no_answer calls on 10-08: on Fri 10-09 it is
    # unreachable (inside its window: overdue_days 0) and reported; on 12-09 (60 days after
    # the window) still, on 12-10 no more.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "periodic", "2026-09-01 10:00")] + [
                     visit("C1", "welcome", f"2026-10-08 {h}:00", outcome="no_answer")
                     for h in (10, 11, 15)])

    def welcome(day: dt.date) -> list[tuple]:
        nl = build(visit_obligations(frames, policy, calendar, day), frames, day=day).not_listed
        nl = nl[nl["kind"] == "welcome"]
        return list(zip(nl["reason"], nl["overdue_days"], strict=True))
    assert welcome(D(2026, 10, 9)) == [("unreachable", 0)]
    assert welcome(D(2026, 12, 9)) == [("unreachable", 60)]
    assert welcome(D(2026, 12, 10)) == []


def test_key_customer_listed_again_after_a_missed_cycle(build, policy: Policy,
                                                        calendar: BusinessCalendar) -> None:
    # test_visits.test_key_account_due_again_after_a_missed_cycle: on Fri 10-30 cycle 2
    # [10-12, 10-26] is 4 days overdue -> listed, to the supervisor; cycle 1 (ended 04-27,
    # 186 days late) is too old to be reported.
    frames = crm([customer("K1", tier="key")],
                 visits=[visit("K1", "key_account", "2025-10-13 10:00")])
    day = D(2026, 10, 30)
    result = build(visit_obligations(frames, policy, calendar, day), frames, day=day)
    row = by_customer(result).loc["K1"]
    assert (row["reasons"], row["window_end"], row["overdue_days"], row["agent_id"]) == (
        "key_account", "2026-10-26", 4, "A001")
    assert result.not_listed.empty


def test_sms_notice_for_the_next_cycle(build, policy: Policy,
                                       calendar: BusinessCalendar) -> None:
    # test_visits.test_periodic_cycles_across_national_day: reached 04-07; cycle 1 [07-06,
    # 07-20] missed; cycle 2 opens Sun 10-04 -> first call Thu 10-08. On Wed 09-30 (next
    # working day 10-08) the customer gets the pre-notice; cycle 1 (72 days late) is not
    # reported any more.
    frames = crm([customer("C1")], visits=[visit("C1", "periodic", "2026-04-07 10:00")])
    day = D(2026, 9, 30)
    result = build(visit_obligations(frames, policy, calendar, day), frames, day=day)
    assert result.lists.empty and result.not_listed.empty
    assert list(zip(result.sms_notice["customer_id"], result.sms_notice["planned_call_date"],
                    strict=True)) == [("C1", "2026-10-08")]


# ================================================================= suggested windows
def test_suggested_window_avoids_lunch_and_off_hours(build, policy: Policy) -> None:
    # Business hours 09:00-18:00 minus avoid (before 09:00, 12:00-14:00, after 18:00):
    # slots 09:00-12:00 and 14:00-18:00. The slot holding the time the customer was last
    # reached; no such slot (12:30) or never reached: the first slot.
    assert call_slots(policy) == [(9 * 60, 12 * 60), (14 * 60, 18 * 60)]
    obs = obligations([ob(c, "early_use", "2026-10-14") for c in ("M", "A", "L", "N", "X")])
    frames = crm([customer(c) for c in ("M", "A", "L", "N", "X")],
                 visits=[visit("M", "periodic", "2026-09-01 10:30"),
                         visit("A", "periodic", "2026-09-01 15:00"),
                         visit("A", "periodic", "2026-09-02 10:00", outcome="no_answer"),
                         visit("L", "periodic", "2026-09-01 12:30"),
                         visit("X", "periodic", "2026-10-13 15:00")])  # after the cut-off
    windows = by_customer(build(obs, frames))["suggested_window"].to_dict()
    assert windows == {"M": "09:00-12:00", "A": "14:00-18:00", "L": "09:00-12:00",
                       "N": "09:00-12:00", "X": "09:00-12:00"}


# ================================================================= SMS pre-notice
def test_sms_notice_before_national_day(build, policy: Policy,
                                        calendar: BusinessCalendar) -> None:
    # D = Wed 09-30; the next working day is Thu 10-08 (10-01 .. 10-07 closed).
    # Orders placed 08-01 (welcome long missed); early_use starts delivered + 7, moved to a
    # working day:
    #   C1 delivered 09-24 -> start 10-01 -> 10-08: first call 10-08 -> SMS, agent A002.
    #   C2 delivered 09-23 -> start 09-30 = D: on today's list, no SMS.
    #   C3 delivered 09-24 (-> 10-08) but a complaint closed 09-29 opens post_resolution on
    #      09-30: already on today's list, no SMS.
    #   C4 delivered 09-28 -> start 10-05 -> 10-08 -> SMS.
    #   C5 do_not_call, delivered 09-24: no SMS.
    #   C6 key tier, delivered 09-24 -> SMS, to the supervisor A001 who will call (its
    #      07-11 visit is a key_account one: next key_account cycle 07-11 + 182 = 2027-01-09).
    #   C7 last reached 07-11 (periodic): 07-11 + 90 = Fri 10-09, first call 10-09: not yet.
    #   C8 cooperating since 2026-06-01, 2026-06-01 + 90 = 08-30: open, listed, no SMS.
    day = D(2026, 9, 30)
    rows = []
    for cid, delivered in (("C1", "09-24"), ("C2", "09-23"), ("C3", "09-24"), ("C4", "09-28"),
                           ("C5", "09-24"), ("C6", "09-24")):
        rows.append(order(f"O{cid}", cid, "2026-08-01 10:00", f"2026-{delivered} 15:00"))
    frames = crm([customer("C1"), customer("C2"), customer("C3"), customer("C4"),
                  customer("C5", do_not_call=1), customer("C6", tier="key"), customer("C7"),
                  customer("C8", cooperation_start_date="2026-06-01",
                           created_at="2026-06-01 09:00")],
                 rows, tickets=[ticket("T3", "C3", "2026-09-29 11:00")],
                 visits=[visit(c, "key_account" if c == "C6" else "periodic",
                               "2026-07-11 10:00")
                         for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7")])
    obs = visit_obligations(frames, policy, calendar, day)
    result = build(obs, frames, day=day)
    sms = result.sms_notice
    assert list(sms.columns) == list(SMS_COLUMNS)
    assert list(sms["customer_id"]) == ["C1", "C4", "C6"]
    assert set(sms["planned_call_date"]) == {"2026-10-08"}
    assert list(sms["agent_id"]) == ["A002", "A002", "A001"]
    assert list(sms["phone"]) == ["13812345678"] * 3
    assert set(result.lists["customer_id"]) == {"C2", "C3", "C8"}
    c3 = by_customer(result).loc["C3"]
    assert (c3["reasons"], c3["ticket_id"], c3["rank"]) == ("post_resolution", "T3", 1)


# ================================================================= call date off work
def test_non_working_call_date_gives_no_lists(build, policy: Policy,
                                              calendar: BusinessCalendar) -> None:
    # Sat 10-03 (National Day): nobody calls: no lists, carry-over or SMS; the report of
    # missed / unreachable / do-not-call obligations still goes out.
    # Sun 09-20 is an adjusted working day: lists as usual.
    # Both were reached on 08-01 (periodic: next cycle 08-01 + 90 = 10-30, upcoming).
    # C2's welcome (O2 ordered Mon 08-10): [08-11, 08-13], missed on both days (38 and 51 days
    # late, within 30 + 30): reported.
    frames = crm([customer("C1"), customer("C2")],
                 [order("O1", "C1", "2026-09-15 10:00", "2026-09-22 10:00"),
                  order("O2", "C2", "2026-08-10 10:00")],
                 visits=[visit(c, "periodic", "2026-08-01 10:00") for c in ("C1", "C2")])
    for day, expect_lists in ((D(2026, 10, 3), False), (D(2026, 9, 20), True)):
        obs = visit_obligations(frames, policy, calendar, day)
        result = build(obs, frames, day=day)
        assert (not result.lists.empty) == expect_lists, day
        assert list(result.lists.columns) == CONTRACT_COLUMNS
        assert list(zip(result.not_listed["customer_id"], result.not_listed["kind"],
                        result.not_listed["reason"], strict=True)) == [
            ("C2", "welcome", "missed")]
    off = build(visit_obligations(frames, policy, calendar, D(2026, 10, 3)), frames,
                day=D(2026, 10, 3))
    assert off.sms_notice.empty and off.carried_over.empty
    on = build(visit_obligations(frames, policy, calendar, D(2026, 9, 20)), frames,
               day=D(2026, 9, 20))
    # Welcome of O1 (ordered Tue 09-15): [Wed 09-16, Fri 09-18]; on Sun 09-20 2 days overdue.
    assert on.lists.iloc[0]["reasons"] == "welcome" and on.lists.iloc[0]["overdue_days"] == 2


# ================================================================= empty
def test_empty_crm_gives_empty_typed_outputs(build, policy: Policy,
                                             calendar: BusinessCalendar) -> None:
    frames = crm([])
    result = build(visit_obligations(frames, policy, calendar, DAY), frames)
    for frame, columns in ((result.lists, CALL_LIST_COLUMNS),
                           (result.carried_over, CARRIED_OVER_COLUMNS),
                           (result.not_listed, NOT_LISTED_COLUMNS),
                           (result.sms_notice, SMS_COLUMNS)):
        assert frame.empty
        assert dict(frame.dtypes.astype(str)) == {c: str(pd.Series(dtype=t).dtype)
                                                  for c, t in columns.items()}
    result = build(visit_obligations({}, policy, calendar, DAY), {})
    assert result.lists.empty and result.sms_notice.empty


# ================================================================= the demo CRM, end to end
@pytest.fixture(scope="module")
def demo(policy: Policy, calendar: BusinessCalendar):
    from tooling.demo_crm import generate_frames

    frames = generate_frames(2000)
    day = D(2026, 11, 20)
    obs = visit_obligations(frames, policy, calendar, day)
    return frames, obs, build_call_list(obs, frames, policy, calendar, day)


def test_demo_invariants(demo, policy: Policy) -> None:
    frames, obs, result = demo
    lists = result.lists
    assert list(lists.columns) == CONTRACT_COLUMNS and len(lists) > 100
    assert lists["customer_id"].is_unique
    # Ranks 1..n in each agent's list, in order.
    for _, rows in lists.groupby("agent_id"):
        assert list(rows["rank"]) == list(range(1, len(rows) + 1))
    # Nobody beyond capacity; only active agents.
    agents = frames["agents"].set_index("agent_id")
    capacity = agents["daily_capacity"].fillna(policy.assignment.daily_capacity)
    counts = lists["agent_id"].value_counts()
    assert (counts <= capacity.reindex(counts.index)).all()
    assert (agents.loc[counts.index, "active"] == 1).all()
    # Listed + carried over = customers with a due / overdue obligation, minus do-not-call.
    dnc = set(frames["customers"].loc[frames["customers"]["do_not_call"] == 1, "customer_id"])
    open_ = set(obs.loc[obs["status"].isin(["due", "overdue"]), "customer_id"]) - dnc
    assert set(lists["customer_id"]) | set(result.carried_over["customer_id"]) == open_
    assert not set(lists["customer_id"]) & dnc
    assert not set(result.sms_notice["customer_id"]) & (set(lists["customer_id"]) | dnc)
    # overdue_days = D - window_end when positive.
    late = (pd.Timestamp("2026-11-20") - pd.to_datetime(lists["window_end"])).dt.days
    assert (lists["overdue_days"].to_numpy() == np.maximum(late.to_numpy(), 0)).all()
    # not_listed (rule: calllist._reported); overdue_days = D - window_end when positive.
    nl = result.not_listed
    nl_late = (pd.Timestamp("2026-11-20") - pd.to_datetime(nl["window_end"])).dt.days.to_numpy()
    assert len(nl) > 0
    assert (nl["overdue_days"].to_numpy() == np.maximum(nl_late, 0)).all()
    visits = policy.visits
    assert (nl_late <= visits.max_overdue_days + visits.report_missed_days).all()
    is_dnc = nl["customer_id"].isin(dnc).to_numpy(dtype=bool)
    assert (nl["reason"].to_numpy(dtype=object)[is_dnc] == "do_not_call").all()
    assert nl["status"][is_dnc].isin(["due", "overdue"]).all()
    assert nl["status"][~is_dnc].isin(["missed", "unreachable", "refused"]).all()
    # Recurring kinds: at most one earlier, one current and one next cycle per customer.
    recurring = obs[obs["kind"].isin(["periodic", "key_account"])]
    assert recurring.groupby(["customer_id", "kind"]).size().max() <= 3
    # Key customers with a supervisor in their department are called by a supervisor.
    key = lists[lists["tier"] == "key"]
    assert (agents.loc[key["agent_id"], "role"] == "supervisor").mean() > 0.9


def test_lists_from_listable_obligations_and_history_equal_those_from_all(
        demo, policy: Policy, calendar: BusinessCalendar) -> None:
    # What a merge of shards holds: the listable obligations, their customers' history and
    # only those customers (no visits, no tickets): the same lists, reports and SMS list.
    from revisit.rules.calllist import customer_history, listable_obligations

    frames, obs, whole = demo
    day = D(2026, 11, 20)
    listable = listable_obligations(obs, policy, calendar, day)
    assert 0 < len(listable) < len(obs)
    ids = listable["customer_id"].drop_duplicates()
    history = customer_history(frames, policy, day, ids)
    assert history["low_satisfaction"].any() and history["last_reached_minute"].notna().any()
    few = {"customers": frames["customers"][frames["customers"]["customer_id"].isin(ids)],
           "agents": frames["agents"]}
    merged = build_call_list(listable, few, policy, calendar, day, history)
    for name in ("lists", "carried_over", "not_listed", "sms_notice"):
        pd.testing.assert_frame_equal(getattr(merged, name), getattr(whole, name))


def test_ratings_after_the_cutoff_are_ignored(build) -> None:
    # D = 10-13 (cut-off 10-13 00:00). LATE's last rating before the cut-off is a visit 9/10;
    # its ticket rated 1/5 closed at the cut-off has not happened yet -> not low, so it ranks by
    # window end (10-15) after EARLY (10-14). LOW's ticket 1/5 closed 10-12 23:00 is its last
    # rating -> low -> ranked first although its window ends last (10-16).
    obs = obligations([ob("EARLY", "early_use", "2026-10-14"),
                       ob("LATE", "early_use", "2026-10-15"),
                       ob("LOW", "early_use", "2026-10-16")])
    frames = crm([customer(c) for c in ("EARLY", "LATE", "LOW")],
                 tickets=[ticket("T1", "LATE", "2026-10-13 00:00", satisfaction=1),
                          ticket("T2", "LOW", "2026-10-12 23:00", satisfaction=1)],
                 visits=[visit(c, "periodic", "2026-09-01 10:00", satisfaction=9)
                         for c in ("LATE", "LOW")])
    result = build(obs, frames)
    assert list(result.lists["customer_id"]) == ["LOW", "EARLY", "LATE"]
    assert by_customer(result).loc["LOW", "note"].endswith("历史满意度较低")


def test_least_loaded_fill_matches_row_by_row_greedy() -> None:
    # The vectorised fill must equal the obvious loop: each row, in rank order, to the member
    # with the smallest load that still has room (ties to the earlier member).
    from revisit.rules.calllist import _water_fill

    rng = np.random.default_rng(7)
    for case in range(400):
        members = int(rng.integers(1, 6))
        loads = rng.integers(0, 6, members)
        # every 4th pool unbounded, as the monthly credit's (np.int32 max, rule_agents)
        caps = np.full(members, np.iinfo(np.int32).max) if case % 4 == 0 else \
            rng.integers(0, 9, members)
        count = int(rng.integers(0, 25))
        expected, load = [], loads.copy()
        for _row in range(count):
            room = np.flatnonzero(load < caps)
            if not len(room):
                expected.append(-1)
                continue
            pick = room[np.argmin(load[room])]
            expected.append(int(pick))
            load[pick] += 1
        assert list(_water_fill(count, loads, caps)) == expected, (loads, caps, count)


def test_least_loaded_fill_holds_about_count_slots_for_an_unbounded_pool() -> None:
    # 1,000 members, 50,000 rows, no capacity: at most count + members slots, not 50 M
    from revisit.rules.calllist import _slots_up_to_level, _water_fill

    loads = np.arange(1000) % 7
    spare = np.clip(np.iinfo(np.int32).max - loads, 0, 50_000)
    assert _slots_up_to_level(loads, spare, 50_000).sum() <= 50_000 + 1000
    got = _water_fill(50_000, loads, np.full(1000, np.iinfo(np.int32).max))
    # least loaded first: every member ends within one row of the others
    final = loads + np.bincount(got, minlength=1000)
    assert final.max() - final.min() <= 1 and (got >= 0).all()


def test_latest_row_per_group_matches_a_loop() -> None:
    # The lexsort in _latest (last rating / last reached visit per customer) must equal the
    # obvious loop: per group, among the masked rows, the latest stamp; equal stamps: later row.
    from revisit.rules.calllist import _latest

    rng = np.random.default_rng(11)
    for _ in range(200):
        n, size = int(rng.integers(0, 30)), int(rng.integers(1, 6))
        group, stamp = rng.integers(0, size, n), rng.integers(0, 4, n)
        mask = rng.random(n) < 0.7
        expected = [-1] * size
        for row in range(n):
            g = group[row]
            if mask[row] and (expected[g] < 0 or stamp[row] >= stamp[expected[g]]):
                expected[g] = row
        assert list(_latest(mask, stamp, group, size)) == expected, (group, stamp, mask)
