"""Visit obligations (revisit.rules.visits), proved by hand against the default policy.

Default policy (include/config/policy.yaml), windows = [start, end]:
  welcome          [1st, 3rd] working day after ordered_at (first order only)
  early_use        [delivered + 7 days, delivered + 15 days]
  stable_use       [delivered + 30 days, that + 5 working days]
  long_term        [delivered + 90 days, that + 5 working days]
  post_resolution  [1st, 3rd] working day after closed_at (complaint, repair)
  periodic         [last reached visit (any kind) / cooperation start + 90 days, that + 10 wd]
                   (tier standard, cooperating >= 90 days at D)
  key_account      [last reached key_account visit / cooperation start + 182 days, that + 10 wd]
  max_overdue_days 30, max_failed_attempts 3 (no_answer / wrong_number).
Recurring kinds (periodic, key_account) repeat every period from their anchor A until a reached
visit moves A: cycle k opens A + k x period (moved to a working day) and lasts 10 working days
counted from that raw start. Rows at D: the current cycle (latest with window_start <= D, else
cycle 1), the one before it, and the next one once it opens by the SMS day (the next working
day after D). A visit of the kind counts toward cycle k when made after the day cycle k-1 left
the list (its window_end + 30; the anchor for k = 1) and by the day cycle k leaves it.
Decision tested here: a window start or end that falls on a non-working day moves to the next
working day (only calendar-day rules can land there).

Calendar facts (CN 2026, `holidays` 0.109):
  Spring Festival: Sat 02-14 adjusted working day; Sun 02-15 .. Mon 02-23 closed;
                   Tue 02-24 working; Sat 02-28 adjusted working day.
  Sun 09-20 adjusted working day; Fri 09-25 closed (Mid-Autumn).
  National Day: Thu 10-01 .. Wed 10-07 closed; Thu 10-08, Fri 10-09 working;
                Sat 10-10 adjusted working day; Sun 10-11 closed; Mon 10-12 .. Fri 10-16 working.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from revisit.config.policy import Policy, UpgradeEvent
from revisit.config.schema import TABLES
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.visits import (
    OBLIGATION_COLUMNS,
    empty_obligations,
    on_time,
    recurring_history,
    visit_obligations,
)

D = dt.date


# ================================================================= building tiny CRMs
def frames_of(rows: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """Canonical frames (the dtypes of a clean snapshot) from lists of row dicts."""
    out = {}
    for name, table in TABLES.items():
        frame = pd.DataFrame(rows.get(name, []), columns=list(table.columns))
        for column, kind in table.columns.items():
            values = frame[column]
            if kind in ("datetime", "date"):
                frame[column] = pd.to_datetime(values, format="ISO8601").astype("datetime64[s]")
            elif kind in ("int", "bool"):
                frame[column] = pd.to_numeric(values).astype("Int64")
            elif kind == "money":
                frame[column] = pd.to_numeric(values).astype("float64")
            else:
                frame[column] = values.astype("str")
        out[name] = frame
    return out


def customer(cid: str, **over: object) -> dict:
    row = {"customer_id": cid, "name": f"客户{cid}", "industry": "制造业", "contact_name": "陈明",
           "contact_title": "经理", "phone": "13812345678", "email": None, "source": "展会",
           "tier": "standard", "owner_agent_id": "A002", "department_id": "D01",
           "cooperation_start_date": "2024-03-15", "do_not_call": 0,
           "created_at": "2024-03-15 10:00:00", "updated_at": "2026-01-01 09:00:00"}
    row.update(over)
    return row


def order(oid: str, cid: str, ordered_at: str, delivered_at: str | None = None) -> dict:
    return {"order_id": oid, "customer_id": cid, "product": "CRM", "product_version": "V3",
            "amount": 1000.0, "ordered_at": ordered_at, "delivered_at": delivered_at}


def ticket(tid: str, cid: str, closed_at: str | None, type_: str = "complaint",
           satisfaction: int | None = None) -> dict:
    return {"ticket_id": tid, "customer_id": cid, "order_id": None, "department_id": "D01",
            "handler_agent_id": "A002", "type": type_, "channel": "phone",
            "priority": "general", "category": "other", "description": "x",
            "created_at": "2024-01-01 09:00:00", "first_response_at": None, "verified_at": None,
            "plan_at": None, "resolved_at": closed_at, "result_fed_back_at": closed_at,
            "closed_at": closed_at, "status": "closed" if closed_at else "in_progress",
            "satisfaction": satisfaction}


_visit_ids = iter(range(1, 10**6))


def visit(cid: str, kind: str, at: str, outcome: str = "reached", order_id: str | None = None,
          ticket_id: str | None = None, satisfaction: int | None = None) -> dict:
    return {"visit_id": f"V{next(_visit_ids):06d}", "customer_id": cid, "agent_id": "A002",
            "kind": kind, "ticket_id": ticket_id, "order_id": order_id, "visited_at": at,
            "method": "phone", "outcome": outcome, "satisfaction": satisfaction, "notes": None}


def agents_rows() -> list[dict]:
    return [
        {"agent_id": "A001", "name": "李娜", "email": None, "department_id": "D01",
         "role": "supervisor", "active": 1, "daily_capacity": None},
        {"agent_id": "A002", "name": "张伟", "email": None, "department_id": "D01",
         "role": "agent", "active": 1, "daily_capacity": 40},
    ]


def crm(customers: list[dict], orders: list[dict] = (), tickets: list[dict] = (),
        visits: list[dict] = ()) -> dict[str, pd.DataFrame]:
    return frames_of({
        "departments": [{"department_id": "D01", "name": "华东客服部", "head_name": "王芳",
                         "head_email": "w@example.com"}],
        "agents": agents_rows(), "customers": customers, "orders": list(orders),
        "tickets": list(tickets), "visits": list(visits),
    })


def rows_of(ob: pd.DataFrame, **where: str) -> pd.DataFrame:
    mask = np.ones(len(ob), dtype=bool)
    for column, value in where.items():
        mask &= (ob[column] == value).to_numpy(dtype=bool, na_value=False)
    return ob[mask]


def one(ob: pd.DataFrame, **where: str) -> pd.Series:
    found = rows_of(ob, **where)
    assert len(found) == 1, f"expected one row for {where}, got\n{found}"
    return found.iloc[0]


def window_of(ob: pd.DataFrame, **where: str) -> tuple[dt.date, dt.date]:
    row = one(ob, **where)
    return row["window_start"].date(), row["window_end"].date()


@pytest.fixture
def run(policy: Policy, calendar: BusinessCalendar):
    def _run(frames: dict[str, pd.DataFrame], day: dt.date) -> pd.DataFrame:
        return visit_obligations(frames, policy, calendar, day)
    return _run


# ================================================================= calendar facts used below
def test_calendar_facts(calendar: BusinessCalendar) -> None:
    working = {D(2026, 2, 14), D(2026, 2, 24), D(2026, 2, 28), D(2026, 9, 20), D(2026, 10, 8),
               D(2026, 10, 9), D(2026, 10, 10), D(2026, 10, 12)}
    closed = {D(2026, 2, 15), D(2026, 2, 16), D(2026, 2, 20), D(2026, 2, 23), D(2026, 9, 25),
              D(2026, 10, 1), D(2026, 10, 4), D(2026, 10, 7), D(2026, 10, 11)}
    for day in working:
        assert calendar.is_working_day(day), day
    for day in closed:
        assert not calendar.is_working_day(day), day


# ================================================================= every kind's window
def test_welcome_window_across_national_day(run) -> None:
    # First order Wed 09-30 10:00. Working days after Sep 30: Oct 1-7 closed, so
    # 1st = Thu 10-08, 2nd = Fri 10-09, 3rd = Sat 10-10 (adjusted working day).
    # A second order (Mon 10-12) owes no welcome visit.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00"),
                                    order("O2", "C1", "2026-10-12 09:00")])
    ob = run(frames, D(2026, 10, 20))
    assert window_of(ob, kind="welcome") == (D(2026, 10, 8), D(2026, 10, 10))
    assert one(ob, kind="welcome")["order_id"] == "O1"


def test_welcome_window_across_spring_festival(run) -> None:
    # Order Fri 02-13 15:00: 1st working day after = Sat 02-14 (adjusted working day);
    # Feb 15-23 closed; 2nd = Tue 02-24, 3rd = Wed 02-25.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-02-13 15:00")])
    assert window_of(run(frames, D(2026, 3, 2)), kind="welcome") == (D(2026, 2, 14),
                                                                     D(2026, 2, 25))


def test_early_use_windows_roll_off_non_working_days(run) -> None:
    # O1 delivered Tue 09-22: start 09-22 + 7 = Tue 09-29; end 09-22 + 15 = Wed 10-07 (closed)
    #    -> next working day Thu 10-08.
    # O2 delivered Thu 09-24: start 10-01 (closed) -> Thu 10-08; end 10-09 (Fri, working).
    # O3 delivered Fri 09-04: start 09-11 (Fri); end 09-19 (Sat) -> Sun 09-20, an adjusted
    #    working day, so the window ends on a Sunday.
    # O4 delivered Sun 02-08: start 02-15 (closed) and end 02-23 (closed) both -> Tue 02-24.
    frames = crm([customer("C1")], [
        order("O1", "C1", "2026-09-01 09:00", "2026-09-22 14:00"),
        order("O2", "C1", "2026-09-01 10:00", "2026-09-24 09:30"),
        order("O3", "C1", "2026-08-20 10:00", "2026-09-04 11:00"),
        order("O4", "C1", "2026-01-20 10:00", "2026-02-08 11:00"),
    ])
    ob = run(frames, D(2026, 12, 31))
    assert window_of(ob, kind="early_use", order_id="O1") == (D(2026, 9, 29), D(2026, 10, 8))
    assert window_of(ob, kind="early_use", order_id="O2") == (D(2026, 10, 8), D(2026, 10, 9))
    assert window_of(ob, kind="early_use", order_id="O3") == (D(2026, 9, 11), D(2026, 9, 20))
    assert window_of(ob, kind="early_use", order_id="O4") == (D(2026, 2, 24), D(2026, 2, 24))


def test_stable_and_long_term_windows(run) -> None:
    # Delivered Fri 09-04:
    #   stable_use raw start 09-04 + 30 = Sun 10-04 (closed) -> shown as Thu 10-08;
    #     end = 5th working day after Sun 10-04: 10-08, 10-09, 10-10 (Sat), 10-12, 10-13
    #     -> Tue 10-13.
    #   long_term start 09-04 + 90: +26 -> 09-30, +31 -> 10-31, +30 -> 11-30, +3 -> Thu 12-03;
    #     end = 5th working day after 12-03: 12-04, 12-07, 12-08, 12-09, 12-10 -> Thu 12-10.
    # Delivered Mon 01-26: stable_use start 01-26 + 30 = Wed 02-25; end 5 working days after:
    #   02-26, 02-27, 02-28 (Sat, adjusted), 03-02, 03-03 -> Tue 03-03.
    # An order not delivered before the cut-off owes none of the three.
    frames = crm([customer("C1")], [
        order("O1", "C1", "2026-08-20 10:00", "2026-09-04 11:00"),
        order("O2", "C1", "2026-01-10 10:00", "2026-01-26 16:00"),
        order("O3", "C1", "2026-01-10 11:00", None),
    ])
    ob = run(frames, D(2026, 12, 31))
    assert window_of(ob, kind="stable_use", order_id="O1") == (D(2026, 10, 8), D(2026, 10, 13))
    assert window_of(ob, kind="long_term", order_id="O1") == (D(2026, 12, 3), D(2026, 12, 10))
    assert window_of(ob, kind="stable_use", order_id="O2") == (D(2026, 2, 25), D(2026, 3, 3))
    assert one(ob, kind="welcome")["order_id"] == "O2"  # the first order (01-10 10:00)
    assert rows_of(ob, order_id="O3").empty


def test_post_resolution_window_and_ticket_types(run) -> None:
    # T1 complaint closed Fri 10-09 16:00: working days after 10-09: Sat 10-10 (adjusted),
    #    Mon 10-12, Tue 10-13 -> [10-10, 10-13].
    # T2 repair closed Thu 02-12 17:00: 02-13 (Fri), 02-14 (Sat, adjusted), then closed until
    #    02-23 -> 3rd = Tue 02-24 -> [02-13, 02-24].
    # T3 consultation (not a post_resolution type), T4 complaint still open: no obligation.
    frames = crm([customer("C1")], tickets=[
        ticket("T1", "C1", "2026-10-09 16:00"), ticket("T2", "C1", "2026-02-12 17:00", "repair"),
        ticket("T3", "C1", "2026-10-09 16:00", "consultation"), ticket("T4", "C1", None),
    ])
    ob = run(frames, D(2026, 10, 14))
    assert window_of(ob, kind="post_resolution", ticket_id="T1") == (D(2026, 10, 10),
                                                                     D(2026, 10, 13))
    assert window_of(ob, kind="post_resolution", ticket_id="T2") == (D(2026, 2, 13),
                                                                     D(2026, 2, 24))
    assert set(rows_of(ob, kind="post_resolution")["ticket_id"]) == {"T1", "T2"}


def test_periodic_window_from_last_reached_visit_of_any_kind(run) -> None:
    # C1 standard, cooperating since 2024-03-15; last reached visit (an early_use one) Fri
    # 07-10 11:00 (a later no_answer visit does not count). Start 07-10 + 90: +21 -> 07-31,
    # +31 -> 08-31, +30 -> 09-30, +8 -> Thu 10-08. End = 10th working day after 10-08:
    # 10-09, 10-10 (Sat), 10-12, 10-13, 10-14, 10-15, 10-16, 10-19, 10-20, 10-21 -> Wed 10-21.
    frames = crm([customer("C1")], visits=[
        visit("C1", "periodic", "2026-03-02 10:00"),
        visit("C1", "early_use", "2026-07-10 11:00", order_id="OX"),
        visit("C1", "periodic", "2026-08-01 10:00", outcome="no_answer"),
    ])
    ob = run(frames, D(2026, 10, 9))
    row = one(ob, kind="periodic")
    assert (row["window_start"].date(), row["window_end"].date()) == (D(2026, 10, 8),
                                                                      D(2026, 10, 21))
    assert row["anchor_at"] == pd.Timestamp("2026-07-10 11:00")
    assert row["status"] == "due"


def test_periodic_from_cooperation_start_and_eligibility(run) -> None:
    # C1 cooperating since Mon 06-01, never reached: start 06-01 + 90: +29 -> 06-30, +31 -> 07-31,
    # +30 -> Sun 08-30 -> shown Mon 08-31. End = 10th working day after Sun 08-30: 08-31, 09-01,
    # 09-02, 09-03, 09-04, 09-07, 09-08, 09-09, 09-10, 09-11 -> Fri 09-11.
    # Eligible from D = 08-30 (D - 06-01 = 90 days >= 90); not at D = 08-29 (89 days).
    # C2 is key tier: no periodic (it owes key_account instead).
    frames = crm([customer("C1", cooperation_start_date="2026-06-01",
                           created_at="2026-06-01 09:00"),
                  customer("C2", tier="key", cooperation_start_date="2026-06-01",
                           created_at="2026-06-01 09:00")])
    ob = run(frames, D(2026, 8, 31))
    assert window_of(ob, kind="periodic") == (D(2026, 8, 31), D(2026, 9, 11))
    assert one(ob, kind="periodic")["customer_id"] == "C1"
    assert rows_of(run(frames, D(2026, 8, 29)), kind="periodic").empty
    assert len(rows_of(run(frames, D(2026, 8, 30)), kind="periodic")) == 1


def test_key_account_window_from_last_reached_key_visit(run) -> None:
    # C1 key; last reached key_account visit Fri 04-10 (a later reached periodic visit does not
    # move it). Start 04-10 + 182: +20 -> 04-30, +31 -> 05-31, +30 -> 06-30, +31 -> 07-31,
    # +31 -> 08-31, +30 -> 09-30, +9 -> Fri 10-09. End = 10th working day after 10-09:
    # 10-10 (Sat), 10-12, 10-13, 10-14, 10-15, 10-16, 10-19, 10-20, 10-21, 10-22 -> Thu 10-22.
    frames = crm([customer("C1", tier="key")], visits=[
        visit("C1", "key_account", "2025-10-10 10:00"),
        visit("C1", "key_account", "2026-04-10 15:00"),
        visit("C1", "periodic", "2026-06-10 15:00"),
    ])
    ob = run(frames, D(2026, 10, 12))
    assert window_of(ob, kind="key_account") == (D(2026, 10, 9), D(2026, 10, 22))
    assert rows_of(ob, kind="periodic").empty


def test_key_account_from_cooperation_start(run) -> None:
    # Never reached; cooperation since Thu 2026-01-01: 01-01 + 31 + 28 + 31 + 30 + 31 + 30
    # (= 181) = 07-01, + 1 = Thu 07-02. End = 10th working day after 07-02: 07-03, 07-06 .. 07-10,
    # 07-13 .. 07-16 -> Thu 07-16.
    frames = crm([customer("C1", tier="key", cooperation_start_date="2026-01-01",
                           created_at="2026-01-01 09:00")])
    assert window_of(run(frames, D(2026, 7, 10)), kind="key_account") == (D(2026, 7, 2),
                                                                          D(2026, 7, 16))


# ================================================================= done / not done
def test_done_matches_kind_and_order(run) -> None:
    # O1, O2 delivered Mon 09-07: early_use [09-14, 09-22] for both. D = Fri 09-18.
    # O1: reached early_use visit for O1 -> done.
    # O2: a reached early_use visit for O1 (a second one) and a reached stable_use visit for O2
    #     do not count; a reached early_use visit for O2 stamped at the cut-off (D 00:00) has not
    #     happened yet -> still due.
    frames = crm([customer("C1")], [
        order("O1", "C1", "2026-09-01 09:00", "2026-09-07 10:00"),
        order("O2", "C1", "2026-09-01 09:30", "2026-09-07 10:00"),
    ], visits=[
        visit("C1", "early_use", "2026-09-14 10:00", order_id="O1"),
        visit("C1", "early_use", "2026-09-15 10:00", order_id="O1"),
        visit("C1", "stable_use", "2026-09-16 10:00", order_id="O2"),
        visit("C1", "early_use", "2026-09-18 00:00", order_id="O2"),
    ])
    ob = run(frames, D(2026, 9, 18))
    o1 = one(ob, kind="early_use", order_id="O1")
    assert o1["status"] == "done"
    assert o1["done_at"] == pd.Timestamp("2026-09-14 10:00")
    assert o1["attempts"] == 2
    o2 = one(ob, kind="early_use", order_id="O2")
    assert o2["status"] == "due" and pd.isna(o2["done_at"]) and o2["attempts"] == 0
    # The same visit seen one day later (D = 09-19) is done.
    assert one(run(frames, D(2026, 9, 19)), kind="early_use", order_id="O2")["status"] == "done"


def test_done_matches_ticket(run) -> None:
    # T1, T2 complaints closed Mon 10-12 10:00 -> windows [10-13, 10-15]; D = Wed 10-14.
    # Only T1 has a reached post_resolution visit. T2's visit was refused: not done, but ended
    # as refused (visits.after_refusal: end; see test_refusal_* below).
    frames = crm([customer("C1")], tickets=[ticket("T1", "C1", "2026-10-12 10:00"),
                                            ticket("T2", "C1", "2026-10-12 10:00")],
                 visits=[visit("C1", "post_resolution", "2026-10-13 10:00", ticket_id="T1"),
                         visit("C1", "post_resolution", "2026-10-13 11:00", ticket_id="T2",
                               outcome="refused")])
    ob = run(frames, D(2026, 10, 14))
    assert one(ob, ticket_id="T1")["status"] == "done"
    t2 = one(ob, ticket_id="T2")
    assert t2["status"] == "refused" and pd.isna(t2["done_at"])


def test_welcome_matched_on_customer(run) -> None:
    # Welcome visits often carry no order: a reached welcome visit after the first order is it.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "welcome", "2026-10-08 10:00")])
    assert one(run(frames, D(2026, 10, 9)), kind="welcome")["status"] == "done"


def recurring_rows(ob: pd.DataFrame, kind: str, cid: str = "C1") -> list[tuple]:
    """(window_start, window_end, status, overdue_days) of a customer's rows of `kind`."""
    rows = rows_of(ob, kind=kind, customer_id=cid)
    return [(r["window_start"].date(), r["window_end"].date(), r["status"],
             int(r["overdue_days"])) for _, r in rows.iterrows()]


