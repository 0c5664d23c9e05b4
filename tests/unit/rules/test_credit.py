"""Per-agent credit of due visits (revisit.rules.credit, DESIGN.md "Per-agent credit"), on a
hand-built October 2026, every expected number worked out by hand below.

Every customer cooperates since 20 Sep 2026 (too recent for a periodic or key_account visit in
October) and has one order on Mon 12 Oct 10:00: a `welcome` visit due in the window
[Tue 13 Oct, Thu 15 Oct] (1st-3rd working day after the order), so each customer owes exactly
one visit due in October.

Department D1: A1 agent, A2 agent (inactive), A3 agent, S1 and S2 supervisors; A4, an agent
who moved to D2 in the middle of October (the snapshot of the end of the month says D2).
Customers of D1: C1 (owner A1), C2 and C3 (owner A2, inactive), C4 (owner A1, key tier),
C5 (owner A3, key tier). The rule, customers in customer_id order, the least-loaded first and
ties to the smaller agent_id: C1 -> A1 (active owner); C2 -> A1, C3 -> A3 (the inactive owner's
customers to D1's active agents A1, A3); C4 -> S1, C5 -> S2 (key tier: D1's supervisors).
"""

from __future__ import annotations

import pandas as pd
import pytest

from revisit.rules.credit import credited_agents, listed_agents
from revisit.rules.kpis import AGENT_COLUMNS, COMPANY, compute_monthly
from tests.monthly_fixtures import customer, frame, ticket, visit

MONTH = "2026-10"
COOP = "2026-09-20"


def _agent(aid, dept, role="agent", active=1):
    return {"agent_id": aid, "name": f"客服{aid}", "email": f"{aid}@example.com",
            "department_id": dept, "role": role, "active": active, "daily_capacity": None}


def _order(oid, cid):
    return {"order_id": oid, "customer_id": cid, "product": "P", "product_version": "1",
            "amount": 1.0, "ordered_at": "2026-10-12 10:00", "delivered_at": None}


def credit_frames() -> dict[str, pd.DataFrame]:
    owners = {"C1": ("A1", "standard"), "C2": ("A2", "standard"), "C3": ("A2", "standard"),
              "C4": ("A1", "key"), "C5": ("A3", "key")}
    return {
        "departments": frame("departments", [
            {"department_id": d, "name": d, "head_name": "王芳", "head_email": f"{d}@example.com"}
            for d in ("D1", "D2")]),
        "agents": frame("agents", [
            _agent("A1", "D1"), _agent("A2", "D1", active=0), _agent("A3", "D1"),
            _agent("S1", "D1", "supervisor"), _agent("S2", "D1", "supervisor"),
            _agent("A4", "D2")]),
        "customers": frame("customers", [
            customer(cid, "D1", owner, COOP, tier=tier) for cid, (owner, tier) in owners.items()]),
        "orders": frame("orders", [_order(f"O{cid}", cid) for cid in owners]),
        "visits": frame("visits", [
            # C1 reached on 14 Oct by A4 (still in D1 then): on time, rated 9/10
            visit("V1", "C1", "A4", "welcome", "2026-10-14 10:00", "OC1", sat=9),
            # C4 reached on 20 Oct by S1: late
            visit("V2", "C4", "S1", "welcome", "2026-10-20 10:00", "OC4"),
        ]),
        # handled by A4 in D2 and resolved in October, every SLA target met
        "tickets": frame("tickets", [ticket(
            "T1", "C1", "D2", "A4", "consultation", "general", "other", "2026-10-19 10:00",
            first="2026-10-19 11:00", verified="2026-10-19 12:00", resolved="2026-10-20 10:00",
            fed_back="2026-10-20 11:00", closed="2026-10-20 12:00")]),
        "ticket_pauses": frame("ticket_pauses", []),
    }


def listings(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """call_list history rows: (run_date, agent_id, customer_id, reasons)."""
    out = pd.DataFrame(rows, columns=["run_date", "agent_id", "customer_id", "reasons"])
    out["run_date"] = pd.to_datetime(out["run_date"])
    return out.astype({c: "string" for c in ("agent_id", "customer_id", "reasons")})


@pytest.fixture(scope="module")
def frames():
    return credit_frames()


def _table(frames, policy, calendar, history=None) -> pd.DataFrame:
    return compute_monthly(frames, policy, calendar, MONTH, listings=history).agents


def _due(table: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r.department_id, r.agent_id): (r.visits_due, r.visits_on_time)
            for r in table.itertuples()}


def test_without_call_list_history_the_assignment_rules_credit(frames, policy, calendar):
    # C1's visit, made on time by A4, counts for A1: its owner, responsible under the rules
    assert _due(_table(frames, policy, calendar)) == {
        ("D1", "A1"): (2, 1), ("D1", "A2"): (0, 0), ("D1", "A3"): (1, 0),
        ("D1", "S1"): (1, 0), ("D1", "S2"): (1, 0),
        # A4 made C1's visit (on time) but was not responsible for it under the rules; in D1
        # for that visit, in D2 as its member (and T1's handler)
        ("D1", "A4"): (0, 0), ("D2", "A4"): (0, 0)}
    assert _due(_table(frames, policy, calendar, listings([]))) == _due(
        _table(frames, policy, calendar))  # a history without rows of M: the same


