"""Monthly KPIs on a hand-built CRM, every expected value computed by hand (see comments).

Calendar facts used (CN 2026): 1-7 Oct are holidays, Sat 10 Oct and Sun 20 Sep are working
days, 25 Sep (Mid-Autumn) is a holiday; business hours 09:00-18:00.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from revisit.rules.kpis import (
    COMPANY,
    KPI_NAMES,
    compute_monthly,
    open_breaches,
    sla_rows,
    timeliness_obligations,
    write_kpis_csv,
)
from revisit.rules.visits import visit_obligations
from tests.monthly_fixtures import customer, frame, hand_built_frames, ticket, visit

MONTH = "2026-10"


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return hand_built_frames()


@pytest.fixture(scope="module")
def kpis(frames, policy, calendar):
    return compute_monthly(frames, policy, calendar, MONTH)


def value(kpis, dept: str, metric: str, month: str = MONTH) -> float:
    rows = kpis.kpis
    hit = rows[(rows["month"] == month) & (rows["department_id"] == dept)
               & (rows["metric"] == metric)]
    assert len(hit) == 1, (month, dept, metric)
    return float(hit["value"].iloc[0])


EXPECTED = {
    # D1: C1 early (on time), C1 stable (late), C4 periodic (missed), T1 post_resolution
    # (missed); C3 is do-not-call. D2: C2 early, stable and T3 post_resolution, all on time
    "visits_due": {"D1": 4, "D2": 3, COMPANY: 7},
    "visits_on_time": {"D1": 1, "D2": 3, COMPANY: 4},
    "visit_timeliness_rate": {"D1": 1 / 4, "D2": 1.0, COMPANY: 4 / 7},
    "tickets_raised": {"D1": 2, "D2": 1, COMPANY: 3},
    "tickets_resolved": {"D1": 1, "D2": 1, COMPANY: 2},
    "problem_resolution_rate": {"D1": 0.5, "D2": 1.0, COMPANY: 2 / 3},
    # visits x10, tickets closed in October x20
    "avg_satisfaction": {"D1": (80 + 60 + 80) / 3, "D2": (90 + 100 + 60) / 3,
                         COMPANY: (80 + 60 + 90 + 80 + 100 + 60) / 6},
    "complaint_satisfaction": {"D1": 80.0, "D2": math.nan, COMPANY: 80.0},
    # D1: T1 4 met, T2 2 met + 1 breached; D2: T3 3 met + 1 breached, T4 1 met
    "sla_compliance_rate": {"D1": 6 / 7, "D2": 4 / 5, COMPANY: 10 / 12},
    "sla_breaches": {"D1": 1, "D2": 1, COMPANY: 2},
    "median_handling_hours": {"D1": 48.0, "D2": (24 + 672) / 2, COMPANY: 48.0},
    # no ticket passed a step without its stamp
    "sla_unknown": {"D1": 0, "D2": 0, COMPANY: 0},
}


@pytest.mark.parametrize("metric", list(EXPECTED))
def test_october_kpis_match_hand_computed_values(kpis, metric):
    for dept, expected in EXPECTED[metric].items():
        got = value(kpis, dept, metric)
        if math.isnan(expected):
            assert math.isnan(got), (metric, dept, got)
        else:
            assert got == pytest.approx(expected), (metric, dept)


def test_every_kpi_of_every_trend_month_and_department_is_present(kpis):
    assert kpis.months == ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    assert set(EXPECTED) == set(KPI_NAMES)
    assert len(kpis.kpis) == 6 * 3 * len(KPI_NAMES)


def test_recurring_visits_follow_their_anchor_chain(kpis):
    # July: C4's first periodic window met on 3 Jul; C5's was superseded (not due)
    assert value(kpis, "D1", "visits_due", "2026-07") == 1
    assert value(kpis, "D1", "visits_on_time", "2026-07") == 1
    assert value(kpis, "D2", "visits_due", "2026-07") == 0
    assert math.isnan(value(kpis, "D2", "visit_timeliness_rate", "2026-07"))
    # September: C5's restarted window [30 Aug, 11 Sep] was missed
    assert value(kpis, "D2", "visits_due", "2026-09") == 1
    assert value(kpis, "D2", "visits_on_time", "2026-09") == 0
    # September tickets: T4 raised, not resolved by the end of September
    assert value(kpis, "D2", "tickets_raised", "2026-09") == 1
    assert value(kpis, "D2", "problem_resolution_rate", "2026-09") == 0.0


def test_a_customer_without_cooperation_start_counts_in_the_timeliness_kpi_as_on_the_daily_list(
        frames, policy, calendar):
    # Neither customer has a cooperation_start_date: both count from the day their record was
    # created (DESIGN.md), on the daily list and in the KPI alike.
    # C6 (D2, standard), created Wed 1 Jul: 123 days by 1 Nov (>= 90, eligible); periodic
    # window [1 Jul + 90 days = Tue 29 Sep, 10th working day after it = Mon 19 Oct] (30 Sep,
    # 8, 9, Sat 10, 12-16, 19 Oct); never visited.
    # C7 (D1, key), created Fri 10 Apr: key_account window [10 Apr + 182 days = Fri 9 Oct,
    # 10th working day after it = Thu 22 Oct] (Sat 10, 12-16, 19-22 Oct); reached on 21 Oct.
    more = dict(frames)
    more["customers"] = pd.concat([frames["customers"], frame("customers", [
        customer("C6", "D2", "A2", None, created="2026-07-01 10:00"),
        customer("C7", "D1", "A1", None, tier="key", created="2026-04-10 09:00"),
    ])], ignore_index=True)
    more["visits"] = pd.concat([frames["visits"], frame("visits", [
        visit("V8", "C7", "A1", "key_account", "2026-10-21 10:00", sat=9),
    ])], ignore_index=True)
    daily = visit_obligations(more, policy, calendar, dt.date(2026, 10, 9))
    recurring = daily[daily["customer_id"].isin(["C6", "C7"])]
    assert recurring[["customer_id", "kind", "window_start", "window_end", "status"]] \
        .values.tolist() == [
            ["C6", "periodic", pd.Timestamp("2026-09-29"), pd.Timestamp("2026-10-19"), "due"],
            ["C7", "key_account", pd.Timestamp("2026-10-09"), pd.Timestamp("2026-10-22"), "due"],
        ]
    again = compute_monthly(more, policy, calendar, MONTH)
    # October: D1 gains C7's key_account visit (on time), D2 C6's periodic one (not made).
    assert value(again, "D1", "visits_due") == 4 + 1
    assert value(again, "D1", "visits_on_time") == 1 + 1
    assert value(again, "D2", "visits_due") == 3 + 1
    assert value(again, "D2", "visits_on_time") == 3
    assert value(again, "D2", "visit_timeliness_rate") == pytest.approx(3 / 4)
    assert value(again, COMPANY, "visits_due") == 7 + 2
    assert value(again, COMPANY, "visit_timeliness_rate") == pytest.approx(5 / 9)


def test_do_not_call_visits_are_left_out_and_counted(frames, policy, calendar, kpis):
    obligations = timeliness_obligations(frames, policy, calendar, MONTH)
    dnc = obligations[obligations["do_not_call"]]
    assert sorted(dnc["kind"]) == ["early_use", "stable_use"]
    assert kpis.quality["D1"]["do_not_call_customers"] == 1
    assert kpis.quality["D1"]["do_not_call_visits"] == 2
    assert kpis.quality["D2"]["do_not_call_visits"] == 0


def test_top_categories_with_shares(kpis):
    cats = kpis.categories
    d1 = cats[cats["department_id"] == "D1"]
    assert d1[["category", "tickets"]].values.tolist() == [["product_function", 2]]
    assert d1["share"].tolist() == [1.0]
    company = cats[cats["department_id"] == COMPANY]
    assert company["category"].tolist() == ["product_function", "quality_failure"]
    assert company["share"].tolist() == pytest.approx([2 / 3, 1 / 3])


def test_sla_by_priority_and_metric(kpis):
    d2 = kpis.sla_priority[kpis.sla_priority["department_id"] == "D2"]
    rows = {(r.priority, r.metric): (r.met, r.breached) for r in d2.itertuples()}
    assert rows == {("urgent", "first_response"): (0, 1), ("urgent", "plan"): (1, 0),
                    ("urgent", "verification"): (1, 0), ("urgent", "result_feedback"): (1, 0),
                    ("general", "result_feedback"): (1, 0)}
    assert d2["priority"].tolist()[0] == "urgent"  # policy order, not alphabetical


def test_worst_breaches_most_overdue_first_with_masked_phones(kpis):
    company = kpis.breaches[kpis.breaches["department_id"] == COMPANY]
    assert company["ticket_id"].tolist() == ["T2", "T3"]
    assert company["overdue_minutes"].tolist() == [4320, 60]
    assert company["phone_masked"].tolist() == ["138****5678", "138****5678"]
    assert "13812345678" not in kpis.breaches.to_csv()
    assert company["handler_name"].tolist() == ["张伟", "刘洋"]


def test_agent_table(kpis):
    agents = kpis.agents.set_index("agent_id")
    a1, a2 = agents.loc["A1"], agents.loc["A2"]
    assert (a1.visits_made, a1.visits_reached, a1.visits_due, a1.visits_on_time) == (2, 2, 4, 1)
    assert (a1.tickets_handled, a1.sla_breaches) == (1, 1)  # T1 resolved; T2's resolution
    assert a1.avg_visit_satisfaction == pytest.approx(70.0)
    assert (a2.visits_made, a2.visits_due, a2.visits_on_time, a2.tickets_handled) == (3, 3, 3, 2)
    assert a2.visit_timeliness_rate == 1.0


def test_kpis_csv(kpis, tmp_path):
    path = write_kpis_csv(kpis, tmp_path / "reports" / MONTH / "kpis.csv")
    csv = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(csv.columns) == ["month", "department_id", "metric", "value"]
    assert set(csv["month"]) == {MONTH}
    assert len(csv) == 3 * len(KPI_NAMES)
    got = csv.set_index(["department_id", "metric"])["value"]
    assert got[("ALL", "visits_due")] == "7"
    assert got[("D2", "complaint_satisfaction")] == ""  # undefined: no complaint closed
    assert float(got[("ALL", "sla_compliance_rate")]) == pytest.approx(10 / 12, abs=1e-6)


def test_a_later_snapshot_gives_the_same_month(frames, policy, calendar, kpis):
    # A November ticket and visit change nothing in October.
    later = dict(frames)
    extra = frame("tickets", [ticket("T9", "C1", "D1", "A1", "complaint", "urgent", "other",
                                     "2026-11-03 10:00")])
    later["tickets"] = pd.concat([frames["tickets"], extra], ignore_index=True)
    again = compute_monthly(later, policy, calendar, MONTH)
    pd.testing.assert_frame_equal(again.of_month(), kpis.of_month())


def test_ratings_off_their_scale_are_left_out(frames, policy, calendar, kpis):
    typo = dict(frames)
    extra = frame("visits", [visit("V9", "C1", "A1", "periodic", "2026-10-20 10:00", sat=11)])
    typo["visits"] = pd.concat([frames["visits"], extra], ignore_index=True)
    again = compute_monthly(typo, policy, calendar, MONTH)
    assert value(again, "D1", "avg_satisfaction") == pytest.approx(value(kpis, "D1",
                                                                         "avg_satisfaction"))


# ================================================================= the action page's facts
def test_open_visits_per_agent_at_the_end_of_the_month(kpis):
    # At the cut-off (Sun 1 Nov), max_overdue_days 30:
    # - overdue (window passed, still listed): C4 periodic (window ends 20 Oct) and T1's
    #   post_resolution (ends 20 Oct), both A1's (D1);
    # - missed in October (last listed day = window_end + 30 in October): C1's welcome
    #   (window 2-4 Sep, last listed 4 Oct, A1) and C5's periodic (ends 11 Sep, last listed
    #   11 Oct, A2);
    # - not counted: C2's welcome (ends 5 Aug: missed in September, last month's news) and
    #   C3's overdue early_use / stable_use visits (do-not-call).
    rows = kpis.open_visits
    got = {(r.department_id, r.agent_id): (r.name, r.active, r.overdue, r.missed)
           for r in rows.itertuples()}
    assert got == {("D1", "A1"): ("张伟", True, 2, 1), ("D2", "A2"): ("刘洋", True, 0, 1),
                   (COMPANY, "A1"): ("张伟", True, 2, 1), (COMPANY, "A2"): ("刘洋", True, 0, 1)}
    assert kpis.open_counts["D1"] == {"agents": 1, "overdue": 2, "missed": 1, "breaches": 1}
    assert kpis.open_counts["D2"] == {"agents": 1, "overdue": 0, "missed": 1, "breaches": 0}
    assert kpis.open_counts[COMPANY] == {"agents": 2, "overdue": 2, "missed": 2, "breaches": 1}


def test_open_breaches_are_the_ones_not_achieved_at_the_cut_off(kpis):
    # T2's resolution (due 20 Oct 18:00) is still open: 8 working days x 9 h = 4320 min to the
    # cut-off. T3's first response breached too, but was achieved (late): not open.
    open_ = kpis.open_breaches
    d1 = open_[open_["department_id"] == "D1"]
    assert d1[["ticket_id", "metric", "overdue_minutes", "handler_name"]].values.tolist() == [
        ["T2", "resolution", 4320, "张伟"]]
    assert d1["achieved_at"].isna().all()
    assert d1["phone_masked"].tolist() == ["138****5678"]
    assert "13812345678" not in open_.to_csv()
    assert open_[open_["department_id"] == "D2"].empty


def test_action_rows_keep_the_most_overdue_and_count_the_rest(frames, policy, calendar):
    # T5 (D1, general, no handler), raised Mon 26 Oct 09:00 and never answered: first
    # response due 26 Oct 17:00 (8 business hours), 1 h that day + 27-30 Oct 4 x 9 h = 2220
    # min overdue at the cut-off; verification due Tue 27 Oct 18:00, 28-30 Oct = 1620 min;
    # resolution due 2 Nov: not breached yet.
    more = dict(frames)
    more["tickets"] = pd.concat([frames["tickets"], frame("tickets", [
        ticket("T5", "C4", "D1", None, "consultation", "general", "other",
               "2026-10-26 09:00")])], ignore_index=True)
    every = open_breaches(sla_rows(more, policy, calendar, MONTH), more)
    d1 = every[every["department_id"] == "D1"]
    assert d1[["ticket_id", "metric", "overdue_minutes"]].values.tolist() == [
        ["T2", "resolution", 4320], ["T5", "first_response", 2220],
        ["T5", "verification", 1620]]
    one = policy.model_copy(update={"report": policy.report.model_copy(
        update={"action_rows": 1})})
    kpis = compute_monthly(more, one, calendar, MONTH)
    kept = kpis.open_breaches
    assert kept[kept["department_id"] == "D1"]["ticket_id"].tolist() == ["T2"]
    assert kpis.open_counts["D1"]["breaches"] == 3
    assert len(kpis.open_visits[kpis.open_visits["department_id"] == COMPANY]) == 1
    assert kpis.open_counts[COMPANY]["agents"] == 2  # the total is of every agent


def test_obligations_at_the_cut_off_are_computed_once_and_give_the_same_kpi(frames, policy,
                                                                            calendar):
    at_cutoff = visit_obligations(frames, policy, calendar, dt.date(2026, 11, 1))
    pd.testing.assert_frame_equal(
        timeliness_obligations(frames, policy, calendar, MONTH, at_cutoff=at_cutoff),
        timeliness_obligations(frames, policy, calendar, MONTH))


@pytest.fixture(scope="module")
def with_unknown(frames, policy, calendar):
    # T8 (D1, handler A1, urgent) created Mon 10-12 10:00: planned 11:00, resolved 15:00, result
    # fed back Tue 10-13 10:00, but neither first response nor verification stamped. At the
    # cut-off (Nov 1 00:00) the first response (deadline Mon 12:00) and verification (Tue 18:00)
    # would be breached; the record shows both steps passed (plan_at, resolved_at set) ->
    # unknown, neither met nor breached. plan (24 h -> Tue 10:00) and result_feedback (Tue
    # 18:00) met.
    more = dict(frames)
    extra = frame("tickets", [ticket("T8", "C1", "D1", "A1", "complaint", "urgent", "other",
                                     "2026-10-12 10:00", plan="2026-10-12 11:00",
                                     resolved="2026-10-12 15:00",
                                     fed_back="2026-10-13 10:00")])
    more["tickets"] = pd.concat([frames["tickets"], extra], ignore_index=True)
    return compute_monthly(more, policy, calendar, MONTH)


def test_unknown_verdicts_count_as_neither_met_nor_breached(with_unknown):
    # D1 before: 6 met + 1 breached; T8 adds 2 met and 2 unknown -> 8 / (8 + 1).
    assert value(with_unknown, "D1", "sla_compliance_rate") == pytest.approx(8 / 9)
    assert value(with_unknown, COMPANY, "sla_compliance_rate") == pytest.approx(12 / 14)
    assert value(with_unknown, "D1", "sla_breaches") == 1
    assert value(with_unknown, "D1", "sla_unknown") == 2
    assert value(with_unknown, "D2", "sla_unknown") == 0
    assert value(with_unknown, COMPANY, "sla_unknown") == 2


def test_unknown_verdicts_are_not_an_agents_breach_nor_a_worst_breach(with_unknown):
    assert with_unknown.agents.set_index("agent_id").loc["A1"].sla_breaches == 1
    company = with_unknown.breaches[with_unknown.breaches["department_id"] == COMPANY]
    assert company["ticket_id"].tolist() == ["T2", "T3"]
    assert "T8" not in set(with_unknown.open_breaches["ticket_id"])


def test_unknown_verdicts_in_the_data_quality_note_and_kpis_csv(with_unknown, tmp_path):
    # Per metric in the policy's order (first_response before verification).
    assert with_unknown.quality["D1"]["sla_unknown"] == 2
    assert with_unknown.quality["D1"]["sla_unknown_metrics"] == {"first_response": 1,
                                                                  "verification": 1}
    assert with_unknown.quality["D2"]["sla_unknown"] == 0
    assert with_unknown.quality[COMPANY]["sla_unknown_metrics"] == {"first_response": 1,
                                                                     "verification": 1}
    csv = pd.read_csv(write_kpis_csv(with_unknown, tmp_path / "kpis.csv"), dtype=str)
    got = csv.set_index(["department_id", "metric"])["value"]
    assert (got[("D1", "sla_unknown")], got[("D1", "sla_breaches")]) == ("2", "1")