def test_key_account_due_again_after_a_missed_cycle(run) -> None:
    # C1 key; last reached key_account visit Mon 2025-10-13 10:00 (A).
    # Cycle 1 opens A + 182: +18 -> 10-31, +30 -> 11-30, +31 -> 12-31, +31 -> 01-31,
    #   +28 -> 02-28, +31 -> 03-31, +13 -> Mon 2026-04-13; ends the 10th working day after:
    #   04-14 .. 04-17 (4), 04-20 .. 04-24 (9), 04-27 (10) -> Mon 04-27. Never visited: missed.
    # Cycle 2 opens 04-13 + 182: +17 -> 04-30, +31 -> 05-31, +30 -> 06-30, +31 -> 07-31,
    #   +31 -> 08-31, +30 -> 09-30, +12 -> Mon 10-12; ends 10-13 .. 10-16 (4), 10-19 .. 10-23 (9),
    #   10-26 (10) -> Mon 10-26.
    # D = Fri 10-30: cycle 1 opened 200 days ago (04-13 + 200 = 10-30) and was missed; the
    # customer is on the list again: cycle 2 is 10-30 - 10-26 = 4 days overdue. Cycle 1 is
    # reported missed, 10-30 - 04-27 = 186 days late (3 + 31 + 30 + 31 + 31 + 30 + 30).
    frames = crm([customer("C1", tier="key")],
                 visits=[visit("C1", "key_account", "2025-10-13 10:00")])
    ob = run(frames, D(2026, 10, 30))
    assert recurring_rows(ob, "key_account") == [
        (D(2026, 4, 13), D(2026, 4, 27), "missed", 186),
        (D(2026, 10, 12), D(2026, 10, 26), "overdue", 4)]
    assert set(rows_of(ob, kind="key_account")["anchor_at"]) == {pd.Timestamp("2025-10-13 10:00")}
    # On Mon 10-12 cycle 2 opens: due.
    assert recurring_rows(run(frames, D(2026, 10, 12)), "key_account")[-1] == (
        D(2026, 10, 12), D(2026, 10, 26), "due", 0)