def test_an_inactive_owners_visits_go_to_active_colleagues_never_to_the_owner(frames, policy,
                                                                               calendar):
    table = _table(frames, policy, calendar).set_index("agent_id")
    assert table.loc["A2", ["visits_due", "visits_on_time"]].tolist() == [0, 0]
    assert not table.loc["A2", "active"]
    assert pd.isna(table.loc["A2", "visit_timeliness_rate"])  # nothing due: undefined
    due = compute_monthly(frames, policy, calendar, MONTH)
    rows = due.agents
    assert rows.loc[rows["department_id"] == "D1", "visits_due"].sum() == 5  # = D1's KPI
    kpi = due.of_month().set_index(["department_id", "metric"])["value"]
    assert kpi[("D1", "visits_due")] == 5 and kpi[(COMPANY, "visits_due")] == 5


def test_a_key_customer_is_credited_to_a_supervisor_not_to_the_owner(frames, policy, calendar):
    # C4 (owner A1) -> S1 and C5 (owner A3) -> S2: spread over D1's two supervisors
    table = _table(frames, policy, calendar).set_index("agent_id")
    assert table.loc["S1", ["visits_due", "visits_on_time", "visits_made"]].tolist() == [1, 0, 1]
    assert table.loc["S2", "visits_due"] == 1
    assert table.loc["A1", "visits_due"] == 2  # C1 and C2, not C4


def test_a_listed_visit_is_credited_to_the_listing_agent_not_the_owner(frames, policy,
                                                                       calendar):
    # C1 (owner A1) was on A3's list the three days of its window; C4 (key) on S2's
    history = listings([("2026-10-13", "A3", "C1", "welcome"), ("2026-10-14", "A3", "C1",
                                                                "welcome"),
                        ("2026-10-13", "S2", "C4", "key_account;welcome")])
    got = _due(_table(frames, policy, calendar, history))
    assert got[("D1", "A3")] == (2, 1)  # C1 (on time: V1 on 14 Oct) and C3 by the rule
    assert got[("D1", "A1")] == (1, 0)  # C2 by the rule only
    assert got[("D1", "S2")] == (2, 0)  # C4 from the list, C5 by the rule
    assert got[("D1", "S1")] == (0, 0)


def test_the_last_listing_on_or_before_the_windows_end_wins(frames):
    # C1's window ends 15 Oct: A1 listed it on the 13th, A3 on the 15th, and once overdue S1
    # on the 16th (the colleague who inherited it late is not credited); C2 was only listed
    # after its window (the earliest of those wins); C3 was listed for another reason only.
    due = pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "kind": "welcome",
                        "window_end": pd.to_datetime(["2026-10-15"] * 3)})
    history = listings([("2026-10-13", "A1", "C1", "welcome"),
                        ("2026-10-15", "A3", "C1", "welcome"),
                        ("2026-10-16", "S1", "C1", "welcome"),
                        ("2026-10-19", "S2", "C2", "welcome"),
                        ("2026-10-16", "A1", "C2", "post_resolution;welcome"),
                        ("2026-10-14", "A1", "C3", "post_resolution")])
    assert listed_agents(due, history).tolist() == ["A3", "A1", pd.NA]


def test_an_agent_who_moved_department_keeps_the_listed_credit_under_the_visits_department(
        frames, policy, calendar):
    # A4 had C1 (D1) on their list on 13-15 Oct, before moving to D2: credited under D1 (the
    # customer's department), with the visit they made there; under D2 (their department at
    # the end of October) with the ticket they handled there
    history = listings([(d, "A4", "C1", "welcome")
                        for d in ("2026-10-13", "2026-10-14", "2026-10-15")])
    table = _table(frames, policy, calendar, history).set_index(["department_id", "agent_id"])
    d1, d2 = table.loc[("D1", "A4")], table.loc[("D2", "A4")]
    assert (d1.visits_due, d1.visits_on_time, d1.visits_made, d1.visits_reached) == (1, 1, 1, 1)
    assert d1.avg_visit_satisfaction == pytest.approx(90.0)
    assert (d1.tickets_handled, d1.home_department_id) == (0, "D2")
    assert (d2.visits_due, d2.visits_made, d2.tickets_handled, d2.sla_breaches) == (0, 0, 1, 0)
    assert table.loc[("D1", "A1"), "visits_due"] == 1  # C2 only: C1 was A4's


def test_the_agent_table_has_the_contract_columns_first(frames, policy, calendar):
    table = _table(frames, policy, calendar)
    assert list(table.columns[:len(AGENT_COLUMNS)]) == list(AGENT_COLUMNS)
    assert set(table["month"]) == {MONTH}


def test_credited_agents_fall_back_per_customer(frames, policy):
    # two visits of one customer: one agent for both (the rule picks per customer)
    due = pd.DataFrame({"customer_id": ["C3", "C2", "C3"], "kind": ["welcome"] * 3,
                        "window_end": pd.to_datetime(["2026-10-15"] * 3)})
    assert credited_agents(due, frames, policy).tolist() == ["A3", "A1", "A3"]


def test_the_rule_picks_the_same_from_the_customers_rule_columns_only(frames, policy):
    # the monthly merge reads just RULE_CUSTOMER_COLUMNS of the due customers
    from revisit.rules.calllist import RULE_CUSTOMER_COLUMNS, rule_agents

    # in the given order: C5 (key) -> S1, the less-loaded supervisor (a tie: the smaller id);
    # C1 -> A1, its active owner; C4 (key) -> S2; C3 (inactive owner) -> A1 of the pool A1,
    # A3 (a tie); C2 -> A3, the less loaded; C9: no such customer, nobody
    ids = pd.Series(["C5", "C1", "C4", "C3", "C2", "C9"])
    narrow = {**frames, "customers": frames["customers"].loc[:, list(RULE_CUSTOMER_COLUMNS)]}
    assert rule_agents(ids, narrow, policy).tolist() == \
        rule_agents(ids, frames, policy).tolist() == ["S1", "A1", "S2", "A1", "A3", None]
