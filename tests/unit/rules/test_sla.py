"""The SLA engine, proved by hand against the default policy.

Each test has its arithmetic in a comment. Default policy (include/config/policy.yaml):
  urgent     first_response 2 business_hours, plan 24 hours (wall clock)
  important  first_response 4 business_hours, plan 3 working_days
  general    first_response 8 business_hours, resolution 5 working_days
  all        verification 1 working_days (from created_at),
             result_feedback 1 working_days (from resolved_at); at_risk_share 0.75
Business hours 09:00-18:00 (9 h a day), Asia/Shanghai.

Calendar facts (CN 2026): Wed 09-30 working; Thu 10-01 .. Wed 10-07 closed (National Day);
Thu 10-08, Fri 10-09 working; Sat 10-10 adjusted working day; Sun 10-11 closed;
Mon 10-12 .. Fri 10-16 working.

Unless a test says otherwise the run is for D = Tue 2026-10-13, so the cut-off is
Tue 10-13 00:00 and the previous run's cut-off Mon 10-12 00:00.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revisit.config.policy import Policy
from revisit.config.schema import TABLES
from revisit.io.extract import PARSE_ERRORS, apply_cutoff
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.sla import (
    DIGEST_COLUMNS,
    STATUS_COLUMNS,
    breach_digest,
    digest_parties,
    new_breaches,
    sla_status,
)
from tests.unit.rules.calendar_reference import ReferenceCalendar

TZ = "Asia/Shanghai"
CUTOFF = pd.Timestamp("2026-10-13 00:00")
PREVIOUS = pd.Timestamp("2026-10-12 00:00")
CONTRACT = ["ticket_id", "customer_id", "department_id", "priority", "metric", "started_at",
            "deadline", "achieved_at", "status", "overdue_minutes", "due_today", "target",
            "elapsed_minutes", "paused_minutes", "policy_version"]


def T(text: str) -> pd.Timestamp:  # noqa: N802 - reads like a literal
    """A naive business-local timestamp, as in a snapshot."""
    return pd.Timestamp(text)


def L(text: str) -> pd.Timestamp:  # noqa: N802
    """The tz-aware timestamp sla_status answers with."""
    return pd.Timestamp(text, tz=TZ)


def ticket(ticket_id: str, priority: str, created_at: str, **stamps: str | None) -> dict:
    """One tickets row; customer C-<id>, department D1 unless given."""
    row: dict = {"ticket_id": ticket_id, "customer_id": f"C-{ticket_id}", "department_id": "D1",
                 "type": "complaint", "priority": priority, "status": "in_progress",
                 "created_at": created_at}
    row.update(stamps)
    return row


def _stamps(values: list) -> pd.DatetimeIndex:
    return pd.to_datetime(values, format="mixed")


def tickets_frame(*rows: dict) -> pd.DataFrame:
    """Snapshot-shaped tickets: every canonical column, naive local datetime64[us]."""
    data: dict[str, pd.Series] = {}
    for name, kind in TABLES["tickets"].columns.items():
        values = [row.get(name) for row in rows]
        if kind == "datetime":
            data[name] = pd.Series(_stamps(values), dtype="datetime64[us]")
        elif kind == "int":
            data[name] = pd.Series(values, dtype="Int64")
        else:
            data[name] = pd.Series(values, dtype="string")
    data[PARSE_ERRORS] = pd.Series([None] * len(rows), dtype="string")
    return pd.DataFrame(data)


def pauses_frame(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    """ticket_pauses rows (ticket_id, paused_at, resumed_at or None = still paused)."""
    return pd.DataFrame({
        "ticket_id": pd.Series([r[0] for r in rows], dtype="string"),
        "paused_at": pd.Series(_stamps([r[1] for r in rows]), dtype="datetime64[us]"),
        "resumed_at": pd.Series(_stamps([r[2] for r in rows]), dtype="datetime64[us]"),
        PARSE_ERRORS: pd.Series([None] * len(rows), dtype="string"),
    })


Run = Callable[..., pd.DataFrame]


@pytest.fixture
def run(policy: Policy, calendar: BusinessCalendar) -> Run:
    def _run(*rows: dict, pauses: pd.DataFrame | None = None,
             cutoff: pd.Timestamp = CUTOFF, use_policy: Policy | None = None) -> pd.DataFrame:
        return sla_status(tickets_frame(*rows), pauses, use_policy or policy, calendar, cutoff)
    return _run


def one(out: pd.DataFrame, ticket_id: str, metric: str) -> pd.Series:
    hit = out[(out["ticket_id"] == ticket_id) & (out["metric"] == metric)]
    assert len(hit) == 1, f"expected one row for {ticket_id}/{metric}, got {len(hit)}"
    return hit.iloc[0]


def metrics_of(out: pd.DataFrame, ticket_id: str) -> list[str]:
    return out.loc[out["ticket_id"] == ticket_id, "metric"].tolist()


# ===================================================================== contract shape
def test_output_columns_are_exactly_the_contract(run) -> None:
    out = run(ticket("T1", "urgent", "2026-10-08 10:00"))
    assert list(out.columns) == CONTRACT == list(STATUS_COLUMNS)
    for name in ("started_at", "deadline", "achieved_at"):
        assert isinstance(out[name].dtype, pd.DatetimeTZDtype)
        assert str(out[name].dt.tz) == TZ
    for name in ("overdue_minutes", "elapsed_minutes", "paused_minutes"):
        assert out[name].dtype == np.int64
    assert out["due_today"].dtype == bool
    assert set(out["status"]) <= {"met", "breached", "at_risk", "pending", "unknown"}


def test_no_tickets_give_an_empty_frame_with_the_contract_columns(run) -> None:
    out = run()
    assert out.empty
    assert list(out.columns) == CONTRACT
    assert isinstance(out["deadline"].dtype, pd.DatetimeTZDtype)


# ===================================================================== deadlines per target
@pytest.mark.parametrize(("created", "deadline"), [
    # Thu 10:00 + 2 h = Thu 12:00.
    ("2026-10-08 10:00", "2026-10-08 12:00"),
    # Fri 17:00: 1 h Fri, then 1 h on the adjusted working Saturday -> Sat 10-10 10:00.
    ("2026-10-09 17:00", "2026-10-10 10:00"),
    # Wed 09-30 17:30: 0.5 h Wed, National Day closed, 1.5 h Thu 10-08 -> 10:30.
    ("2026-09-30 17:30", "2026-10-08 10:30"),
])
def test_urgent_first_response_is_two_business_hours(run, created, deadline) -> None:
    row = one(run(ticket("T1", "urgent", created)), "T1", "first_response")
    assert row["started_at"] == L(created)
    assert row["deadline"] == L(deadline)


def test_important_first_response_is_four_business_hours(run) -> None:
    # Thu 10-08 16:00: 2 h Thu (16-18) + 2 h Fri (09-11) -> Fri 10-09 11:00.
    out = run(ticket("T1", "important", "2026-10-08 16:00"))
    assert one(out, "T1", "first_response")["deadline"] == L("2026-10-09 11:00")


@pytest.mark.parametrize(("created", "deadline"), [
    # Sat 10-10 (adjusted working day) 10:00 + 8 h = Sat 18:00.
    ("2026-10-10 10:00", "2026-10-10 18:00"),
    # Fri 10-09 12:00: 6 h Fri + 2 h Sat -> Sat 10-10 11:00.
    ("2026-10-09 12:00", "2026-10-10 11:00"),
])
def test_general_first_response_is_eight_business_hours(run, created, deadline) -> None:
    out = run(ticket("T1", "general", created))
    assert one(out, "T1", "first_response")["deadline"] == L(deadline)


def test_urgent_plan_is_24_wall_clock_hours_across_a_holiday(run) -> None:
    # Wed 09-30 15:00 + 24 h = Thu 10-01 15:00, National Day or not.
    out = run(ticket("T1", "urgent", "2026-09-30 15:00"))
    assert one(out, "T1", "plan")["deadline"] == L("2026-10-01 15:00")


@pytest.mark.parametrize(("created", "deadline"), [
    # Fri 10-09 11:00: Sat 10 (1), Mon 12 (2), Tue 13 (3) -> Tue 10-13 18:00 (DESIGN.md example).
    ("2026-10-09 11:00", "2026-10-13 18:00"),
    # Wed 09-30 10:00: Thu 10-08 (1), Fri 10-09 (2), Sat 10-10 (3) -> Sat 18:00.
    ("2026-09-30 10:00", "2026-10-10 18:00"),
])
def test_important_plan_is_three_working_days(run, created, deadline) -> None:
    out = run(ticket("T1", "important", created))
    assert one(out, "T1", "plan")["deadline"] == L(deadline)


def test_general_resolution_is_five_working_days_across_national_day(run) -> None:
    # Tue 09-29 14:00: Wed 09-30 (1), Thu 10-08 (2), Fri 10-09 (3), Sat 10-10 (4),
    # Mon 10-12 (5) -> Mon 10-12 18:00.
    out = run(ticket("T1", "general", "2026-09-29 14:00"))
    assert one(out, "T1", "resolution")["deadline"] == L("2026-10-12 18:00")


@pytest.mark.parametrize("priority", ["urgent", "important", "general"])
def test_verification_is_one_working_day_for_every_priority(run, priority) -> None:
    # Fri 10-09 11:00 + 1 working day = closing of Sat 10-10 (adjusted working day) = 18:00.
    out = run(ticket("T1", priority, "2026-10-09 11:00"))
    assert one(out, "T1", "verification")["deadline"] == L("2026-10-10 18:00")


@pytest.mark.parametrize("priority", ["urgent", "important", "general"])
def test_result_feedback_is_one_working_day_from_resolved_at(run, priority) -> None:
    # Resolved Sat 10-10 16:00; the next working day after Sat is Mon 10-12 (Sun closed)
    # -> Mon 10-12 18:00, whatever created_at was.
    out = run(ticket("T1", priority, "2026-09-28 10:00", resolved_at="2026-10-10 16:00"))
    row = one(out, "T1", "result_feedback")
    assert row["started_at"] == L("2026-10-10 16:00")
    assert row["deadline"] == L("2026-10-12 18:00")


def test_each_priority_has_exactly_its_policy_metrics(run) -> None:
    # Every stamp set: urgent and important have no resolution target, general has no plan.
    stamps = {"first_response_at": "2026-10-08 10:30", "plan_at": "2026-10-08 11:00",
              "verified_at": "2026-10-08 11:30", "resolved_at": "2026-10-08 12:00",
              "result_fed_back_at": "2026-10-08 12:30"}
    out = run(ticket("U", "urgent", "2026-10-08 10:00", **stamps),
              ticket("I", "important", "2026-10-08 10:00", **stamps),
              ticket("G", "general", "2026-10-08 10:00", **stamps))
    assert metrics_of(out, "U") == ["first_response", "plan", "verification", "result_feedback"]
    assert metrics_of(out, "I") == ["first_response", "plan", "verification", "result_feedback"]
    assert metrics_of(out, "G") == ["first_response", "resolution", "verification",
                                    "result_feedback"]
    assert set(out["status"]) == {"met"}


# ===================================================================== odd creation times
@pytest.mark.parametrize(("created", "first_response", "verification"), [
    # Before opening: counts from Thu 09:00 -> 11:00; verification: Fri 10-09 18:00.
    ("2026-10-08 07:30", "2026-10-08 11:00", "2026-10-09 18:00"),
    # On a holiday (Sat 10-03): counts from Thu 10-08 09:00 -> 11:00; the first working day
    # after 10-03 is Thu 10-08 -> 18:00.
    ("2026-10-03 10:00", "2026-10-08 11:00", "2026-10-08 18:00"),
    # Exactly at closing Thu 18:00: no business time left Thu -> Fri 09:00 + 2 h = 11:00;
    # verification: the day of the event (Thu) is not counted -> Fri 18:00.
    ("2026-10-08 18:00", "2026-10-09 11:00", "2026-10-09 18:00"),
    # Late evening Thu 23:00: same as closing.
    ("2026-10-08 23:00", "2026-10-09 11:00", "2026-10-09 18:00"),
    # Sunday 10-11 (closed): Mon 10-12 09:00 + 2 h; verification: the first working day
    # after Sunday is Mon 10-12 -> 18:00 (9 business hours, like any other day).
    ("2026-10-11 12:00", "2026-10-12 11:00", "2026-10-12 18:00"),
])
def test_ticket_created_outside_business_hours(run, created, first_response,
                                               verification) -> None:
    out = run(ticket("T1", "urgent", created))
    assert one(out, "T1", "first_response")["deadline"] == L(first_response)
    assert one(out, "T1", "verification")["deadline"] == L(verification)


# ===================================================================== met / breached
def test_achieved_exactly_at_the_deadline_is_met(run) -> None:
    # Thu 10:00 + 2 h = 12:00; answered at 12:00 -> met, 0 overdue minutes.
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", first_response_at="2026-10-08 12:00"))
    row = one(out, "T1", "first_response")
    assert (row["status"], row["overdue_minutes"]) == ("met", 0)
    assert row["achieved_at"] == L("2026-10-08 12:00")


def test_achieved_late_is_breached_with_overdue_on_the_business_clock(run) -> None:
    # Deadline Thu 12:00, answered Fri 10:00: Thu 12:00-18:00 = 360 min + Fri 09:00-10:00
    # = 60 min -> 420 (not the 22 wall-clock hours = 1320 min).
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", first_response_at="2026-10-09 10:00"))
    row = one(out, "T1", "first_response")
    assert (row["status"], row["overdue_minutes"]) == ("breached", 420)


def test_achieved_late_on_a_wall_clock_target_counts_wall_clock_overdue(run) -> None:
    # Plan 24 hours: Thu 10-08 10:00 -> Fri 10-09 10:00; planned Sat 10-10 08:30 -> 22.5 h
    # = 1350 min (on the business clock it would be Fri 10-18 + 0 Sat = 480).
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", plan_at="2026-10-10 08:30"))
    row = one(out, "T1", "plan")
    assert row["deadline"] == L("2026-10-09 10:00")
    assert (row["status"], row["overdue_minutes"]) == ("breached", 1350)


def test_achieved_after_closing_on_the_deadline_day_is_breached_with_zero_overdue(run) -> None:
    # General first response Thu 10:00 + 8 h = Thu 18:00; answered Thu 19:30: after the
    # deadline, so breached, but no business time has passed since 18:00 -> 0 minutes.
    out = run(ticket("T1", "general", "2026-10-08 10:00", first_response_at="2026-10-08 19:30"))
    row = one(out, "T1", "first_response")
    assert (row["status"], row["overdue_minutes"]) == ("breached", 0)


@pytest.mark.parametrize(("answered", "minutes"), [
    ("2026-10-08 12:02:30", 3),  # 2.5 min rounds half up to 3
    ("2026-10-08 12:02:29", 2),  # 2.48 min rounds down
    ("2026-10-08 12:00:00.000001", 0),  # a microsecond late is breached, 0 whole minutes
])
def test_overdue_minutes_round_half_up(run, answered, minutes) -> None:
    # Deadline Thu 12:00 (urgent, created Thu 10:00).
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", first_response_at=answered))
    row = one(out, "T1", "first_response")
    assert (row["status"], row["overdue_minutes"]) == ("breached", minutes)


def test_not_achieved_with_deadline_before_cutoff_is_breached_overdue_to_the_cutoff(run) -> None:
    # General first response Mon 10-12 09:00 + 8 h = Mon 17:00; unanswered at Tue 00:00:
    # overdue = Mon 17:00-18:00 = 60 business minutes.
    # Urgent plan Sun 10-11 20:00 + 24 h = Mon 20:00; overdue to Tue 00:00 = 4 wall hours = 240.
    out = run(ticket("G", "general", "2026-10-12 09:00"),
              ticket("U", "urgent", "2026-10-11 20:00"))
    g = one(out, "G", "first_response")
    assert (g["deadline"], g["status"], g["overdue_minutes"]) == (
        L("2026-10-12 17:00"), "breached", 60)
    assert pd.isna(g["achieved_at"])
    u = one(out, "U", "plan")
    assert (u["deadline"], u["status"], u["overdue_minutes"]) == (
        L("2026-10-12 20:00"), "breached", 240)


def test_deadline_exactly_at_the_cutoff_is_not_yet_breached(run) -> None:
    # Urgent plan Mon 10-12 00:00 + 24 h = Tue 10-13 00:00 = the cut-off: not before it, so not
    # breached; 24 of 24 hours used -> at_risk.
    out = run(ticket("T1", "urgent", "2026-10-12 00:00"))
    row = one(out, "T1", "plan")
    assert row["deadline"] == L("2026-10-13 00:00")
    assert (row["status"], row["overdue_minutes"]) == ("at_risk", 0)


# ===================================================================== at risk / pending
def test_at_risk_at_exactly_75_percent_and_pending_just_below(run) -> None:
    # General first response (8 business hours) created Mon 10-12 12:00: deadline Tue 11:00;
    # used at Tue 00:00 = Mon 12:00-18:00 = 6 h = 75 % -> at_risk.
    # Created one second later: used 5:59:59 < 6 h -> pending.
    out = run(ticket("A", "general", "2026-10-12 12:00"),
              ticket("P", "general", "2026-10-12 12:00:01"))
    assert one(out, "A", "first_response")["deadline"] == L("2026-10-13 11:00")
    assert one(out, "A", "first_response")["status"] == "at_risk"
    assert one(out, "P", "first_response")["status"] == "pending"


def test_at_risk_on_a_wall_clock_target(run) -> None:
    # Urgent plan Mon 10-12 06:00 + 24 h = Tue 06:00; used at Tue 00:00 = 18 h = 75 % -> at_risk.
    # Created Mon 06:01: 17:59 used < 18 h -> pending.
    out = run(ticket("A", "urgent", "2026-10-12 06:00"), ticket("P", "urgent", "2026-10-12 06:01"))
    assert one(out, "A", "plan")["status"] == "at_risk"
    assert one(out, "P", "plan")["status"] == "pending"


def test_at_risk_on_a_working_days_target_uses_business_time(run) -> None:
    # Run for D = Fri 10-16 (cut-off Fri 00:00). General resolution (5 working days):
    # created Sat 10-10 09:00 -> Mon 12 (1) .. Fri 16 (5), deadline Fri 10-16 18:00; total
    # business time = Sat 9 h + Mon..Fri 45 h = 54 h; used = Sat + Mon..Thu = 45 h = 83 %
    # -> at_risk. Created Mon 10-12 09:00 -> deadline Mon 10-19 18:00, total 54 h, used
    # Mon..Thu = 36 h = 67 % -> pending.
    cutoff = T("2026-10-16 00:00")
    out = run(ticket("A", "general", "2026-10-10 09:00"),
              ticket("P", "general", "2026-10-12 09:00"), cutoff=cutoff)
    assert one(out, "A", "resolution")["deadline"] == L("2026-10-16 18:00")
    assert one(out, "A", "resolution")["status"] == "at_risk"
    assert one(out, "P", "resolution")["deadline"] == L("2026-10-19 18:00")
    assert one(out, "P", "resolution")["status"] == "pending"


def test_at_risk_share_comes_from_the_policy(run, policy: Policy) -> None:
    # General first response created Mon 10-12 14:00: used 4 h of 8 h = 50 % at Tue 00:00:
    # pending with the default 0.75, at_risk with a policy saying 0.5.
    half = policy.model_copy(update={"sla": policy.sla.model_copy(update={"at_risk_share": 0.5})})
    row = ticket("T1", "general", "2026-10-12 14:00")
    assert one(run(row), "T1", "first_response")["status"] == "pending"
    assert one(run(row, use_policy=half), "T1", "first_response")["status"] == "at_risk"


# ===================================================================== which rows exist
def test_metric_whose_start_event_has_not_happened_has_no_row(run) -> None:
    # result_feedback starts at resolved_at; an unresolved ticket has no such row.
    out = run(ticket("T1", "general", "2026-10-12 10:00"))
    assert metrics_of(out, "T1") == ["first_response", "resolution", "verification"]


def test_priority_without_a_target_for_a_metric_has_no_row(run) -> None:
    # urgent has no resolution target, general no plan target, even with the stamps set.
    out = run(ticket("U", "urgent", "2026-10-12 10:00", resolved_at="2026-10-12 11:00"),
              ticket("G", "general", "2026-10-12 10:00", plan_at="2026-10-12 11:00"))
    assert "resolution" not in metrics_of(out, "U")
    assert "plan" not in metrics_of(out, "G")


def test_rows_without_created_at_or_priority_have_no_rows(run) -> None:
    # The quality gate removes them; if one slips through it is skipped, not a crash.
    out = run(ticket("N", "urgent", None), ticket("Q", None, "2026-10-12 10:00"),
              ticket("K", "urgent", "2026-10-12 10:00"))
    assert set(out["ticket_id"]) == {"K"}


# ===================================================================== pauses
def test_closed_pause_moves_the_deadline(run) -> None:
    # Urgent Mon 10-12 09:00 + 2 h = 11:00; paused 09:30-10:30 (1 h) -> 12:00. Unanswered at
    # Tue 00:00 -> breached by Mon 12:00-18:00 = 360 min.
    # Verification: Tue 10-13 18:00 + 1 h -> Wed 10-14 10:00.
    out = run(ticket("T1", "urgent", "2026-10-12 09:00"),
              pauses=pauses_frame(("T1", "2026-10-12 09:30", "2026-10-12 10:30")))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"], row["overdue_minutes"]) == (
        L("2026-10-12 12:00"), "breached", 360)
    assert one(out, "T1", "verification")["deadline"] == L("2026-10-14 10:00")


def test_pause_does_not_move_a_wall_clock_target(run) -> None:
    # DESIGN: paused time is excluded from business-time targets only. Urgent plan = 24 hours
    # wall clock: Mon 10-12 09:00 + 24 h = Tue 10-13 09:00 whatever the pause; first response
    # (business hours) on the same ticket is still moved by it (11:00 -> 12:00).
    out = run(ticket("T1", "urgent", "2026-10-12 09:00"),
              pauses=pauses_frame(("T1", "2026-10-12 09:30", "2026-10-12 10:30")),
              cutoff=pd.Timestamp("2026-10-14 00:00"))
    assert one(out, "T1", "plan")["deadline"] == L("2026-10-13 09:00")
    assert one(out, "T1", "first_response")["deadline"] == L("2026-10-12 12:00")


def test_paused_time_is_not_used_time(run) -> None:
    # General first response Mon 12:00 (75 % used at Tue 00:00 without pauses, see above);
    # paused 13:00-14:00 -> deadline Tue 12:00, used 6 h - 1 h = 5 h = 62.5 % -> pending.
    out = run(ticket("T1", "general", "2026-10-12 12:00"),
              pauses=pauses_frame(("T1", "2026-10-12 13:00", "2026-10-12 14:00")))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"]) == (L("2026-10-13 12:00"), "pending")


def test_open_pause_counts_until_the_cutoff(run) -> None:
    # General first response Mon 12:00, paused from Mon 16:00, still paused at Tue 00:00:
    # paused business time 16:00-18:00 = 2 h -> deadline Tue 11:00 + 2 h = 13:00; used 4 h
    # of 8 -> pending.
    out = run(ticket("T1", "general", "2026-10-12 12:00"),
              pauses=pauses_frame(("T1", "2026-10-12 16:00", None)))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"]) == (L("2026-10-13 13:00"), "pending")


def test_pause_resumed_after_the_cutoff_is_open_as_of_the_cutoff(run) -> None:
    # Same ticket; resumed Tue 10:00 (after the cut-off): cut by apply_cutoff or not, it is
    # open at the cut-off, so the answer equals the open-pause case.
    pauses = pauses_frame(("T1", "2026-10-12 16:00", "2026-10-13 10:00"),
                          ("T1", "2026-10-13 11:00", "2026-10-13 12:00"))  # begins after it
    rows = ticket("T1", "general", "2026-10-12 12:00")
    cut = apply_cutoff(TABLES["ticket_pauses"], pauses, CUTOFF)
    assert len(cut) == 1 and pd.isna(cut["resumed_at"].iloc[0])
    for frame in (pauses, cut):
        assert one(run(rows, pauses=frame), "T1", "first_response")["deadline"] == L(
            "2026-10-13 13:00")


def test_pause_before_a_metric_starts_does_not_count_for_it(run) -> None:
    # General ticket created Thu 10-08 09:00, paused Thu 10:00 -> Fri 10:00 (business time
    # Thu 10-18 = 8 h + Fri 09-10 = 1 h = 9 h), another pause Fri 11:00-13:00, resolved
    # Fri 12:00.
    # verification (from created): Fri 10-09 18:00 + 9 h + 2 h -> Sat 18:00 + 2 h
    #   -> Mon 10-12 11:00.
    # result_feedback (from resolved Fri 12:00): 1 working day -> Sat 10-10 18:00; the first
    #   pause is over before the start, the second counts only from 12:00: 1 h -> Mon 10:00.
    out = run(ticket("T1", "general", "2026-10-08 09:00", resolved_at="2026-10-09 12:00"),
              pauses=pauses_frame(("T1", "2026-10-08 10:00", "2026-10-09 10:00"),
                                  ("T1", "2026-10-09 11:00", "2026-10-09 13:00")))
    assert one(out, "T1", "verification")["deadline"] == L("2026-10-12 11:00")
    assert one(out, "T1", "result_feedback")["deadline"] == L("2026-10-12 10:00")


def test_pause_after_the_metric_was_achieved_does_not_move_its_deadline(run) -> None:
    # Urgent Mon 10-12 09:00, answered 10:00 (deadline 11:00 -> met), then paused 10:30-11:30.
    # first_response keeps 11:00; verification (not achieved) moves Tue 18:00 + 1 h -> Wed 10:00.
    out = run(ticket("T1", "urgent", "2026-10-12 09:00", first_response_at="2026-10-12 10:00"),
              pauses=pauses_frame(("T1", "2026-10-12 10:30", "2026-10-12 11:30")))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"]) == (L("2026-10-12 11:00"), "met")
    assert one(out, "T1", "verification")["deadline"] == L("2026-10-14 10:00")


def test_pause_after_the_deadline_is_not_counted_as_overdue(run) -> None:
    # Deadline Thu 12:00, answered Fri 10:00 (420 business minutes late, see above); paused
    # Thu 14:00-15:00 -> 420 - 60 = 360. The deadline itself stays (the pause began after it).
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", first_response_at="2026-10-09 10:00"),
              pauses=pauses_frame(("T1", "2026-10-08 14:00", "2026-10-08 15:00")))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["overdue_minutes"]) == (L("2026-10-08 12:00"), 360)


def test_pauses_of_other_tickets_and_after_the_cutoff_are_ignored(run) -> None:
    # T1's pause begins Tue 10-13 09:00, after the cut-off; X is not a ticket here.
    out = run(ticket("T1", "urgent", "2026-10-12 09:00"),
              pauses=pauses_frame(("T1", "2026-10-13 09:00", None),
                                  ("X", "2026-10-12 09:00", "2026-10-12 12:00")))
    assert one(out, "T1", "first_response")["deadline"] == L("2026-10-12 11:00")


def test_no_pauses_none_and_empty_frame_agree(run) -> None:
    rows = (ticket("T1", "urgent", "2026-10-12 09:00"), ticket("T2", "general", "2026-10-09 09:00"))
    base = run(*rows)
    pd.testing.assert_frame_equal(run(*rows, pauses=pauses_frame()), base)
    pd.testing.assert_frame_equal(run(*rows, pauses=None), base)


# ===================================================================== as of the cut-off
def test_achieved_after_the_cutoff_is_not_achieved(run, policy, calendar) -> None:
    # Urgent Mon 10-12 12:00 -> deadline Mon 14:00; answered Tue 10-13 08:00, after the cut-off
    # Tue 00:00: as of the cut-off it is unanswered -> breached, overdue Mon 14-18 = 240.
    raw = tickets_frame(ticket("T1", "urgent", "2026-10-12 12:00",
                               first_response_at="2026-10-13 08:00"))
    cut = apply_cutoff(TABLES["tickets"], raw, CUTOFF)
    assert pd.isna(cut["first_response_at"].iloc[0])
    for frame in (cut, raw):  # the engine does not rely on the caller having cut
        row = one(sla_status(frame, None, policy, calendar, CUTOFF), "T1", "first_response")
        assert (row["status"], row["overdue_minutes"]) == ("breached", 240)
        assert pd.isna(row["achieved_at"])


def test_start_event_after_the_cutoff_has_no_row(run) -> None:
    # Resolved Tue 10-13 09:00 (after the cut-off): no result_feedback row; created after the
    # cut-off: no rows at all.
    out = run(ticket("T1", "general", "2026-10-12 10:00", resolved_at="2026-10-13 09:00"),
              ticket("T2", "general", "2026-10-13 08:00"))
    assert "result_feedback" not in metrics_of(out, "T1")
    assert "resolution" in metrics_of(out, "T1")
    assert metrics_of(out, "T2") == []


def test_tz_aware_cutoff_means_the_same_instant(run) -> None:
    rows = (ticket("T1", "general", "2026-10-12 12:00"), ticket("T2", "urgent", "2026-10-12 06:00"))
    base = run(*rows)
    pd.testing.assert_frame_equal(run(*rows, cutoff=L("2026-10-13 00:00")), base)
    pd.testing.assert_frame_equal(run(*rows, cutoff=pd.Timestamp("2026-10-12 16:00", tz="UTC")),
                                  base)


# ===================================================================== order, determinism
def test_rows_sorted_by_ticket_then_policy_metric_order_whatever_the_input_order(run) -> None:
    created = ["2026-10-08 10:00", "2026-10-09 11:00", "2026-10-10 12:00", "2026-10-08 13:00",
               "2026-10-09 14:00"]
    rows = [ticket(f"T{i}", p, c, resolved_at="2026-10-12 10:00") for i, (p, c) in enumerate(
        zip(["general", "urgent", "important", "general", "urgent"], created, strict=True))]
    out = run(*rows)
    order = {m: i for i, m in enumerate(["first_response", "plan", "resolution", "verification",
                                         "result_feedback"])}
    keys = list(zip(out["ticket_id"], out["metric"].map(order), strict=True))
    assert keys == sorted(keys)
    pd.testing.assert_frame_equal(run(*reversed(rows)), out)
    assert out.index.equals(pd.RangeIndex(len(out)))


def test_duplicate_ticket_ids_are_refused(run) -> None:
    with pytest.raises(ValueError, match="T1"):
        run(ticket("T1", "urgent", "2026-10-12 09:00"), ticket("T1", "general", "2026-10-12 09:00"))


# ===================================================================== new breaches
@pytest.fixture
def breach_rows() -> list[dict]:
    return [
        # deadline Mon 11:00 (in [Mon 00:00, Tue 00:00)), unanswered -> new.
        ticket("NEW", "urgent", "2026-10-12 09:00"),
        # deadline Fri 10-09 11:00, unanswered: reported by an earlier run -> not new.
        ticket("OLD", "urgent", "2026-10-09 09:00", plan_at="2026-10-09 10:00"),
        # deadline Fri 11:00, answered late on Mon 10:00: that breach was reported when the
        # deadline passed (run of Sat 10-10) -> not new again.
        ticket("OLDLATE", "urgent", "2026-10-09 09:00", first_response_at="2026-10-12 10:00",
               plan_at="2026-10-09 10:00"),
        # deadline Mon 11:00, answered late Mon 15:00 -> new.
        ticket("LATE", "urgent", "2026-10-12 09:00", first_response_at="2026-10-12 15:00"),
        # plan deadline Sun 10-11 00:00 + 24 h = Mon 00:00 = the previous cut-off -> new
        # (at the previous run the deadline was not before its cut-off, so it was at_risk).
        ticket("EDGE", "urgent", "2026-10-11 00:00", first_response_at="2026-10-11 00:00",
               verified_at="2026-10-11 00:00"),
        # met -> never a breach.
        ticket("MET", "urgent", "2026-10-12 09:00", first_response_at="2026-10-12 10:00",
               plan_at="2026-10-12 10:00"),
    ]


def test_new_breaches_are_those_whose_deadline_passed_since_the_previous_run(
        run, breach_rows) -> None:
    out = run(*breach_rows)
    fresh = new_breaches(out, CUTOFF, PREVIOUS)
    assert list(fresh.columns) == CONTRACT
    assert sorted(zip(fresh["ticket_id"], fresh["metric"], strict=True)) == [
        ("EDGE", "plan"), ("LATE", "first_response"), ("NEW", "first_response"),
    ]
    assert set(fresh["status"]) == {"breached"}


def test_every_breach_is_new_in_exactly_one_daily_run(policy, calendar) -> None:
    # Daily runs D = 10-08 .. 10-22 over the full CRM cut at each D: every (ticket, metric)
    # breached at the end is reported as new exactly once, including one whose pause was open
    # across a run (its deadline kept moving) and late achievements.
    full_tickets = tickets_frame(
        ticket("A", "urgent", "2026-10-08 10:00", first_response_at="2026-10-09 10:00"),
        ticket("B", "general", "2026-10-09 17:00", resolved_at="2026-10-12 10:00",
               result_fed_back_at="2026-10-15 10:00"),
        ticket("C", "important", "2026-10-12 09:00", first_response_at="2026-10-14 10:00"),
        ticket("D", "urgent", "2026-10-13 23:30"),
    )
    full_pauses = pauses_frame(("C", "2026-10-12 10:00", "2026-10-13 17:00"))
    seen: list[tuple[str, str]] = []
    days = pd.date_range("2026-10-08", "2026-10-22", freq="D")
    for previous, cutoff in itertools.pairwise(days):
        status = sla_status(apply_cutoff(TABLES["tickets"], full_tickets, cutoff),
                            apply_cutoff(TABLES["ticket_pauses"], full_pauses, cutoff),
                            policy, calendar, cutoff)
        fresh = new_breaches(status, cutoff, previous)
        seen += list(zip(fresh["ticket_id"], fresh["metric"], strict=True))
    final = status[status["status"] == "breached"]
    breached = set(zip(final["ticket_id"], final["metric"], strict=True))
    assert breached <= set(seen)
    # A breach reported while the step was open turns `unknown` once a later stamp shows the
    # ticket moved past it without its own stamp (B: resolved Mon 10-12 without first response
    # or verification): reported once, then neither met nor breached.
    unknown = status[status["status"] == "unknown"]
    assert set(seen) - breached == set(zip(unknown["ticket_id"], unknown["metric"], strict=True))
    assert set(seen) - breached == {("B", "first_response"), ("B", "verification")}
    assert len(seen) == len(set(seen)) > 5


# ===================================================================== digest
def test_breach_digest_masks_phones_and_groups_by_department(run, breach_rows) -> None:
    rows = [dict(r, department_id="D1") for r in breach_rows]
    rows += [
        # D2: at_risk (urgent plan created Mon 06:00, 75 % used, see above) and a pending row.
        dict(ticket("RISK", "urgent", "2026-10-12 06:00", first_response_at="2026-10-12 09:30"),
             department_id="D2", customer_id="C-FULLWIDTH"),
        dict(ticket("GEN", "general", "2026-10-12 12:00:01", first_response_at="2026-10-12 13:00"),
             department_id="D2", customer_id="C-MISSING"),
        # D3: only old breaches -> no key.
        dict(ticket("QUIET", "urgent", "2026-10-09 09:00", first_response_at="2026-10-09 10:00",
                    plan_at="2026-10-09 10:00", verified_at="2026-10-09 10:00"),
             department_id="D3"),
    ]
    status = run(*rows)
    tickets = tickets_frame(*rows).assign(handler_agent_id="A7")
    customers = pd.DataFrame({
        "customer_id": ["C-NEW", "C-LATE", "C-EDGE", "C-FULLWIDTH", "C-OLD"],
        "name": ["New Co", "Late Co", "Edge Co", "Wide Co", "Old Co"],
        "phone": ["13812345678", "+86 139 0000 1111", "021-6212 3456", "１３７１２３４５６７８",
                  "123"],
    })
    digest = breach_digest(status, tickets, customers, CUTOFF, PREVIOUS)
    assert sorted(digest) == ["D1", "D2"]
    d1, d2 = digest["D1"], digest["D2"]
    assert list(d1.columns) == list(DIGEST_COLUMNS)
    # The digest now also has a due_today section after the breaches (revisit.delivery.digest
    # tests it); here the breached section. OLD's first response is `unknown` (plan_at set
    # without first_response_at) and never listed.
    d1 = d1[d1["section"] == "breached"]
    # D1: three new breaches, all urgent, earliest deadline first: EDGE plan (Mon 00:00),
    # then NEW and LATE first_response (both Mon 11:00; ticket_id order).
    assert list(zip(d1["ticket_id"], d1["metric"], strict=True)) == [
        ("EDGE", "plan"), ("LATE", "first_response"), ("NEW", "first_response")]
    assert list(d1["phone_masked"]) == ["021****3456", "139****1111", "138****5678"]
    assert list(d1["customer_name"]) == ["Edge Co", "Late Co", "New Co"]
    assert set(d1["handler_agent_id"]) == {"A7"}
    assert list(d1["overdue_minutes"]) == [0 + 24 * 60, 240, 7 * 60]  # plan is wall clock
    # D2: no breach; the at_risk row (plan, Tue 06:00) comes first among the rows due today;
    # pending rows not due today (GEN resolution, 5 working days) are not listed.
    first = d2.iloc[0]
    assert (first["ticket_id"], first["status"], first["phone_masked"]) == (
        "RISK", "at_risk", "137****5678")
    assert ("GEN", "resolution") not in set(zip(d2["ticket_id"], d2["metric"], strict=True))
    assert "breached" not in set(d2["section"])
    # Only the tickets and customers digest_parties names are read by it: the same digest from
    # those rows alone (what a merge of shards holds), and QUIET (only old breaches) is not one.
    tickets_of, customers_of = digest_parties(status, CUTOFF, PREVIOUS)
    assert "QUIET" not in tickets_of and {"RISK", "NEW", "EDGE"} <= set(tickets_of)
    few = breach_digest(status, tickets[tickets["ticket_id"].isin(tickets_of)],
                        customers[customers["customer_id"].isin(customers_of)],
                        CUTOFF, PREVIOUS)
    assert sorted(few) == sorted(digest)
    for department, frame in digest.items():
        pd.testing.assert_frame_equal(few[department], frame)


def test_breach_digest_sorts_breached_before_at_risk_and_urgent_first(run) -> None:
    rows = [
        ticket("G-BREACH", "general", "2026-10-12 09:00"),  # FR deadline Mon 17:00 -> new
        # FR deadline Mon 11:00 -> new (no plan_at: a later stamp would make the empty first
        # response `unknown`, DESIGN.md "unknown")
        ticket("U-BREACH", "urgent", "2026-10-12 09:00"),
        ticket("U-RISK", "urgent", "2026-10-12 06:00",  # plan Tue 06:00, 75 % -> at_risk
               first_response_at="2026-10-12 09:00"),
    ]
    status = run(*rows)
    customers = pd.DataFrame({"customer_id": ["C-G-BREACH"], "name": ["G"], "phone": [None]})
    digest = breach_digest(status, tickets_frame(*rows), customers, CUTOFF, PREVIOUS)["D1"]
    # Breaches first, urgent before general; then the rows due today (before Wed 00:00) by
    # deadline: U-RISK plan Tue 06:00 (at_risk), U-BREACH plan Tue 09:00, the verifications
    # Tue 18:00 (urgent before general, then ticket_id).
    assert list(zip(digest["ticket_id"], digest["metric"], digest["status"], strict=True)) == [
        ("U-BREACH", "first_response", "breached"),
        ("G-BREACH", "first_response", "breached"),
        ("U-RISK", "plan", "at_risk"),
        ("U-BREACH", "plan", "pending"),
        ("U-BREACH", "verification", "pending"),
        ("U-RISK", "verification", "pending"),
        ("G-BREACH", "verification", "pending"),
    ]
    # Unknown customers and missing phones never leak or crash.
    assert set(digest["phone_masked"]) == {"****"}
    assert digest["customer_name"].isna().tolist() == [True, False, True, True, True, True,
                                                       False]


# ===================================================================== properties
RANGE_START = dt.datetime(2026, 9, 20)
RANGE_MINUTES = 30 * 1440
instants = st.integers(0, RANGE_MINUTES).map(lambda m: RANGE_START + dt.timedelta(minutes=m))


@st.composite
def ticket_sets(draw: st.DrawFn) -> tuple[list[dict], list[tuple[str, str, str | None]]]:
    rows, pauses = [], []
    for i in range(draw(st.integers(1, 6))):
        created = draw(instants)
        stamps = {}
        for name in ("first_response_at", "plan_at", "verified_at", "resolved_at"):
            if draw(st.booleans()):
                stamps[name] = str(created + dt.timedelta(minutes=draw(st.integers(0, 6000))))
        if "resolved_at" in stamps and draw(st.booleans()):
            resolved = pd.Timestamp(stamps["resolved_at"])
            stamps["result_fed_back_at"] = str(resolved + pd.Timedelta(minutes=draw(
                st.integers(0, 4000))))
        tid = f"T{i}"
        rows.append(ticket(tid, draw(st.sampled_from(["urgent", "important", "general"])),
                           str(created), **stamps))
        for _ in range(draw(st.integers(0, 2))):
            begin = created + dt.timedelta(minutes=draw(st.integers(-600, 4000)))
            length = draw(st.one_of(st.none(), st.integers(1, 3000)))
            end = None if length is None else str(begin + dt.timedelta(minutes=length))
            pauses.append((tid, str(begin), end))
    return rows, pauses


@settings(max_examples=60, deadline=None)
@given(data=ticket_sets(), cutoff_day=st.integers(0, 35))
def test_many_tickets_in_one_call_equal_one_call_per_ticket(policy, calendar, data,
                                                            cutoff_day) -> None:
    # Vectorisation must not mix tickets up (pauses are matched per ticket and per metric).
    rows, pauses = data
    cutoff = pd.Timestamp(RANGE_START) + pd.Timedelta(days=cutoff_day)
    pause_frame = pauses_frame(*pauses)
    together = sla_status(tickets_frame(*rows), pause_frame, policy, calendar, cutoff)
    alone = [sla_status(tickets_frame(r), pause_frame, policy, calendar, cutoff) for r in rows]
    expected = pd.concat(alone, ignore_index=True).sort_values(
        "ticket_id", kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(together, expected)


@settings(max_examples=60, deadline=None)
@given(created=instants, answer=st.one_of(st.none(), st.integers(0, 3000)),
       pauses=st.lists(st.tuples(st.integers(-300, 2000), st.one_of(st.none(),
                                                                   st.integers(1, 1500))),
                       max_size=3),
       cutoff_after=st.integers(1, 4000), priority=st.sampled_from(["urgent", "general"]))
def test_first_response_matches_the_minute_reference(policy, calendar, created, answer, pauses,
                                                     cutoff_after, priority) -> None:
    # Status, deadline and overdue of the business-hours metric, recomputed minute by minute
    # with the reference calendar and the rules of DESIGN.md.
    reference = ReferenceCalendar(policy.calendar)
    cutoff = created + dt.timedelta(minutes=cutoff_after)
    cutoff = dt.datetime.combine(cutoff.date(), dt.time())  # a run's cut-off is a midnight
    if cutoff <= created:
        cutoff += dt.timedelta(days=1)
    answered = None if answer is None else created + dt.timedelta(minutes=answer)
    achieved = answered if answered is not None and answered < cutoff else None
    spans = []
    for begin, length in pauses:
        paused = created + dt.timedelta(minutes=begin)
        resumed = None if length is None else paused + dt.timedelta(minutes=length)
        spans.append((paused, resumed))
    # Reference semantics: pauses existing at the cut-off, open ones run to it, each ends at
    # the achievement.
    upper = achieved or cutoff
    ref_pauses = [(p, min(r or cutoff, cutoff, upper)) for p, r in spans if p < min(cutoff, upper)]
    hours = policy.sla.targets[priority]["first_response"].amount
    deadline = reference.deadline(created, hours, ref_pauses)
    if achieved is not None:
        status = "met" if achieved <= deadline else "breached"
    elif deadline < cutoff:
        status = "breached"
    else:
        used = reference.business_minutes_between(created, cutoff, ref_pauses)
        status = "at_risk" if used >= 0.75 * hours * 60 else "pending"
    overdue = 0
    if status == "breached":
        overdue = reference.business_minutes_between(deadline, achieved or cutoff, ref_pauses)

    stamps = {} if answered is None else {"first_response_at": str(answered)}
    frame = pauses_frame(*[("T1", str(p), None if r is None else str(r)) for p, r in spans])
    out = sla_status(tickets_frame(ticket("T1", priority, str(created), **stamps)), frame,
                     policy, calendar, pd.Timestamp(cutoff))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"], row["overdue_minutes"]) == (
        pd.Timestamp(deadline, tz=TZ), status, overdue)


# ===================================================================== unknown (DESIGN "unknown")
# Steps: first_response -> verification -> plan -> resolution -> result_feedback -> closed.
# Run D = Tue 10-13 (cut-off Tue 00:00) unless said otherwise.
@pytest.mark.parametrize(("priority", "metric", "stamps"), [
    # first_response empty, verification stamped: the ticket moved past first response.
    ("urgent", "first_response", {"verified_at": "2026-10-08 11:00"}),
    # verification empty, plan stamped.
    ("important", "verification", {"first_response_at": "2026-10-08 10:30",
                                   "plan_at": "2026-10-08 12:00"}),
    # plan empty, resolution stamped (urgent has a plan target, not a resolution one).
    ("urgent", "plan", {"first_response_at": "2026-10-08 10:30", "verified_at": "2026-10-08 11:00",
                        "resolved_at": "2026-10-09 10:00"}),
    # resolution empty, result feedback stamped.
    ("general", "resolution", {"first_response_at": "2026-10-08 10:30",
                               "verified_at": "2026-10-08 11:00",
                               "result_fed_back_at": "2026-10-09 10:00"}),
    # result_feedback empty (its start, resolved_at, set), closed stamped.
    ("general", "result_feedback", {"first_response_at": "2026-10-08 10:30",
                                    "verified_at": "2026-10-08 11:00",
                                    "resolved_at": "2026-10-08 15:00",
                                    "closed_at": "2026-10-09 10:00"}),
])
def test_empty_stamp_of_a_step_passed_by_a_later_stamp_is_unknown(run, priority, metric,
                                                                  stamps) -> None:
    # Created Thu 10-08 10:00: every deadline of these targets is before the cut-off, so
    # without the later stamp the row would be breached; with it, unknown, 0 overdue, not due.
    out = run(ticket("T1", priority, "2026-10-08 10:00", **stamps))
    row = one(out, "T1", metric)
    assert (row["status"], row["overdue_minutes"], row["due_today"]) == ("unknown", 0, False)
    assert pd.isna(row["achieved_at"])


def test_status_resolved_passes_every_step_up_to_resolution(run) -> None:
    # General, status resolved with only resolved_at Fri 10-09 10:00 (no other stamp):
    # first_response and verification unknown; resolution achieved (met: deadline 5 working
    # days); result_feedback comes after resolution: deadline Sat 10-10 18:00, not achieved
    # -> breached, overdue Mon 10-12 09:00-18:00 = 540.
    out = run(ticket("T1", "general", "2026-10-08 10:00", status="resolved",
                     resolved_at="2026-10-09 10:00"))
    assert [one(out, "T1", m)["status"] for m in
            ("first_response", "resolution", "verification", "result_feedback")] == [
        "unknown", "met", "unknown", "breached"]
    assert one(out, "T1", "result_feedback")["overdue_minutes"] == 540


def test_status_resolved_without_resolved_at_makes_resolution_unknown(run) -> None:
    # The record says resolved but has no resolved_at: resolution itself is passed -> unknown;
    # no result_feedback row (its start event is missing).
    out = run(ticket("T1", "general", "2026-10-08 10:00", status="resolved"))
    assert one(out, "T1", "resolution")["status"] == "unknown"
    assert metrics_of(out, "T1") == ["first_response", "resolution", "verification"]


def test_status_closed_passes_every_step(run) -> None:
    # Urgent, status closed, only resolved_at set: every metric without its stamp is unknown,
    # result_feedback included.
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", status="closed",
                     resolved_at="2026-10-08 16:00"))
    assert set(out["status"]) == {"unknown"}
    assert metrics_of(out, "T1") == ["first_response", "plan", "verification", "result_feedback"]


def test_a_status_whose_stamp_is_after_the_cutoff_is_not_believed(run) -> None:
    # Closed (and resolved) Tue 10-13 09:00, after the cut-off: as of the cut-off it was open,
    # so the empty first response is breached as before (deadline Thu 12:00).
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", status="closed",
                     resolved_at="2026-10-13 09:00", closed_at="2026-10-13 09:00"))
    assert set(out["status"]) == {"breached"}


def test_a_later_stamp_after_the_cutoff_does_not_make_unknown(run) -> None:
    # verified_at Tue 10-13 08:00 has not happened at the cut-off: first response breached.
    out = run(ticket("T1", "urgent", "2026-10-08 10:00", verified_at="2026-10-13 08:00"))
    assert one(out, "T1", "first_response")["status"] == "breached"


def test_no_later_stamp_keeps_pending_and_breached(run) -> None:
    # In progress, nothing stamped: first response (deadline Thu 12:00) breached; created Mon
    # 10-12 14:00 general: first response 4 h of 8 used -> pending.
    out = run(ticket("B", "urgent", "2026-10-08 10:00"),
              ticket("P", "general", "2026-10-12 14:00"))
    assert one(out, "B", "first_response")["status"] == "breached"
    assert one(out, "P", "first_response")["status"] == "pending"


def test_design_example_verification_unknown_versus_breached(run) -> None:
    # DESIGN.md: important, first_response_at and plan_at set, no verified_at -> verification
    # unknown; in progress with only first_response_at and the verification deadline passed ->
    # breached.
    # Both created Thu 10-08 10:00: verification deadline = closing of the 1st working day
    # after Thu = Fri 10-09 18:00 < cut-off Tue 10-13 00:00.
    # elapsed (business, to the cut-off): Thu 10-18 (8 h) + Fri 9 h + Sat 10-10 9 h (adjusted
    # working day) + Mon 9 h = 35 h = 2100 min; overdue of B: Sat 9 h + Mon 9 h = 1080.
    out = run(ticket("U", "important", "2026-10-08 10:00", first_response_at="2026-10-08 11:00",
                     plan_at="2026-10-09 10:00"),
              ticket("B", "important", "2026-10-08 10:00", first_response_at="2026-10-08 11:00"))
    u, b = one(out, "U", "verification"), one(out, "B", "verification")
    assert u["deadline"] == b["deadline"] == L("2026-10-09 18:00")
    assert (u["status"], u["overdue_minutes"], u["elapsed_minutes"]) == ("unknown", 0, 2100)
    assert (b["status"], b["overdue_minutes"], b["elapsed_minutes"]) == ("breached", 1080, 2100)
    assert b["target"] == "1 working_days"


# ===================================================================== explanation columns
def test_target_text_and_policy_version(run, policy) -> None:
    # target is the policy's duration text; policy_version the first 12 hex digits of the
    # SHA-256 of the policy file's bytes.
    import hashlib

    from revisit.config.policy import DEFAULT_POLICY_PATH, load_policy

    out = run(ticket("T1", "important", "2026-10-12 10:00"))
    assert one(out, "T1", "first_response")["target"] == "4 business_hours"
    assert one(out, "T1", "plan")["target"] == "3 working_days"
    digest = hashlib.sha256(DEFAULT_POLICY_PATH.read_bytes()).hexdigest()[:12]
    assert load_policy(DEFAULT_POLICY_PATH).version == digest
    assert set(out["policy_version"]) == {policy.version}
    assert len(policy.version) == 12


def test_elapsed_across_national_day_week(run) -> None:
    # General first response (8 business hours) created Wed 09-30 15:00, answered Thu 10-08
    # 14:00: Wed 15-18 = 3 h, Oct 1-7 closed, Thu 09-14 = 5 h -> 8 h = 480 min = the target:
    # deadline Thu 14:00, met exactly; no pause -> paused 0.
    out = run(ticket("T1", "general", "2026-09-30 15:00", first_response_at="2026-10-08 14:00"))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"]) == (L("2026-10-08 14:00"), "met")
    assert (row["elapsed_minutes"], row["paused_minutes"]) == (480, 0)


def test_pause_spanning_the_holiday_is_taken_out_on_the_business_clock(run) -> None:
    # General, created Wed 09-30 15:00, paused Wed 17:00 -> Fri 10-09 10:00, answered Fri 12:00.
    # Paused business time: Wed 17-18 (1 h) + Thu 10-08 (9 h) + Fri 09-10 (1 h) = 11 h = 660
    # (the National Day in between is no business time). Business time start -> answer:
    # Wed 3 h + Thu 9 h + Fri 3 h = 15 h; less 11 h paused = 4 h = 240.
    # Deadline: Thu 14:00 (unpaused) + 11 h -> Thu 14-18 (4 h) + Fri 09:00 + 7 h = Fri 16:00.
    out = run(ticket("T1", "general", "2026-09-30 15:00", first_response_at="2026-10-09 12:00"),
              pauses=pauses_frame(("T1", "2026-09-30 17:00", "2026-10-09 10:00")))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"]) == (L("2026-10-09 16:00"), "met")
    assert (row["elapsed_minutes"], row["paused_minutes"]) == (240, 660)


def test_elapsed_on_the_adjusted_working_saturday_and_the_overdue_identity(run) -> None:
    # Urgent created Fri 10-09 17:00: 2 business hours -> Sat 10-10 10:00 (adjusted working
    # day); answered Sat 11:30 -> breached by 90. elapsed = Fri 17-18 (60) + Sat 09-11:30 (150)
    # = 210 = 120 (target) + 90 (overdue).
    out = run(ticket("T1", "urgent", "2026-10-09 17:00", first_response_at="2026-10-10 11:30"))
    row = one(out, "T1", "first_response")
    assert (row["deadline"], row["status"], row["overdue_minutes"]) == (
        L("2026-10-10 10:00"), "breached", 90)
    assert row["elapsed_minutes"] == 210 == 120 + row["overdue_minutes"]


@pytest.mark.parametrize(("answered", "status", "overdue"), [
    ("2026-10-08 18:00", "met", 0),        # exactly at closing = the deadline
    ("2026-10-08 19:30", "breached", 0),   # after closing: no business time since 18:00
    ("2026-10-09 09:30", "breached", 30),  # next morning: 30 business minutes late
])
def test_closing_time_exactly(run, answered, status, overdue) -> None:
    # General created Thu 10-08 10:00: 8 business hours -> Thu 18:00 (closing) exactly.
    # elapsed = 480 + overdue in every case (fixed-length target).
    out = run(ticket("T1", "general", "2026-10-08 10:00", first_response_at=answered))
    row = one(out, "T1", "first_response")
    assert row["deadline"] == L("2026-10-08 18:00")
    assert (row["status"], row["overdue_minutes"]) == (status, overdue)
    assert row["elapsed_minutes"] == 480 + overdue


def test_wall_clock_target_on_a_paused_ticket_counts_the_pause(run) -> None:
    # Urgent created Sun 10-11 20:00, paused Mon 10-12 09:00-12:00, nothing achieved.
    # Plan (24 hours, wall clock): deadline Mon 20:00 (the pause does not stop it), breached;
    # overdue Mon 20:00 -> Tue 00:00 = 240; elapsed wall Sun 20:00 -> Tue 00:00 = 28 h = 1680
    # = 1440 + 240; paused 0 (wall-clock targets are never paused).
    # First response (2 business hours): Mon 09:00 + 2 h + 3 h paused = Mon 14:00; overdue
    # Mon 14-18 = 240; elapsed Mon 09-18 = 9 h less 3 h paused = 360 = 120 + 240; paused 180.
    out = run(ticket("T1", "urgent", "2026-10-11 20:00"),
              pauses=pauses_frame(("T1", "2026-10-12 09:00", "2026-10-12 12:00")))
    plan, first = one(out, "T1", "plan"), one(out, "T1", "first_response")
    assert (plan["deadline"], plan["status"], plan["overdue_minutes"]) == (
        L("2026-10-12 20:00"), "breached", 240)
    assert (plan["elapsed_minutes"], plan["paused_minutes"]) == (1680, 0)
    assert (first["deadline"], first["status"], first["overdue_minutes"]) == (
        L("2026-10-12 14:00"), "breached", 240)
    assert (first["elapsed_minutes"], first["paused_minutes"]) == (360, 180)


def test_due_today_at_the_d_plus_one_boundary(run, policy) -> None:
    # With urgent plan = 48 hours: created Sun 10-11 23:59 -> deadline Tue 10-13 23:59, before
    # Wed 00:00 -> due today (pending: 24:01 of 48 h used); created Mon 10-12 00:00 -> deadline
    # Wed 10-14 00:00 exactly = D + 1 00:00 -> not today. Met, breached and unknown rows are
    # never due today (first response of both tickets: deadline Mon 11:00, breached).
    from revisit.config.policy import Duration

    plan = Duration(amount=48, unit="hours")
    targets = {**policy.sla.targets, "urgent": {**policy.sla.targets["urgent"], "plan": plan}}
    longer = policy.model_copy(
        update={"sla": policy.sla.model_copy(update={"targets": targets})})
    out = run(ticket("IN", "urgent", "2026-10-11 23:59"),
              ticket("EDGE", "urgent", "2026-10-12 00:00"), use_policy=longer)
    inside, edge = one(out, "IN", "plan"), one(out, "EDGE", "plan")
    assert (inside["deadline"], inside["status"], inside["due_today"]) == (
        L("2026-10-13 23:59"), "pending", True)
    assert (edge["deadline"], edge["status"], edge["due_today"]) == (
        L("2026-10-14 00:00"), "pending", False)
    assert inside["target"] == "48 hours"
    assert not out.loc[out["status"].isin(["met", "breached", "unknown"]), "due_today"].any()


# ===================================================================== properties of the verdicts
LATER = {"first_response_at": ("verified_at", "plan_at", "resolved_at", "result_fed_back_at",
                               "closed_at"),
         "verified_at": ("plan_at", "resolved_at", "result_fed_back_at", "closed_at"),
         "plan_at": ("resolved_at", "result_fed_back_at", "closed_at"),
         "resolved_at": ("result_fed_back_at", "closed_at"),
         "result_fed_back_at": ("closed_at",)}


@settings(max_examples=60, deadline=None)
@given(data=ticket_sets(), cutoff_day=st.integers(0, 35),
       statuses=st.lists(st.sampled_from(["pending", "in_progress", "resolved", "closed"]),
                         min_size=6, max_size=6),
       closed=st.lists(st.booleans(), min_size=6, max_size=6))
def test_every_row_has_one_verdict_and_a_passed_step_is_never_breached(
        policy, calendar, data, cutoff_day, statuses, closed) -> None:
    rows, pauses = data
    for row, status, close in zip(rows, statuses, closed, strict=False):
        row["status"] = status
        if close and "resolved_at" in row:
            row["closed_at"] = str(pd.Timestamp(row["resolved_at"]) + pd.Timedelta(hours=5))
    cutoff = pd.Timestamp(RANGE_START) + pd.Timedelta(days=cutoff_day)
    out = sla_status(tickets_frame(*rows), pauses_frame(*pauses), policy, calendar, cutoff)
    counts = out["status"].value_counts()
    assert sum(counts.get(s, 0) for s in ("met", "breached", "unknown", "at_risk",
                                          "pending")) == len(out)
    by_id = {r["ticket_id"]: r for r in rows}
    for _, row in out.iterrows():
        achieved = policy.sla.metrics[row["metric"]].achieved
        source = by_id[row["ticket_id"]]
        later_set = any(source.get(n) is not None and pd.Timestamp(source[n]) < cutoff
                        for n in LATER[achieved])
        if pd.isna(row["achieved_at"]) and later_set:
            assert row["status"] == "unknown"
        if row["status"] == "breached":
            assert not (pd.isna(row["achieved_at"]) and later_set)
            unit = policy.sla.targets[row["priority"]][row["metric"]]
            if unit.unit != "working_days":  # fixed length: elapsed - target = overdue
                per = {"business_hours": 60, "hours": 60, "days": 1440}[unit.unit]
                assert row["elapsed_minutes"] - unit.amount * per == row["overdue_minutes"]
        if row["status"] not in ("pending", "at_risk"):
            assert not row["due_today"]
        if row["target"].endswith((" hours", " days")) and "business" not in row["target"] \
                and "working" not in row["target"]:
            assert row["paused_minutes"] == 0


# ===================================================================== quality summary
def test_unknown_verdicts_go_into_the_quality_summary_leaving_the_rest_byte_identical(
        tmp_path) -> None:
    # run_sla puts an "SLA verdicts unknown" section (ids only: counts per metric, the first
    # N ticket_id + metric) into quality/D/summary.md and summary.html between markers; a rerun
    # replaces it; everything else stays exactly as the gate wrote it.
    from revisit.quality.summary import (
        SLA_UNKNOWN_BEGIN,
        SLA_UNKNOWN_END,
        write_sla_unknown_section,
    )

    md_before = "# Quality summary 2026-11-20\n\nAll good <x>.\n"
    html_before = "<html><body>\n<h1>Quality</h1>\n</body>\n</html>\n"
    (tmp_path / "summary.md").write_text(md_before, encoding="utf-8")
    (tmp_path / "summary.html").write_text(html_before, encoding="utf-8")
    unknown = pd.DataFrame({"ticket_id": ["T1", "T1", "T<2>", "T3"],
                            "metric": ["first_response", "verification", "verification",
                                       "plan"]})
    write_sla_unknown_section(tmp_path, unknown, listed=3)
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    html = (tmp_path / "summary.html").read_text(encoding="utf-8")
    assert md.startswith(md_before)
    assert "4 SLA verdict(s) are `unknown`" in md
    assert "| verification | 2 |" in md and "| plan | 1 |" in md
    assert "First 3 of 4: `T1` first_response, `T1` verification, `T&lt;2>` verification." in md
    assert html.startswith("<html><body>\n<h1>Quality</h1>\n" + SLA_UNKNOWN_BEGIN)
    assert html.endswith(SLA_UNKNOWN_END + "\n</body>\n</html>\n")
    assert "<code>T&lt;2&gt;</code> verification" in html
    # A rerun with none: the section says so, the rest is still byte-identical.
    write_sla_unknown_section(tmp_path, unknown.iloc[:0])
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    html = (tmp_path / "summary.html").read_text(encoding="utf-8")
    assert md == md_before + "\n" + SLA_UNKNOWN_BEGIN + "\n## SLA verdicts unknown\n\n" \
        "No SLA verdict is unknown.\n" + SLA_UNKNOWN_END + "\n"
    assert html.count(SLA_UNKNOWN_BEGIN) == 1 and "No SLA verdict is unknown." in html
    before, _, rest = html.partition(SLA_UNKNOWN_BEGIN)
    assert before + rest.partition(SLA_UNKNOWN_END)[2] == html_before.replace(
        "</body>", "\n</body>")