def test_periodic_second_cycle(run) -> None:
    # D = Mon 2026-06-15 (Fri 06-19 is closed: Dragon Boat Festival).
    # C95 reached 95 days before D: 06-15 - 95 = Thu 03-12 (-15 -> 05-31, -31 -> 04-30,
    #   -30 -> 03-31, -19 -> 03-12). Cycle 1 opens 03-12 + 90 = Wed 06-10 (+19 -> 03-31,
    #   +30 -> 04-30, +31 -> 05-31, +10 -> 06-10); ends 06-11, 06-12 (2), 06-15 .. 06-18 (6),
    #   06-22 .. 06-25 (10) -> Thu 06-25. Due; there is no earlier cycle.
    # C185 reached 185 days before D: 03-12 - 90 = Fri 2025-12-12. Cycle 1 opens 12-12 + 90
    #   = Thu 03-12, ends 03-13 (1), 03-16 .. 03-20 (6), 03-23 .. 03-26 (10) -> Thu 03-26:
    #   missed, 06-15 - 03-26 = 81 days late. Cycle 2 opens 03-12 + 90 = 06-10: [06-10, 06-25],
    #   due (before, the customer was only ever "missed").
    frames = crm([customer("C95"), customer("C185")],
                 visits=[visit("C95", "early_use", "2026-03-12 10:00", order_id="OX"),
                         visit("C185", "periodic", "2025-12-12 15:00")])
    ob = run(frames, D(2026, 6, 15))
    assert recurring_rows(ob, "periodic", "C95") == [
        (D(2026, 6, 10), D(2026, 6, 25), "due", 0)]
    assert recurring_rows(ob, "periodic", "C185") == [
        (D(2026, 3, 12), D(2026, 3, 26), "missed", 81),
        (D(2026, 6, 10), D(2026, 6, 25), "due", 0)]


# A = Tue 2026-04-07 10:00 (reached periodic visit). Cycle 1 opens 04-07 + 90 = Mon 07-06
# (+23 -> 04-30, +31 -> 05-31, +30 -> 06-30, +6 -> 07-06); ends 07-07 .. 07-10 (4),
# 07-13 .. 07-17 (9), 07-20 (10) -> Mon 07-20; on the list (overdue) until 07-20 + 30 = 08-19.
# Cycle 2 opens 07-06 + 90 = Sun 10-04 (+25 -> 07-31, +31 -> 08-31, +30 -> 09-30, +4), inside
# National Day -> shown Thu 10-08; ends the 10th working day after Sun 10-04: 10-08, 10-09,
# 10-10 (Sat, adjusted), 10-12 .. 10-16 (8), 10-19, 10-20 (10) -> Tue 10-20.
CYCLE_1 = (D(2026, 7, 6), D(2026, 7, 20))
CYCLE_2 = (D(2026, 10, 8), D(2026, 10, 20))


@pytest.mark.parametrize(("day", "expected"), [
    # Tue 09-29: cycle 1 is current (missed, 09-29 - 07-20 = 71 days); cycle 2 opens after the
    # SMS day (Wed 09-30): not yet a row.
    (D(2026, 9, 29), [(*CYCLE_1, "missed", 71)]),
    # Wed 09-30: the next working day is 10-08 = cycle 2's first day: it is a row (upcoming),
    # so the SMS pre-notice can go out today.
    (D(2026, 9, 30), [(*CYCLE_1, "missed", 72), (*CYCLE_2, "upcoming", 0)]),
    # Sun 10-04: cycle 2's raw start, but its window opens 10-08: still upcoming.
    (D(2026, 10, 4), [(*CYCLE_1, "missed", 76), (*CYCLE_2, "upcoming", 0)]),
    # Fri 10-09: cycle 2 due; cycle 1 missed (81 days).
    (D(2026, 10, 9), [(*CYCLE_1, "missed", 81), (*CYCLE_2, "due", 0)]),
    # Sat 10-10 (adjusted working day) and Tue 10-20 (last day): due; Wed 10-21: overdue 1.
    (D(2026, 10, 10), [(*CYCLE_1, "missed", 82), (*CYCLE_2, "due", 0)]),
    (D(2026, 10, 20), [(*CYCLE_1, "missed", 92), (*CYCLE_2, "due", 0)]),
    (D(2026, 10, 21), [(*CYCLE_1, "missed", 93), (*CYCLE_2, "overdue", 1)]),
])
def test_periodic_cycles_across_national_day(run, day: dt.date, expected: list) -> None:
    frames = crm([customer("C1")], visits=[visit("C1", "periodic", "2026-04-07 10:00")])
    assert recurring_rows(run(frames, day), "periodic") == expected


def test_attempts_count_toward_the_cycle_on_the_list_when_made(run) -> None:
    # Windows of test_periodic_cycles_across_national_day; D = Fri 10-09. Cycle 1's attempts
    # are those made after the anchor through 08-19 (its last overdue day); cycle 2's from
    # 08-20 00:00 on (early calls included).
    # C1: no_answer 07-08, no_answer 07-10, wrong_number 08-19 23:00 -> cycle 1 has 3 failed
    #     attempts: unreachable, overdue_days 10-09 - 07-20 = 81; cycle 2 starts clean: due.
    # C2: no_answer 07-08, refused 07-10, no_answer 08-20 09:00 -> cycle 1: 2 attempts, 1 failed,
    #     ended by the refusal (refused; overdue_days 81 as for any status but done); cycle 2:
    #     the early 08-20 call, 1 failed: due.
    # C3: nothing for cycle 1 (missed); three no_answer on 10-08 -> cycle 2 unreachable.
    def tries(cid: str, calls: list[tuple[str, str]]) -> list[dict]:
        return [visit(cid, "periodic", "2026-04-07 10:00")] + [
            visit(cid, "periodic", at, outcome=outcome) for at, outcome in calls]
    frames = crm([customer(c) for c in ("C1", "C2", "C3")], visits=[
        *tries("C1", [("2026-07-08 10:00", "no_answer"), ("2026-07-10 10:00", "no_answer"),
                      ("2026-08-19 23:00", "wrong_number")]),
        *tries("C2", [("2026-07-08 10:00", "no_answer"), ("2026-07-10 10:00", "refused"),
                      ("2026-08-20 09:00", "no_answer")]),
        *tries("C3", [("2026-10-08 10:00", "no_answer"), ("2026-10-08 14:00", "no_answer"),
                      ("2026-10-08 16:00", "no_answer")]),
    ])
    ob = run(frames, D(2026, 10, 9))

    def cycles(cid: str) -> list[tuple]:
        rows = rows_of(ob, kind="periodic", customer_id=cid)
        return [(r["window_end"].date(), r["status"], r["attempts"], r["failed_attempts"],
                 r["overdue_days"]) for _, r in rows.iterrows()]
    assert cycles("C1") == [(CYCLE_1[1], "unreachable", 3, 3, 81), (CYCLE_2[1], "due", 0, 0, 0)]
    assert cycles("C2") == [(CYCLE_1[1], "refused", 2, 1, 81), (CYCLE_2[1], "due", 1, 1, 0)]
    assert cycles("C3") == [(CYCLE_1[1], "missed", 0, 0, 81),
                            (CYCLE_2[1], "unreachable", 3, 3, 0)]
    c2 = rows_of(ob, kind="periodic", customer_id="C2")
    assert list(c2["last_attempt_at"]) == [pd.Timestamp("2026-07-10 10:00"),
                                           pd.Timestamp("2026-08-20 09:00")]


def test_only_the_latest_earlier_cycle_is_a_row(run) -> None:
    # Cooperating since 2024-03-15, never reached: cycles every 90 days since then. D =
    # 2026-10-03: 2024-03-15 + 900 (10 cycles) = 2026-09-01 (+365 -> 2025-03-15, +365 ->
    # 2026-03-15, +170 -> 09-01); cycle 11 opens 11-30. Rows: cycle 9 (opened 06-03) and 10.
    frames = crm([customer("C1")])
    rows = recurring_rows(run(frames, D(2026, 10, 3)), "periodic")
    assert [start for start, *_ in rows] == [D(2026, 6, 3), D(2026, 9, 1)]
    assert [status for *_, status, _ in rows] == ["missed", "overdue"]


def test_recurring_reached_visit_starts_the_next_cycle(run) -> None:
    # A reached periodic visit is the anchor of the next periodic obligation (never "done").
    frames = crm([customer("C1")], visits=[visit("C1", "periodic", "2026-09-01 10:00")])
    row = one(run(frames, D(2026, 10, 9)), kind="periodic")
    assert row["anchor_at"] == pd.Timestamp("2026-09-01 10:00")
    assert row["status"] == "upcoming"  # 09-01 + 90 = 11-30


# ================================================================= due / overdue / missed
@pytest.mark.parametrize(("day", "status", "overdue_days"), [
    (D(2026, 10, 7), "upcoming", 0),   # before the window (opens 10-08)
    (D(2026, 10, 8), "due", 0),        # first day
    (D(2026, 10, 10), "due", 0),       # last day
    (D(2026, 10, 11), "overdue", 1),   # 10-11 - 10-10 = 1
    (D(2026, 11, 9), "overdue", 30),   # 10-10 + 30 = 11-09: the last overdue day
    (D(2026, 11, 10), "missed", 31),   # 31 days after the window: missed
])
def test_overdue_missed_boundary(run, day: dt.date, status: str, overdue_days: int) -> None:
    # Welcome window [10-08, 10-10] (see test_welcome_window_across_national_day).
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")])
    row = one(run(frames, day), kind="welcome")
    assert (row["status"], row["overdue_days"]) == (status, overdue_days)


def test_unreachable_after_exactly_three_failed_attempts(run) -> None:
    # Welcome window [10-08, 10-10]; D = Mon 10-12 (overdue 2 days unless unreachable).
    # C1: no_answer, wrong_number, no_answer -> 3 failed -> unreachable.
    # C2: no_answer, wrong_number, rescheduled -> 2 failed -> still overdue.
    # C3: no_answer, no_answer, and the third one at the cut-off 10-12 00:00 -> 2 -> overdue.
    # C4: three failed, then reached -> done wins.
    def tries(cid: str, outcomes: list[str], stamps: list[str]) -> list[dict]:
        return [visit(cid, "welcome", s, outcome=o) for o, s in zip(outcomes, stamps, strict=True)]
    stamps = ["2026-10-08 10:00", "2026-10-09 10:00", "2026-10-10 10:00"]
    ids = ["C1", "C2", "C3", "C4"]
    frames = crm([customer(c) for c in ids],
                 [order(f"O{c}", c, "2026-09-30 10:00") for c in ids],
                 visits=tries("C1", ["no_answer", "wrong_number", "no_answer"], stamps)
                 + tries("C2", ["no_answer", "wrong_number", "rescheduled"], stamps)
                 + tries("C3", ["no_answer", "no_answer", "no_answer"],
                         [*stamps[:2], "2026-10-12 00:00"])
                 + tries("C4", ["no_answer", "wrong_number", "no_answer", "reached"],
                         [*stamps, "2026-10-11 09:00"]))
    ob = rows_of(run(frames, D(2026, 10, 12)), kind="welcome").set_index("customer_id")
    assert ob.loc["C1", "status"] == "unreachable" and ob.loc["C1", "failed_attempts"] == 3
    assert ob.loc["C1", "overdue_days"] == 2  # past the window: D - window_end, unreachable too
    assert ob.loc["C2", "status"] == "overdue" and ob.loc["C2", "failed_attempts"] == 2
    assert ob.loc["C3", "status"] == "overdue" and ob.loc["C3", "failed_attempts"] == 2
    assert ob.loc["C4", "status"] == "done"


# ================================================================= the cut-off
def test_stamps_at_or_after_the_cutoff_are_ignored(run) -> None:
    # D = Fri 10-09, cut-off 10-09 00:00.
    # C1 created at the cut-off: not a customer yet. O1 (C2) ordered 10-08 23:59:59: counts;
    # O2 (C3) ordered at the cut-off: not yet. T1 (C2) closed at the cut-off: no
    # post_resolution; O3 delivered at the cut-off: no early_use etc.
    frames = crm([customer("C1", created_at="2026-10-09 00:00:00"), customer("C2"),
                  customer("C3")],
                 [order("O1", "C2", "2026-10-08 23:59:59"),
                  order("O2", "C3", "2026-10-09 00:00:00"),
                  order("O3", "C3", "2026-09-01 00:00:00", "2026-10-09 00:00:00")],
                 tickets=[ticket("T1", "C2", "2026-10-09 00:00:00")])
    ob = run(frames, D(2026, 10, 9))
    assert "C1" not in set(ob["customer_id"])
    assert one(ob, kind="welcome", customer_id="C2")["order_id"] == "O1"
    assert one(ob, kind="welcome", customer_id="C3")["order_id"] == "O3"
    assert rows_of(ob, kind="post_resolution").empty
    assert rows_of(ob, kind="early_use").empty


# ================================================================= shape
def test_empty_crm_gives_typed_empty_table(run) -> None:
    ob = run(crm([]), D(2026, 10, 9))
    assert ob.empty
    assert list(ob.columns) == list(OBLIGATION_COLUMNS)
    assert dict(ob.dtypes.astype(str)) == dict(empty_obligations().dtypes.astype(str))
    # No table at all (an optional table missing from a snapshot) works too.
    assert run({}, D(2026, 10, 9)).empty


def test_columns_and_order(run) -> None:
    frames = crm([customer("C2"), customer("C1")],
                 [order("O1", "C1", "2026-09-30 10:00", "2026-10-08 10:00"),
                  order("O2", "C2", "2026-09-30 10:00")])
    ob = run(frames, D(2026, 10, 9))
    assert list(ob.columns) == list(OBLIGATION_COLUMNS)
    assert list(ob["customer_id"]) == sorted(ob["customer_id"])
    assert ob["status"].isin(["done", "upcoming", "due", "overdue", "missed",
                              "unreachable"]).all()


def test_missing_cooperation_start_falls_back_to_created_at(run) -> None:
    # No cooperation_start_date: count from created_at (06-01 09:00) -> the same window as
    # test_periodic_from_cooperation_start_and_eligibility, [08-31, 09-11].
    frames = crm([customer("C1", cooperation_start_date=None, created_at="2026-06-01 09:00")])
    assert window_of(run(frames, D(2026, 8, 31)), kind="periodic") == (D(2026, 8, 31),
                                                                       D(2026, 9, 11))


@pytest.mark.parametrize("period", ["90 days", "182 days", "7 days", "40 working_days"])
def test_current_cycle_matches_counting_cycle_by_cycle(policy: Policy,
                                                       calendar: BusinessCalendar,
                                                       period: str) -> None:
    # The arithmetic (with its holiday corrections) equals the obvious loop: from cycle 1, step
    # on while the next cycle's window_start <= D. Anchors from 2009 (before the calendar's
    # first year: Monday-Friday fallback) to after D, on any weekday or holiday.
    from revisit.config.policy import WindowRule
    from revisit.rules.visits import current_cycle, cycle_window

    rule = WindowRule.model_validate({"start": period, "length": "10 working_days"})
    rng = np.random.default_rng(11)
    day = np.datetime64("2026-10-04")
    anchors = np.concatenate([
        np.datetime64("2009-01-01") + rng.integers(0, 6500, 300).astype("timedelta64[D]"),
        np.arange(np.datetime64("2026-06-20"), np.datetime64("2026-10-10")),
    ])
    got = current_cycle(calendar, anchors, rule, day)
    expected = np.ones(len(anchors), dtype=np.int64)
    while True:
        start, _ = cycle_window(calendar, anchors, expected + 1, rule)
        step = start <= day
        if not step.any():
            break
        expected += step
    assert (got == expected).all()
    start, _ = cycle_window(calendar, anchors, got, rule)
    assert ((start <= day) | (got == 1)).all()
    if period.endswith("working_days"):  # cycle k opens on the 40k-th working day after A
        inside = anchors >= np.datetime64("2015-01-01")
        assert (start[inside] == calendar.add_working_days_to_date(
            anchors[inside], 40 * got[inside])).all()


# ================================================================= special circumstances
def with_visits(policy: Policy, **changes: object) -> Policy:
    """The policy with `visits` fields replaced (kinds: name -> field changes)."""
    kinds = dict(policy.visits.kinds)
    if "events" in changes:
        changes["events"] = [UpgradeEvent(**event) for event in changes["events"]]
    for name, fields in dict(changes.pop("kinds", {})).items():
        kinds[name] = kinds[name].model_copy(update=fields)
    return policy.model_copy(update={"visits": policy.visits.model_copy(
        update={**changes, "kinds": kinds})})


def product_order(oid: str, cid: str, product: str, ordered_at: str,
                  delivered_at: str | None = None) -> dict:
    return {**order(oid, cid, ordered_at, delivered_at), "product": product}


def complaint(tid: str, cid: str, created_at: str, priority: str, type_: str = "complaint",
              closed_at: str | None = None) -> dict:
    return {**ticket(tid, cid, closed_at, type_=type_), "priority": priority,
            "created_at": created_at}


def test_first_order_is_welcome_a_repeat_product_nothing_a_new_product_new_product(run) -> None:
    # C1: O1 CRM Tue 09-01 (first order: welcome only), O2 CRM Tue 09-08 (ordered before:
    # nothing), O3 ERP Tue 09-15 (new to C1) -> new_product [1st, 3rd] working day after
    # 09-15 = [Wed 09-16, Fri 09-18]. O4 (no product: cannot tell) owes nothing.
    frames = crm([customer("C1")], [product_order("O1", "C1", "CRM", "2026-09-01 10:00"),
                                    product_order("O2", "C1", "CRM", "2026-09-08 10:00"),
                                    product_order("O3", "C1", "ERP", "2026-09-15 10:00"),
                                    product_order("O4", "C1", None, "2026-09-15 11:00")])
    ob = run(frames, D(2026, 9, 17))
    assert list(rows_of(ob, kind="welcome")["order_id"]) == ["O1"]
    assert list(rows_of(ob, kind="new_product")["order_id"]) == ["O3"]
    assert window_of(ob, kind="new_product", order_id="O3") == (D(2026, 9, 16), D(2026, 9, 18))
    assert one(ob, kind="new_product", order_id="O3")["status"] == "due"


def test_new_product_is_matched_by_order_id(run) -> None:
    # A reached new_product visit naming O3 completes O3's, not O4's (both [09-16, 09-18]).
    frames = crm([customer("C1")], [product_order("O1", "C1", "CRM", "2026-09-01 10:00"),
                                    product_order("O3", "C1", "ERP", "2026-09-15 10:00"),
                                    product_order("O4", "C1", "MES", "2026-09-15 11:00")],
                 visits=[visit("C1", "new_product", "2026-09-16 10:00", order_id="O3")])
    ob = run(frames, D(2026, 9, 17))
    assert one(ob, kind="new_product", order_id="O3")["status"] == "done"
    assert one(ob, kind="new_product", order_id="O4")["status"] == "due"


def test_urgent_and_important_complaints_owe_a_care_call_general_ones_do_not(run) -> None:
    # Window [calendar day of created_at, 1st working day after it].
    # T1 urgent, Fri 10-16 20:00 (Friday evening) -> [Fri 10-16, Mon 10-19].
    # T2 important, Wed 09-30 21:00 (eve of National Day, Oct 1-7 closed) -> [09-30, Thu 10-08].
    # T3 urgent, Sat 10-03 (inside the holiday) -> start moves to Thu 10-08; end = 1st working
    #    day after 10-03 = 10-08 -> [10-08, 10-08].
    # T4 general complaint, T5 urgent repair: no major_complaint (repair is not a complaint).
    tickets = [complaint("T1", "C1", "2026-10-16 20:00", "urgent"),
               complaint("T2", "C1", "2026-09-30 21:00", "important"),
               complaint("T3", "C1", "2026-10-03 10:00", "urgent"),
               complaint("T4", "C1", "2026-10-16 09:00", "general"),
               complaint("T5", "C1", "2026-10-16 09:00", "urgent", type_="repair")]
    ob = run(crm([customer("C1")], tickets=tickets), D(2026, 10, 17))
    major = rows_of(ob, kind="major_complaint")
    assert sorted(major["ticket_id"]) == ["T1", "T2", "T3"]
    assert window_of(ob, kind="major_complaint", ticket_id="T1") == (D(2026, 10, 16),
                                                                     D(2026, 10, 19))
    assert window_of(ob, kind="major_complaint", ticket_id="T2") == (D(2026, 9, 30),
                                                                     D(2026, 10, 8))
    assert window_of(ob, kind="major_complaint", ticket_id="T3") == (D(2026, 10, 8),
                                                                     D(2026, 10, 8))
    assert one(ob, ticket_id="T1")["status"] == "due"  # D = Sat 10-17, inside the window


def test_major_complaint_is_independent_of_post_resolution(run) -> None:
    # T1 urgent complaint created Mon 10-12 09:00, closed Mon 10-12 17:00: care call window
    # [10-12, 10-13] (done by the major_complaint visit of 10-12 11:00 naming T1) and a
    # post_resolution window [10-13, 10-15] that this visit does not complete.
    frames = crm([customer("C1")],
                 tickets=[complaint("T1", "C1", "2026-10-12 09:00", "urgent",
                                    closed_at="2026-10-12 17:00")],
                 visits=[visit("C1", "major_complaint", "2026-10-12 11:00", ticket_id="T1")])
    ob = run(frames, D(2026, 10, 14))
    assert one(ob, kind="major_complaint")["status"] == "done"
    assert one(ob, kind="post_resolution")["status"] == "due"


def test_major_complaint_priorities_come_from_the_policy(policy, calendar) -> None:
    only_urgent = with_visits(policy, kinds={"major_complaint": {"priorities": ["urgent"]}})
    frames = crm([customer("C1")], tickets=[complaint("T1", "C1", "2026-10-16 20:00", "urgent"),
                                            complaint("T2", "C1", "2026-10-16 20:00",
                                                      "important")])
    ob = visit_obligations(frames, only_urgent, calendar, D(2026, 10, 17))
    assert list(rows_of(ob, kind="major_complaint")["ticket_id"]) == ["T1"]


UPGRADE = {"name": "CRM V4", "product": "CRM", "date": dt.date(2026, 10, 12)}


def test_upgrade_is_due_to_customers_delivered_before_the_event(policy, calendar) -> None:
    # Event CRM V4 on Mon 10-12: window [1st, 10th] working day after = [Tue 10-13, Mon 10-26].
    # C1 delivered Fri 10-09: due. C2 delivered on the event's day (10-12 08:00, not before
    # 10-12 00:00): not due. C3's delivered order is of another product: not due. C4 has two
    # delivered CRM orders: one obligation, on the latest order (O5). C5 ordered but never
    # delivered: not due.
    upgraded = with_visits(policy, events=[UPGRADE])
    frames = crm([customer(c) for c in ("C1", "C2", "C3", "C4", "C5")], [
        order("O1", "C1", "2026-10-08 10:00", "2026-10-09 10:00"),
        order("O2", "C2", "2026-10-08 10:00", "2026-10-12 08:00"),
        product_order("O3", "C3", "ERP", "2026-10-08 10:00", "2026-10-09 10:00"),
        order("O4", "C4", "2026-03-02 10:00", "2026-03-05 10:00"),
        order("O5", "C4", "2026-06-01 10:00", "2026-06-04 10:00"),
        order("O6", "C5", "2026-10-08 10:00")])
    ob = visit_obligations(frames, upgraded, calendar, D(2026, 10, 14))
    rows = rows_of(ob, kind="product_upgrade")
    assert sorted(zip(rows["customer_id"], rows["order_id"], strict=True)) == [("C1", "O1"),
                                                                                ("C4", "O5")]
    assert window_of(ob, kind="product_upgrade", customer_id="C1") == (D(2026, 10, 13),
                                                                       D(2026, 10, 26))
    assert one(ob, kind="product_upgrade", customer_id="C1")["anchor_at"] == \
        pd.Timestamp("2026-10-12")


def test_upgrade_before_the_event_is_upcoming_and_sees_only_deliveries_before_the_cutoff(
        policy, calendar) -> None:
    # D = Sat 10-10 (cut-off 10-10 00:00): C1 delivered 10-09 -> upcoming (window opens 10-13);
    # C2 delivered 10-10 09:00, after the cut-off, has not been delivered yet at D.
    upgraded = with_visits(policy, events=[UPGRADE])
    frames = crm([customer("C1"), customer("C2")], [
        order("O1", "C1", "2026-10-08 10:00", "2026-10-09 10:00"),
        order("O2", "C2", "2026-10-08 10:00", "2026-10-10 09:00")])
    ob = visit_obligations(frames, upgraded, calendar, D(2026, 10, 10))
    row = one(ob, kind="product_upgrade")
    assert (row["customer_id"], row["status"]) == ("C1", "upcoming")


def test_an_upgrade_visit_counts_for_the_latest_event_on_or_before_its_day(policy,
                                                                          calendar) -> None:
    # Events CRM V4 (Mon 10-12) and CRM V5 (Mon 11-02, window [11-03, 11-16]); C1 delivered
    # 10-09 owes both. A visit on 10-11 (before V4) counts for neither; the one on 10-12 (the
    # event's day) completes V4; V5 is still open on D = 11-04 (due).
    events = [UPGRADE, {"name": "CRM V5", "product": "CRM", "date": dt.date(2026, 11, 2)}]
    upgraded = with_visits(policy, events=events)
    frames = crm([customer("C1")], [order("O1", "C1", "2026-10-08 10:00", "2026-10-09 10:00")],
                 visits=[visit("C1", "product_upgrade", "2026-10-11 10:00"),
                         visit("C1", "product_upgrade", "2026-10-12 10:00")])
    ob = rows_of(visit_obligations(frames, upgraded, calendar, D(2026, 11, 4)),
                 kind="product_upgrade")
    assert list(ob["status"]) == ["done", "due"]
    assert ob["done_at"].iloc[0] == pd.Timestamp("2026-10-12 10:00")
    assert list(ob["attempts"]) == [1, 0]


def test_an_upgrade_visit_naming_an_order_counts_for_that_products_event(policy,
                                                                        calendar) -> None:
    # Two products, two events: CRM upgraded Mon 10-12, ERP Mon 11-02 (window [11-03, 11-16]).
    # C1 has both delivered before. Visits on 11-04 and 11-05 name the CRM order O1: they are
    # about CRM's upgrade (done, 2 attempts), not ERP's, which the latest-date rule alone would
    # pick and which stays due with no attempt. A visit naming no order still takes the latest.
    events = [UPGRADE, {"name": "ERP 9", "product": "ERP", "date": dt.date(2026, 11, 2)}]
    upgraded = with_visits(policy, events=events)
    frames = crm([customer("C1")],
                 [product_order("O1", "C1", "CRM", "2026-09-01 10:00", "2026-09-03 10:00"),
                  product_order("O2", "C1", "ERP", "2026-09-10 10:00", "2026-09-12 10:00")],
                 visits=[visit("C1", "product_upgrade", "2026-11-04 10:00", order_id="O1"),
                         visit("C1", "product_upgrade", "2026-11-05 10:00", order_id="O1")])
    ob = rows_of(visit_obligations(frames, upgraded, calendar, D(2026, 11, 6)),
                 kind="product_upgrade").sort_values("window_start")
    assert list(ob["order_id"]) == ["O1", "O2"]
    assert list(ob["status"]) == ["done", "due"] and list(ob["attempts"]) == [2, 0]
    unnamed = crm([customer("C1")], frames["orders"].to_dict("records"),
                  visits=[visit("C1", "product_upgrade", "2026-11-04 10:00")])
    ob = rows_of(visit_obligations(unnamed, upgraded, calendar, D(2026, 11, 6)),
                 kind="product_upgrade").sort_values("window_start")
    assert list(ob["status"]) == ["overdue", "done"]


def test_a_kind_switched_off_owes_nothing(policy, calendar) -> None:
    # new_product and periodic off: C1's ERP order and its periodic cycles owe nothing; the
    # other kinds are untouched.
    off = with_visits(policy, kinds={"new_product": {"enabled": False},
                                     "periodic": {"enabled": False}})
    frames = crm([customer("C1")], [product_order("O1", "C1", "CRM", "2026-09-01 10:00"),
                                    product_order("O2", "C1", "ERP", "2026-09-15 10:00")])
    on = set(visit_obligations(frames, policy, calendar, D(2026, 9, 17))["kind"])
    ob = visit_obligations(frames, off, calendar, D(2026, 9, 17))
    assert {"new_product", "periodic"} <= on
    assert set(ob["kind"]) == on - {"new_product", "periodic"}
    assert recurring_history(frames, off, calendar, D(2026, 9, 17)).query(
        "kind == 'periodic'").empty


def test_every_kind_of_the_shipped_policy_is_on(policy) -> None:
    assert all(rule.enabled for rule in policy.visits.kinds.values())
    assert policy.visits.after_refusal == "end" and policy.visits.early_tolerance_days == 0


# ================================================================= refusals
def test_refusal_ends_the_obligation_by_default_and_is_one_more_attempt_with_retry(
        policy, calendar) -> None:
    # Welcome window [10-08, 10-10]; refused Thu 10-08 10:00; D = Fri 10-09.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "welcome", "2026-10-08 10:00", outcome="refused")])
    ended = one(visit_obligations(frames, policy, calendar, D(2026, 10, 9)), kind="welcome")
    assert ended["status"] == "refused" and ended["refused_at"] == pd.Timestamp(
        "2026-10-08 10:00")
    assert pd.isna(ended["done_at"]) and ended["attempts"] == 1
    retry = with_visits(policy, after_refusal="retry")
    again = one(visit_obligations(frames, retry, calendar, D(2026, 10, 9)), kind="welcome")
    assert again["status"] == "due" and again["failed_attempts"] == 0


def test_a_reached_visit_after_a_refusal_is_done(run) -> None:
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-30 10:00")],
                 visits=[visit("C1", "welcome", "2026-10-08 10:00", outcome="refused"),
                         visit("C1", "welcome", "2026-10-09 10:00")])
    assert one(run(frames, D(2026, 10, 12)), kind="welcome")["status"] == "done"


# ================================================================= on time (early visits)
def test_an_early_visit_is_done_but_not_on_time_unless_within_the_tolerance(policy,
                                                                           calendar) -> None:
    # early_use of O1 delivered Thu 09-24: raw window [10-01, 10-09]; 10-01 lies in National
    # Day, so window_start = Thu 10-08. Reached Wed 09-30 (after delivery): done, 8 days before
    # the window start -> on time only with early_tolerance_days >= 8.
    # O2 delivered Thu 10-08: window [10-15, 10-23]; reached 10-20: on time; O3 reached 10-24
    # (one day late): done, not on time.
    frames = crm([customer("C1")], [order("O1", "C1", "2026-09-21 10:00", "2026-09-24 10:00"),
                                    order("O2", "C1", "2026-10-05 10:00", "2026-10-08 10:00"),
                                    order("O3", "C1", "2026-10-05 10:00", "2026-10-08 10:00")],
                 visits=[visit("C1", "early_use", "2026-09-30 10:00", order_id="O1"),
                         visit("C1", "early_use", "2026-10-20 10:00", order_id="O2"),
                         visit("C1", "early_use", "2026-10-24 10:00", order_id="O3")])
    ob = rows_of(visit_obligations(frames, policy, calendar, D(2026, 10, 26)),
                 kind="early_use").sort_values("order_id")
    assert window_of(ob, order_id="O1") == (D(2026, 10, 8), D(2026, 10, 9))
    assert list(ob["status"]) == ["done", "done", "done"]
    assert list(on_time(ob, policy)) == [False, True, False]
    assert list(on_time(ob, with_visits(policy, early_tolerance_days=7))) == [False, True, False]
    assert list(on_time(ob, with_visits(policy, early_tolerance_days=8))) == [True, True, False]


def test_a_refusal_counts_as_done_for_timeliness_when_on_time(policy, calendar) -> None:
    # Welcome windows [10-08, 10-10]: C1 refused 10-09 (on time), C2 refused 10-12 (late),
    # C3 refused Wed 09-30 14:00, after the order but before the window (early: not on time).
    ids = ("C1", "C2", "C3")
    frames = crm([customer(c) for c in ids], [order(f"O{c}", c, "2026-09-30 10:00") for c in ids],
                 visits=[visit("C1", "welcome", "2026-10-09 10:00", outcome="refused"),
                         visit("C2", "welcome", "2026-10-12 10:00", outcome="refused"),
                         visit("C3", "welcome", "2026-09-30 14:00", outcome="refused")])
    ob = rows_of(visit_obligations(frames, policy, calendar, D(2026, 10, 20)), kind="welcome")
    assert list(ob["status"]) == ["refused"] * 3
    assert list(on_time(ob, policy)) == [True, False, False]


def test_monthly_timeliness_uses_the_on_time_rule(policy, calendar) -> None:
    # October windows of C1: welcome [10-08, 10-10] reached early on 09-30 14:00 (done, not on
    # time); C2's welcome refused on 10-09 (on time). With a tolerance of 8 days C1 is on time.
    from revisit.rules.kpis import timeliness_obligations

    frames = crm([customer("C1"), customer("C2")],
                 [order("O1", "C1", "2026-09-30 10:00"), order("O2", "C2", "2026-09-30 10:00")],
                 visits=[visit("C1", "welcome", "2026-09-30 14:00"),
                         visit("C2", "welcome", "2026-10-09 10:00", outcome="refused")])

    def welcome_on_time(p: Policy) -> list[bool]:
        rows = timeliness_obligations(frames, p, calendar, "2026-10")
        return list(rows[rows["kind"] == "welcome"].sort_values("customer_id")["on_time"])
    assert welcome_on_time(policy) == [False, True]
    assert welcome_on_time(with_visits(policy, early_tolerance_days=8)) == [True, True]


def test_recurring_history_follows_the_same_on_time_rule(policy, calendar) -> None:
    # Reached periodic visits Tue 04-07 (anchor) and Wed 06-24: the 04-07 obligation's window
    # is [Mon 07-06, Mon 07-20]; 06-24 closes it 12 days early -> not on time, on time with
    # early_tolerance_days 12 (not 11). The refusal of Wed 07-08 answers the 06-24 anchor's
    # obligation (window opens 06-24 + 90 = 09-22), 76 days early -> not on time.
    frames = crm([customer("C1")],
                 visits=[visit("C1", "periodic", "2026-04-07 10:00"),
                         visit("C1", "periodic", "2026-06-24 10:00"),
                         visit("C1", "periodic", "2026-07-08 10:00", outcome="refused")])

    def by_anchor(p: Policy) -> dict[str, bool]:
        rows = recurring_history(frames, p, calendar, D(2026, 11, 2))
        rows = rows[rows["kind"] == "periodic"]
        return dict(zip(rows["anchor_at"].dt.strftime("%m-%d"), rows["on_time"], strict=True))
    assert not by_anchor(policy)["04-07"]
    assert not by_anchor(with_visits(policy, early_tolerance_days=11))["04-07"]
    assert by_anchor(with_visits(policy, early_tolerance_days=12))["04-07"]
    assert not by_anchor(policy)["06-24"]
    # 76 days of tolerance make the refusal on time; with retry it answers nothing.
    assert by_anchor(with_visits(policy, early_tolerance_days=76))["06-24"]
    assert not by_anchor(with_visits(policy, after_refusal="retry",
                                     early_tolerance_days=76))["06-24"]


def test_in_recurring_history_a_reached_visit_after_a_refusal_wins(policy, calendar) -> None:
    # Cooperating since Mon 01-05: 01-05 + 90 days = Sun 04-05 (Qingming), Mon 04-06 its
    # observed holiday -> the window opens Tue 04-07 and lasts 10 working days from the raw
    # start -> [04-07, 04-20]. A refusal on 03-20 (18 days early) and a reached visit on 04-08
    # (inside the window): as for a one-off kind (status done, `on_time` by done_at) the
    # reached visit answers the obligation -> on time; the early refusal alone would not.
    frames = crm([customer("C1", cooperation_start_date="2026-01-05")],
                 visits=[visit("C1", "periodic", "2026-03-20 10:00", outcome="refused"),
                         visit("C1", "periodic", "2026-04-08 10:00")])
    rows = recurring_history(frames, policy, calendar, D(2026, 11, 2))
    first = rows[(rows["kind"] == "periodic")].sort_values("anchor_at").iloc[0]
    assert first["window_start"] <= pd.Timestamp("2026-04-08") <= first["window_end"]
    assert bool(first["on_time"]) and not bool(first["superseded"])
