"""The business calendar, proved to the minute.

Hand-computed cases first (each with its arithmetic in a comment), then hypothesis properties that
compare BusinessCalendar with the per-minute reference in calendar_reference.py.

Calendar facts used below (CN, from the `holidays` package; checked in test_holiday_data_*):
  2026-02  Fri 13 working, Sat 14 adjusted working day, Sun 15 .. Mon 23 closed (Spring
           Festival), Tue 24 working, Sat 28 adjusted working day.
  2026-06  Fri 19 Dragon Boat Festival.
  2026-09  Fri 18 working, Sat 19 closed, Sun 20 adjusted working day, Fri 25 Mid-Autumn.
  2026-10  Thu 1 .. Wed 7 closed (National Day), Thu 8, Fri 9 working, Sat 10 adjusted working
           day, Sun 11 closed, Mon 12 .. Fri 16 working, Sat 17 / Sun 18 closed.
Business hours 09:00-18:00 (9 h a day) unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt

import holidays
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revisit.config.policy import CalendarPolicy, Duration, Policy
from revisit.rules.calendar import BusinessCalendar, CalendarError
from tests.unit.rules.calendar_reference import ReferenceCalendar

TZ = "Asia/Shanghai"
LUNCH_HOURS = [["09:00", "12:00"], ["13:30", "18:00"]]


def T(text: str) -> pd.Timestamp:  # noqa: N802 - reads like a literal
    """A naive local timestamp (the calendar reads naive input as Asia/Shanghai)."""
    return pd.Timestamp(text)


def L(text: str, tz: str = TZ) -> pd.Timestamp:  # noqa: N802
    """The tz-aware timestamp the calendar should answer with."""
    return pd.Timestamp(text, tz=tz)


def H(hours: float) -> pd.Timedelta:  # noqa: N802
    return pd.Timedelta(hours=hours)


def D(text: str) -> dt.date:  # noqa: N802
    return dt.date.fromisoformat(text)


def bh(amount: float) -> Duration:
    return Duration(amount=amount, unit="business_hours")


def with_changes(base: CalendarPolicy, **changes: object) -> CalendarPolicy:
    """A validated copy of a calendar policy with some keys replaced."""
    return CalendarPolicy.model_validate({**base.model_dump(), **changes})


def pauses_frame(*rows: tuple[int, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": [r for r, _, _ in rows],
            "paused_at": pd.to_datetime([p for _, p, _ in rows]),
            "resumed_at": pd.to_datetime([e for _, _, e in rows]),
        }
    )


@pytest.fixture(scope="module")
def lunch(policy: Policy) -> BusinessCalendar:
    return BusinessCalendar(with_changes(policy.calendar, hours=LUNCH_HOURS))


@pytest.fixture(scope="module")
def berlin() -> BusinessCalendar:
    return BusinessCalendar(
        CalendarPolicy(country="DE", timezone="Europe/Berlin", hours=[["09:00", "18:00"]])
    )


# --------------------------------------------------------------------- holiday data we rely on
def test_holiday_data_national_day_and_spring_festival_2026() -> None:
    cn = holidays.country_holidays("CN", years=2026)
    assert {D("2026-10-01") + dt.timedelta(days=i) for i in range(7)} - set(cn) == {D("2026-10-04")}
    assert D("2026-10-08") not in cn  # Oct 4 is a Sunday anyway
    assert {D("2026-02-16"), D("2026-02-20"), D("2026-02-23")} <= set(cn)
    assert {D("2026-02-14"), D("2026-02-28"), D("2026-09-20"), D("2026-10-10")} <= set(
        cn.weekend_workdays
    )


def test_adjusted_working_weekend_days_2026_are_working_days(calendar: BusinessCalendar) -> None:
    cn = holidays.country_holidays("CN", years=2026)
    adjusted = sorted(d for d in cn.weekend_workdays if d.year == 2026)
    # 2026: Sun Jan 4, Sat Feb 14, Sat Feb 28, Sat May 9, Sun Sep 20, Sat Oct 10.
    assert adjusted == [D(s) for s in ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09",
                                       "2026-09-20", "2026-10-10")]
    assert all(d.weekday() >= 5 for d in adjusted)
    assert np.asarray(calendar.is_working_day(adjusted)).all()
    # The weekend days around them stay closed: Sun Feb 1, Sat Sep 19, Sun Oct 11.
    assert not np.asarray(calendar.is_working_day([D("2026-02-01"), D("2026-09-19"),
                                                   D("2026-10-11")])).any()


# --------------------------------------------------------------------- DESIGN.md examples
def test_design_example_eight_business_hours_end_at_closing_same_day(calendar) -> None:
    # Thu 10-08 10:00 + 8 h: 10:00 -> 18:00 is exactly 8 h; the closing instant, not Fri 09:00.
    assert calendar.add_business_hours(T("2026-10-08 10:00"), 8) == L("2026-10-08 18:00")


def test_design_example_business_hours_roll_onto_adjusted_working_saturday(calendar) -> None:
    # Fri 10-09 17:00 + 2 h: 1 h Fri (17-18), 1 h on Sat 10-10 (adjusted working day, 09-10).
    assert calendar.add_business_hours(T("2026-10-09 17:00"), 2) == L("2026-10-10 10:00")


def test_design_example_working_days_skip_sunday(calendar) -> None:
    # Fri 10-09 11:00 + 3 wd: Sat 10 (1), Sun 11 closed, Mon 12 (2), Tue 13 (3) -> 18:00.
    assert calendar.add_working_days(T("2026-10-09 11:00"), 3) == L("2026-10-13 18:00")


# --------------------------------------------------------------------- opening and closing
def test_event_before_opening_counts_from_opening(calendar) -> None:
    # Mon 10-12 07:30: nothing counts until 09:00; 09:00 + 2 h = 11:00.
    assert calendar.add_business_hours(T("2026-10-12 07:30"), 2) == L("2026-10-12 11:00")
    assert calendar.add_business_hours(T("2026-10-12 00:00"), 9) == L("2026-10-12 18:00")


def test_event_exactly_at_opening(calendar) -> None:
    # Mon 09:00 + 2 h = 11:00; + 9 h = the whole day, closing 18:00.
    assert calendar.add_business_hours(T("2026-10-12 09:00"), 2) == L("2026-10-12 11:00")
    assert calendar.add_business_hours(T("2026-10-12 09:00"), 9) == L("2026-10-12 18:00")


def test_event_exactly_at_closing_counts_from_next_working_day(calendar) -> None:
    # Mon 18:00: the day's business time is used up; Tue 09:00 + 1 h = Tue 10:00.
    assert calendar.add_business_hours(T("2026-10-12 18:00"), 1) == L("2026-10-13 10:00")
    # One minute before closing: 1 min Mon + 59 min Tue -> Tue 09:59.
    assert calendar.add_business_hours(T("2026-10-12 17:59"), 1) == L("2026-10-13 09:59")


def test_event_after_closing_counts_from_next_working_day(calendar) -> None:
    # Mon 21:15 -> Tue 09:00 + 1 h = 10:00; Mon 23:59 + 15 min -> Tue 09:15.
    assert calendar.add_business_hours(T("2026-10-12 21:15"), 1) == L("2026-10-13 10:00")
    assert calendar.add_business_hours(T("2026-10-12 23:59"), 0.25) == L("2026-10-13 09:15")


def test_event_on_weekend_counts_from_monday(calendar) -> None:
    # Sat 10-17 11:00 (ordinary weekend) -> Mon 10-19 09:00 + 1 h = 10:00.
    assert calendar.add_business_hours(T("2026-10-17 11:00"), 1) == L("2026-10-19 10:00")
    # Sun 10-18 + 3 wd: Mon 19 (1), Tue 20 (2), Wed 21 (3).
    assert calendar.add_working_days(T("2026-10-18 10:00"), 3) == L("2026-10-21 18:00")


def test_event_on_public_holiday_counts_from_next_working_day(calendar) -> None:
    # Fri 06-19 Dragon Boat, Sat/Sun closed: Mon 06-22 09:00 + 1 h = 10:00; + 1 wd = Mon 18:00.
    assert calendar.add_business_hours(T("2026-06-19 10:00"), 1) == L("2026-06-22 10:00")
    assert calendar.add_working_days(T("2026-06-19 10:00"), 1) == L("2026-06-22 18:00")


def test_business_hours_spanning_several_days(calendar) -> None:
    # Mon 10-12 17:00 + 10 h = 1 h Mon + 9 h Tue -> Tue 18:00; + 10.25 h -> Wed 09:15.
    assert calendar.add_business_hours(T("2026-10-12 17:00"), 10) == L("2026-10-13 18:00")
    assert calendar.add_business_hours(T("2026-10-12 17:00"), 10.25) == L("2026-10-14 09:15")
    # Mon 09:00 + 45 h = five whole days Mon-Fri -> Fri 10-16 18:00.
    assert calendar.add_business_hours(T("2026-10-12 09:00"), 45) == L("2026-10-16 18:00")


def test_business_hours_are_exact_below_the_minute(calendar) -> None:
    # 0.25 h = 15 min; 1.5 h = 90 min; a start at :30 s keeps its seconds.
    assert calendar.add_business_hours(T("2026-10-12 10:00"), 0.25) == L("2026-10-12 10:15")
    assert calendar.add_business_hours(T("2026-10-12 10:00"), 1.5) == L("2026-10-12 11:30")
    assert calendar.add_business_hours(T("2026-10-12 10:00:30"), 1) == L("2026-10-12 11:00:30")
    # 17:59:30 + 1 min: 30 s on Mon, 30 s on Tue -> Tue 09:00:30.
    assert calendar.add_business_hours(T("2026-10-12 17:59:30"), 1 / 60) == L(
        "2026-10-13 09:00:30"
    )


def test_zero_business_hours_is_the_start_itself(calendar) -> None:
    # Nothing has to pass, so even a Saturday start is its own deadline.
    assert calendar.add_business_hours(T("2026-10-17 11:00"), 0) == L("2026-10-17 11:00")


def test_working_days_do_not_count_the_day_of_the_event(calendar) -> None:
    # Mon 10-12 at 07:00 (before opening) or 23:00 (after closing): + 1 wd = Tue 18:00.
    assert calendar.add_working_days(T("2026-10-12 07:00"), 1) == L("2026-10-13 18:00")
    assert calendar.add_working_days(T("2026-10-12 23:00"), 1) == L("2026-10-13 18:00")
    # From Sun 10-11: the next working day is Mon 10-12.
    assert calendar.add_working_days(T("2026-10-11 10:00"), 1) == L("2026-10-12 18:00")


def test_working_days_must_be_at_least_one(calendar) -> None:
    with pytest.raises(CalendarError):
        calendar.add_working_days(T("2026-10-12 10:00"), 0)
    with pytest.raises(CalendarError):
        calendar.add(T("2026-10-12 10:00"), Duration(amount=1.5, unit="working_days"))


# --------------------------------------------------------------------- National Day 2026
def test_national_day_2026_working_days(calendar) -> None:
    # Sep 19 .. Oct 12: closed Sat 19, Fri 25 (Mid-Autumn), Sat/Sun 26-27, Oct 1-7, Sun 11.
    closed = {"09-19", "09-25", "09-26", "09-27", "10-01", "10-02", "10-03", "10-04", "10-05",
              "10-06", "10-07", "10-11"}
    days = pd.date_range("2026-09-19", "2026-10-12", freq="D")
    expected = [d.strftime("%m-%d") not in closed for d in days]
    assert list(np.asarray(calendar.is_working_day(days.date))) == expected
    assert calendar.is_working_day(D("2026-09-20"))  # a Sunday, adjusted working day
    assert calendar.is_working_day(D("2026-10-10"))  # a Saturday, adjusted working day


def test_business_hours_jump_the_national_day_week(calendar) -> None:
    # Wed 09-30 17:00 + 2 h: 1 h Wed, Oct 1-7 closed, 1 h Thu 10-08 -> 10:00.
    assert calendar.add_business_hours(T("2026-09-30 17:00"), 2) == L("2026-10-08 10:00")
    # Started during the holiday: Sat 10-03 12:00 + 1 h -> Thu 10-08 10:00.
    assert calendar.add_business_hours(T("2026-10-03 12:00"), 1) == L("2026-10-08 10:00")
    # Wed 09-30 09:00 + 36 h = Wed, Thu 8, Fri 9, Sat 10 (4 x 9 h) -> Sat 10-10 18:00.
    assert calendar.add_business_hours(T("2026-09-30 09:00"), 36) == L("2026-10-10 18:00")


def test_working_days_across_the_national_day_week(calendar) -> None:
    # Wed 09-30 + 1 wd = Thu 10-08; Thu 10-01 (holiday) + 3 wd = Oct 8, 9, Sat 10.
    assert calendar.add_working_days(T("2026-09-30 10:00"), 1) == L("2026-10-08 18:00")
    assert calendar.add_working_days(T("2026-10-01 10:00"), 3) == L("2026-10-10 18:00")
    # Sat 09-19 + 1 wd = Sun 09-20 (adjusted working day).
    assert calendar.add_working_days(T("2026-09-19 10:00"), 1) == L("2026-09-20 18:00")


def test_adjusted_working_sunday_and_mid_autumn_festival(calendar) -> None:
    # Fri 09-18 17:00 + 2 h: 1 h Fri, Sat closed, Sun 09-20 working -> 10:00.
    assert calendar.add_business_hours(T("2026-09-18 17:00"), 2) == L("2026-09-20 10:00")
    # Thu 09-24 17:00 + 2 h: Fri 25 Mid-Autumn, weekend -> Mon 09-28 10:00.
    assert calendar.add_business_hours(T("2026-09-24 17:00"), 2) == L("2026-09-28 10:00")


def test_business_time_between_across_the_national_day_week(calendar) -> None:
    # Wed 09-30 09:00 -> Sat 10-10 18:00: Sep 30, Oct 8, 9, 10 = 4 x 9 h = 36 h.
    assert calendar.business_time_between(T("2026-09-30 09:00"), T("2026-10-10 18:00")) == H(36)
    # Closing Sep 30 -> opening Oct 8: the whole week is closed, 0 h.
    assert calendar.business_time_between(T("2026-09-30 18:00"), T("2026-10-08 09:00")) == H(0)
    # Wed 09-30 10:00 -> Thu 10-08 10:00: 8 h + 1 h = 9 h.
    assert calendar.business_time_between(T("2026-09-30 10:00"), T("2026-10-08 10:00")) == H(9)


# --------------------------------------------------------------------- Spring Festival 2026
def test_spring_festival_2026_working_days(calendar) -> None:
    # Feb 12 .. Mar 1: Sat 14 and Sat 28 working; Sun 15 .. Mon 23 closed; Sun Mar 1 closed.
    days = pd.date_range("2026-02-12", "2026-03-01", freq="D")
    closed = set(pd.date_range("2026-02-15", "2026-02-23", freq="D").date) | {D("2026-03-01")}
    expected = [d not in closed for d in days.date]
    assert list(np.asarray(calendar.is_working_day(days.date))) == expected


def test_business_hours_across_spring_festival(calendar) -> None:
    # Fri 02-13 17:00 + 2 h: 1 h Fri, 1 h Sat 02-14 (working) -> 10:00.
    assert calendar.add_business_hours(T("2026-02-13 17:00"), 2) == L("2026-02-14 10:00")
    # Sat 02-14 17:00 + 2 h: 1 h Sat, Feb 15-23 closed, 1 h Tue 02-24 -> 10:00.
    assert calendar.add_business_hours(T("2026-02-14 17:00"), 2) == L("2026-02-24 10:00")


def test_working_days_across_spring_festival(calendar) -> None:
    # Fri 02-13 + 2 wd: Sat 14 (1), Tue 24 (2). Fri 02-27 + 1 wd: Sat 28.
    assert calendar.add_working_days(T("2026-02-13 10:00"), 2) == L("2026-02-24 18:00")
    assert calendar.add_working_days(T("2026-02-27 10:00"), 1) == L("2026-02-28 18:00")
    # Mon 02-16 (holiday) + 1 wd: Tue 02-24.
    assert calendar.add_working_days(T("2026-02-16 10:00"), 1) == L("2026-02-24 18:00")


def test_business_time_between_across_spring_festival(calendar) -> None:
    # Fri 02-13 09:00 -> Tue 02-24 18:00: Fri 13, Sat 14, Tue 24 = 27 h.
    assert calendar.business_time_between(T("2026-02-13 09:00"), T("2026-02-24 18:00")) == H(27)


# --------------------------------------------------------------------- a lunch break
def test_lunch_break_time_does_not_count(lunch) -> None:
    # Hours 09:00-12:00, 13:30-18:00. Mon 11:00 + 2 h: 11-12 (1 h), 13:30-14:30 (1 h).
    assert lunch.add_business_hours(T("2026-10-12 11:00"), 2) == L("2026-10-12 14:30")


def test_event_inside_lunch_break_counts_from_afternoon_opening(lunch) -> None:
    # Mon 12:45 + 1 h: nothing until 13:30 -> 14:30.
    assert lunch.add_business_hours(T("2026-10-12 12:45"), 1) == L("2026-10-12 14:30")


def test_deadline_at_morning_closing_is_not_moved_past_lunch(lunch) -> None:
    # Mon 11:00 + 1 h: reached at 12:00 exactly (the earliest instant), not 13:30.
    assert lunch.add_business_hours(T("2026-10-12 11:00"), 1) == L("2026-10-12 12:00")


def test_lunch_break_day_has_seven_and_a_half_business_hours(lunch) -> None:
    # 3 h + 4.5 h = 7.5 h: Mon 09:00 + 7.5 h = Mon 18:00; + 7.75 h = Tue 09:15.
    assert lunch.add_business_hours(T("2026-10-12 09:00"), 7.5) == L("2026-10-12 18:00")
    assert lunch.add_business_hours(T("2026-10-12 09:00"), 7.75) == L("2026-10-13 09:15")
    assert lunch.business_time_between(T("2026-10-12 09:00"), T("2026-10-13 09:00")) == H(7.5)
    # 12:10 -> 13:40: only 13:30-13:40 counts.
    assert lunch.business_time_between(T("2026-10-12 12:10"), T("2026-10-12 13:40")) == H(1 / 6)


def test_lunch_break_working_days_end_at_last_closing(lunch) -> None:
    # Mon 11:00 + 1 wd = Tue, closing time of the last interval 18:00.
    assert lunch.add_working_days(T("2026-10-12 11:00"), 1) == L("2026-10-13 18:00")


# --------------------------------------------------------------------- policy extras
def test_extra_holidays_and_extra_workdays_from_policy(policy: Policy) -> None:
    extras = BusinessCalendar(
        with_changes(
            policy.calendar,
            extra_holidays=["2026-10-09", "2026-10-10"],  # a Friday; an adjusted working Sat
            extra_workdays=["2026-10-01", "2026-10-11"],  # a public holiday; a Sunday
        )
    )
    flags = extras.is_working_day([D("2026-10-01"), D("2026-10-02"), D("2026-10-09"),
                                   D("2026-10-10"), D("2026-10-11")])
    assert list(np.asarray(flags)) == [True, False, False, False, True]
    # Wed 09-30 + 1 wd = Thu 10-01 (extra workday overrides the holiday).
    assert extras.add_working_days(T("2026-09-30 10:00"), 1) == L("2026-10-01 18:00")
    # Thu 10-08 17:00 + 2 h: 1 h Thu, Fri 9 and Sat 10 closed, 1 h Sun 10-11 -> 10:00.
    assert extras.add_business_hours(T("2026-10-08 17:00"), 2) == L("2026-10-11 10:00")
    # Thu 10-08 09:00 -> Mon 10-12 09:00: Thu + Sun = 18 h.
    assert extras.business_time_between(T("2026-10-08 09:00"), T("2026-10-12 09:00")) == H(18)


# --------------------------------------------------------------------- NaT, Series, time zones
def test_nat_gives_nat_and_leaves_other_rows_alone(calendar) -> None:
    start = pd.Series([T("2026-10-08 10:00"), pd.NaT, T("2026-10-09 17:00")])
    end = pd.Series([pd.NaT, T("2026-10-12 10:00"), T("2026-10-12 10:00")])
    nat = pd.NaT
    assert list(calendar.add_business_hours(start, 8)) == [
        L("2026-10-08 18:00"), nat, L("2026-10-10 16:00")  # Fri 1 h + Sat 7 h
    ]
    assert list(calendar.add_working_days(start, 1)) == [
        L("2026-10-09 18:00"), nat, L("2026-10-10 18:00")
    ]
    assert list(calendar.add(start, Duration(amount=2, unit="hours"))) == [
        L("2026-10-08 12:00"), nat, L("2026-10-09 19:00")
    ]
    assert list(calendar.add(start, Duration(amount=1, unit="days"))) == [
        L("2026-10-09 10:00"), nat, L("2026-10-10 17:00")
    ]
    # Fri 17:00 -> Mon 10-12 10:00: Fri 1 h + Sat 9 h + Mon 1 h = 11 h.
    assert list(calendar.business_time_between(start, end)) == [nat, nat, H(11)]
    pauses = pauses_frame((1, "2026-10-08 11:00", "2026-10-08 12:00"),
                          (2, "2026-10-10 09:00", "2026-10-10 10:00"))
    # Row 2: Sat 16:00 + the 1 h pause = Sat 17:00; 11 h - 1 h = 10 h.
    assert list(calendar.deadline(start, bh(8), pauses)) == [
        L("2026-10-08 18:00"), nat, L("2026-10-10 17:00")
    ]
    assert list(calendar.elapsed(start, end, "business_hours", pauses)) == [nat, nat, H(10)]


def test_scalar_nat_gives_nat(calendar) -> None:
    assert calendar.add_business_hours(pd.NaT, 1) is pd.NaT
    assert calendar.add_working_days(pd.NaT, 1) is pd.NaT
    assert calendar.business_time_between(pd.NaT, T("2026-10-08 10:00")) is pd.NaT
    assert calendar.add_working_days_to_date(pd.NaT, 1) is None


def test_all_nat_series_gives_all_nat(calendar) -> None:
    start = pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]")
    assert calendar.add_business_hours(start, 1).isna().all()
    assert calendar.add_working_days(start, 1).isna().all()
    assert calendar.deadline(start, bh(1), pauses_frame()).isna().all()


def test_series_in_series_out_with_the_same_index(calendar) -> None:
    index = pd.Index([30, 10, 20], name="ticket_id")
    start = pd.Series([T("2026-10-08 10:00"), T("2026-10-12 18:00"), pd.NaT], index=index)
    for out in (
        calendar.add_business_hours(start, 1),
        calendar.add_working_days(start, 1),
        calendar.add(start, Duration(amount=1, unit="hours")),
        calendar.deadline(start, bh(1), pauses_frame((1, "2026-10-13 09:00", "2026-10-13 09:30"))),
    ):
        assert isinstance(out, pd.Series)
        assert out.index.equals(index)
        assert str(out.dtype) == f"datetime64[ns, {TZ}]"
    out = calendar.deadline(start, bh(1), pauses_frame((1, "2026-10-13 09:00", "2026-10-13 09:30")))
    # Row at position 1 (ticket 10): Tue 09:00 + 1 h + 30 min pause = 10:30.
    assert out.loc[10] == L("2026-10-13 10:30")
    assert out.loc[30] == L("2026-10-08 11:00")
    elapsed = calendar.business_time_between(start, start + H(24))
    assert isinstance(elapsed, pd.Series)
    assert elapsed.index.equals(index)
    assert list(elapsed) == [H(9), H(9), pd.NaT]  # Thu 10:00 -> Fri 10:00; Mon 18 -> Tue 18


def test_scalar_in_scalar_out(calendar) -> None:
    out = calendar.add_business_hours(dt.datetime(2026, 10, 8, 10, 0), 1)
    assert isinstance(out, pd.Timestamp)
    assert out == L("2026-10-08 11:00")
    assert calendar.add_business_hours("2026-10-08 10:00", 1) == L("2026-10-08 11:00")
    assert isinstance(calendar.business_time_between(T("2026-10-08 10:00"),
                                                     T("2026-10-08 11:00")), pd.Timedelta)


def test_tz_aware_inputs_are_read_in_their_own_zone(calendar) -> None:
    # 02:00 UTC = 10:00 in Shanghai (UTC+8): Thu 10:00 + 8 h = Thu 18:00 +08:00.
    out = calendar.add_business_hours(L("2026-10-08 02:00", "UTC"), 8)
    assert out == L("2026-10-08 18:00")
    assert str(out.tz) == TZ
    # Wed 10-07 17:00 UTC = Thu 10-08 01:00 local: a working day, before opening.
    assert calendar.is_working_day(L("2026-10-07 17:00", "UTC"))
    assert calendar.add_working_days(L("2026-10-07 17:00", "UTC"), 1) == L("2026-10-09 18:00")
    utc = pd.Series([L("2026-10-09 09:00", "UTC"), L("2026-10-09 10:00", "UTC")])
    # 09:00 UTC = Fri 17:00 local -> 18:00; 10:00 UTC = Fri 18:00 local (closing) -> Sat 10:00.
    assert list(calendar.add_business_hours(utc, 1)) == [
        L("2026-10-09 18:00"), L("2026-10-10 10:00")
    ]
    # 11:00 BST (UTC+1) = 10:00 UTC = Fri 18:00 local.
    london = pd.Series([L("2026-10-09 11:00", "Europe/London")])
    assert list(calendar.add_business_hours(london, 1)) == [L("2026-10-10 10:00")]
    assert calendar.business_time_between(L("2026-10-08 01:00", "UTC"), T("2026-10-08 12:00")) == H(
        3  # 09:00 local -> 12:00 local
    )


# --------------------------------------------------------------------- business_time_between
def test_business_time_between_is_negative_when_end_is_before_start(calendar) -> None:
    # Thu 18:00 -> Thu 10:00 = -8 h; Tue 10-13 10:00 -> Fri 10-09 17:00 = -(1 + 9 + 9 + 1) h.
    assert calendar.business_time_between(T("2026-10-08 18:00"), T("2026-10-08 10:00")) == H(-8)
    assert calendar.business_time_between(T("2026-10-13 10:00"), T("2026-10-09 17:00")) == H(-20)


def test_business_time_between_outside_hours_is_zero(calendar) -> None:
    # Mon 18:30 -> Tue 08:30 and Sat -> Sun contain no business time.
    assert calendar.business_time_between(T("2026-10-12 18:30"), T("2026-10-13 08:30")) == H(0)
    assert calendar.business_time_between(T("2026-10-17 10:00"), T("2026-10-18 10:00")) == H(0)
    assert calendar.business_time_between(T("2026-10-12 10:00"), T("2026-10-12 10:00")) == H(0)


# --------------------------------------------------------------------- working-day dates
def test_add_working_days_to_date(calendar) -> None:
    # Fri 10-09 + 1 = Sat 10-10 (adjusted); + 2 = Mon 10-12 (Sun 11 closed).
    assert calendar.add_working_days_to_date(D("2026-10-09"), 1) == D("2026-10-10")
    assert calendar.add_working_days_to_date(D("2026-10-09"), 2) == D("2026-10-12")
    # Wed 09-30 + 1 = Thu 10-08 (National Day week skipped).
    assert calendar.add_working_days_to_date(D("2026-09-30"), 1) == D("2026-10-08")
    # A timestamp counts as its local date: Thu 10-08 23:30 + 1 = Fri 10-09.
    assert calendar.add_working_days_to_date(T("2026-10-08 23:30"), 1) == D("2026-10-09")


def test_add_zero_working_days_to_date_is_the_day_or_the_next_working_day(calendar) -> None:
    assert calendar.add_working_days_to_date(D("2026-10-09"), 0) == D("2026-10-09")  # working
    assert calendar.add_working_days_to_date(D("2026-10-01"), 0) == D("2026-10-08")  # holiday
    assert calendar.add_working_days_to_date(D("2026-10-11"), 0) == D("2026-10-12")  # Sunday
    assert calendar.add_working_days_to_date(D("2026-10-10"), 0) == D("2026-10-10")  # adjusted


def test_add_working_days_to_dates_vectorised_with_nat(calendar) -> None:
    dates = pd.Series(pd.to_datetime(["2026-10-09", None, "2026-09-30", "2026-10-01"]))
    out = np.asarray(calendar.add_working_days_to_date(dates, np.array([2, 1, 1, 0])))
    expected = np.array(["2026-10-12", "NaT", "2026-10-08", "2026-10-08"], dtype="datetime64[D]")
    np.testing.assert_array_equal(out.astype("datetime64[D]"), expected)
    with pytest.raises(CalendarError):
        calendar.add_working_days_to_date(D("2026-10-09"), -1)


# --------------------------------------------------------------------- wall-clock durations
def test_wall_clock_hours_and_days_ignore_the_calendar(calendar) -> None:
    # National Day Thu 10-01 10:00: + 24 hours = Fri 10:00; + 7 days = Thu 10-08 10:00.
    assert calendar.add(T("2026-10-01 10:00"), Duration(amount=24, unit="hours")) == L(
        "2026-10-02 10:00"
    )
    assert calendar.add(T("2026-10-01 10:00"), Duration(amount=7, unit="days")) == L(
        "2026-10-08 10:00"
    )
    # Sat 23:00 + 1.5 hours = Sun 00:30.
    assert calendar.add(T("2026-10-17 23:00"), Duration(amount=1.5, unit="hours")) == L(
        "2026-10-18 00:30"
    )
    assert calendar.elapsed(T("2026-10-01 10:00"), T("2026-10-08 09:00"), "hours") == H(167)


def test_add_with_business_units_matches_the_direct_methods(calendar) -> None:
    start = T("2026-10-09 17:00")
    assert calendar.add(start, bh(2)) == calendar.add_business_hours(start, 2)
    assert calendar.add(start, Duration(amount=3, unit="working_days")) == L("2026-10-13 18:00")


# --------------------------------------------------------------------- pauses
def test_pause_inside_business_hours_pushes_the_deadline(calendar) -> None:
    # Thu 10-08 10:00 + 8 h = 18:00; a 11:00-12:30 pause (1.5 h) -> Fri 10-09 10:30.
    pauses = pauses_frame((0, "2026-10-08 11:00", "2026-10-08 12:30"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), pauses) == L("2026-10-09 10:30")
    # Elapsed Thu 10:00 -> 14:00 = 4 h - 1.5 h = 2.5 h.
    assert calendar.elapsed(T("2026-10-08 10:00"), T("2026-10-08 14:00"), "business_hours",
                            pauses) == H(2.5)


def test_overlapping_pauses_count_once(calendar) -> None:
    # 11:00-12:00 and 11:30-13:00 merge into 11:00-13:00 = 2 h; 18:00 + 2 h -> Fri 11:00.
    pauses = pauses_frame((0, "2026-10-08 11:30", "2026-10-08 13:00"),
                          (0, "2026-10-08 11:00", "2026-10-08 12:00"),
                          (0, "2026-10-08 11:15", "2026-10-08 11:45"))  # nested
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), pauses) == L("2026-10-09 11:00")
    assert calendar.elapsed(T("2026-10-08 10:00"), T("2026-10-08 18:00"), "business_hours",
                            pauses) == H(6)


def test_pause_outside_business_hours_has_no_effect(calendar) -> None:
    # Thu 19:00 -> Fri 08:00 and the whole of Sun 10-11 contain no business time.
    pauses = pauses_frame((0, "2026-10-08 19:00", "2026-10-09 08:00"),
                          (0, "2026-10-11 00:00", "2026-10-12 00:00"))
    # Thu 17:00 + 12 h: 1 h Thu, 9 h Fri, 2 h Sat 10-10 -> Sat 11:00.
    assert calendar.deadline(T("2026-10-08 17:00"), bh(12), pauses) == L("2026-10-10 11:00")
    assert calendar.elapsed(T("2026-10-08 17:00"), T("2026-10-12 10:00"), "business_hours",
                            pauses) == H(1 + 9 + 9 + 1)


def test_pause_starting_before_the_ticket_is_clipped_to_its_start(calendar) -> None:
    # Pause 08:00-11:00, ticket at 10:00: only 10:00-11:00 (1 h) is paused (not 09:00-11:00).
    pauses = pauses_frame((0, "2026-10-08 08:00", "2026-10-08 11:00"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), pauses) == L("2026-10-09 10:00")
    assert calendar.elapsed(T("2026-10-08 10:00"), T("2026-10-08 18:00"), "business_hours",
                            pauses) == H(7)
    # A pause over before the ticket starts has no effect at all.
    before = pauses_frame((0, "2026-10-08 08:00", "2026-10-08 09:30"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), before) == L("2026-10-08 18:00")


def test_pause_beginning_at_or_after_the_deadline_has_no_effect(calendar) -> None:
    # Deadline Thu 18:00; pauses at 18:00 and Fri 10:00 come too late.
    pauses = pauses_frame((0, "2026-10-08 18:00", "2026-10-09 12:00"),
                          (0, "2026-10-09 10:00", "2026-10-09 11:00"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), pauses) == L("2026-10-08 18:00")


def test_pause_running_past_the_deadline_resumes_the_count_after_it(calendar) -> None:
    # Thu 10:00 + 2 h: 10-11 counts, paused 11:00 -> Fri 10:00, then 1 h more -> Fri 11:00.
    pauses = pauses_frame((0, "2026-10-08 11:00", "2026-10-09 10:00"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(2), pauses) == L("2026-10-09 11:00")


def test_pause_made_relevant_by_an_earlier_pause_also_counts(calendar) -> None:
    # Thu 10:00 + 2 h = 12:00. Pause 11:00-13:00 pushes it to 14:00, so the 13:30-14:30 pause
    # (after the original deadline) now begins before it: 10-11, 13-13:30, 14:30-15:00 -> 15:00.
    pauses = pauses_frame((0, "2026-10-08 13:30", "2026-10-08 14:30"),
                          (0, "2026-10-08 11:00", "2026-10-08 13:00"))
    assert calendar.deadline(T("2026-10-08 10:00"), bh(2), pauses) == L("2026-10-08 15:00")


def test_pauses_on_a_lunch_break_calendar(lunch) -> None:
    # Mon 10-12 11:00 + 2 h, paused 11:30-14:00: counts 11-11:30 and 14:00-15:30 -> 15:30.
    pauses = pauses_frame((0, "2026-10-12 11:30", "2026-10-12 14:00"))
    assert lunch.deadline(T("2026-10-12 11:00"), bh(2), pauses) == L("2026-10-12 15:30")


def test_multiple_pauses_per_row_across_rows(calendar) -> None:
    start = pd.Series([T("2026-10-08 10:00"), T("2026-10-09 17:00"), T("2026-10-12 09:00"),
                       T("2026-10-12 09:00")], index=["a", "b", "c", "d"])
    pauses = pauses_frame(
        (2, "2026-10-12 10:00", "2026-10-12 11:00"),  # c: 1 h
        (0, "2026-10-08 12:00", "2026-10-08 12:30"),  # a: 0.5 h
        (2, "2026-10-12 13:00", "2026-10-12 13:15"),  # c: 0.25 h
        (0, "2026-10-08 11:00", "2026-10-08 11:30"),  # a: 0.5 h
        (1, "2026-10-09 17:30", "2026-10-10 09:30"),  # b: 0.5 h Fri + 0.5 h Sat
        (2, "2026-10-12 16:00", "2026-10-12 16:30"),  # c: 0.5 h
        (0, "2026-10-09 09:00", "2026-10-09 09:15"),  # a: after the pushed deadline? see below
    )
    out = calendar.deadline(start, bh(8), pauses)
    # a: Thu 10:00 + 8 h = 18:00, + 1 h (two pauses) = Fri 10:00; the Fri 09:00-09:15 pause
    #    begins before that, + 0.25 h -> Fri 10:15.
    # b: Fri 17:00 + 8 h = Sat 16:00, + 1 h -> Sat 17:00.
    # c: Mon 09:00 + 8 h = 17:00, + 1.75 h -> Tue 09:45.
    # d: no pauses -> Mon 17:00.
    assert list(out) == [L("2026-10-09 10:15"), L("2026-10-10 17:00"), L("2026-10-13 09:45"),
                         L("2026-10-12 17:00")]
    end = pd.Series([T("2026-10-08 18:00"), T("2026-10-10 18:00"), T("2026-10-12 18:00"),
                     T("2026-10-12 18:00")], index=start.index)
    # a: 8 h - 1 h (the Fri pause is after the end); b: Fri 1 h + Sat 9 h - 1 h; c: 9 - 1.75;
    # d: 9.
    assert list(calendar.elapsed(start, end, "business_hours", pauses)) == [
        H(7), H(9), H(7.25), H(9)
    ]


def test_pauses_on_working_day_and_wall_clock_targets(calendar) -> None:
    # working_days (business clock): Fri 10-09 11:00 + 1 wd = Sat 18:00; a 2 h business-time
    # pause on Fri pushes it 2 business hours -> Mon 10-12 11:00.
    pauses = pauses_frame((0, "2026-10-09 14:00", "2026-10-09 16:00"))
    one_day = Duration(amount=1, unit="working_days")
    assert calendar.deadline(T("2026-10-09 11:00"), one_day, pauses) == L("2026-10-12 11:00")
    # hours (wall clock): Fri 11:00 + 24 hours = Sat 11:00, + the 2 h pause -> Sat 13:00.
    hours = Duration(amount=24, unit="hours")
    assert calendar.deadline(T("2026-10-09 11:00"), hours, pauses) == L("2026-10-10 13:00")
    assert calendar.elapsed(T("2026-10-09 11:00"), T("2026-10-10 11:00"), "hours", pauses) == H(22)


def test_empty_pauses_and_open_pauses(calendar) -> None:
    assert calendar.deadline(T("2026-10-08 10:00"), bh(8), pauses_frame()) == L("2026-10-08 18:00")
    open_pause = pauses_frame((0, "2026-10-08 11:00", None))
    with pytest.raises(CalendarError):
        calendar.deadline(T("2026-10-08 10:00"), bh(8), open_pause)


# --------------------------------------------------------------------- calendar range
def test_timestamp_outside_the_calendar_years_raises(calendar) -> None:
    assert calendar.years == (2015, 2040)
    with pytest.raises(CalendarError):
        calendar.add_business_hours(T("2014-12-31 23:59"), 1)
    with pytest.raises(CalendarError):
        calendar.add_business_hours(T("2041-01-01 00:00"), 1)
    with pytest.raises(CalendarError):  # one bad row spoils the batch, loudly
        calendar.add_working_days(pd.Series([T("2026-10-08 10:00"), T("2099-01-01")]), 1)
    with pytest.raises(CalendarError):
        calendar.business_time_between(T("2026-10-08 10:00"), T("2041-06-01"))


def test_date_outside_the_calendar_years_raises(calendar) -> None:
    # Before the fix these were answered silently from the wrong end of the table
    # (2010-03-01 + 1 wd gave the first working day of 2015; a Monday in 2010 was "closed").
    with pytest.raises(CalendarError):
        calendar.add_working_days_to_date(D("2010-03-01"), 1)
    with pytest.raises(CalendarError):
        calendar.is_working_day(D("2010-03-01"))
    with pytest.raises(CalendarError):
        calendar.is_working_day(D("2041-03-04"))
    assert calendar.is_working_day(D("2015-01-05"))  # first Monday inside the table


def test_working_days_outside_the_calendar_count_monday_to_friday_when_asked(
        calendar, policy: Policy) -> None:
    # outside="weekdays" (the visit windows' choice): np.busday_offset where the table has no
    # answer. 2010-03-01 is a Monday: + 1 = Tue 03-02; Sat 03-06 + 0 = Mon 03-08; Sat 03-06 + 1
    # = Mon 03-08 (a weekend date counts from the Friday before it).
    dates = np.array(["2010-03-01", "2010-03-06", "2010-03-06", "NaT", "2026-09-30"],
                     dtype="datetime64[D]")
    out = calendar.add_working_days_to_date(dates, np.array([1, 0, 1, 1, 1]), outside="weekdays")
    expected = np.array(["2010-03-02", "2010-03-08", "2010-03-08", "NaT", "2026-10-08"],
                        dtype="datetime64[D]")  # inside the table: the holidays still count
    np.testing.assert_array_equal(out, expected)
    # Past the last working day of a (2025, 2026) calendar: Thu 2026-12-31 + 1 = Fri 2027-01-01.
    short = BusinessCalendar(policy.calendar, years=(2025, 2026))
    assert short.add_working_days_to_date(D("2026-12-31"), 1, outside="weekdays") == D(
        "2027-01-01")
    with pytest.raises(ValueError):
        calendar.add_working_days_to_date(D("2026-10-09"), 1, outside="clip")


def test_deadline_past_the_last_year_raises(policy: Policy) -> None:
    short = BusinessCalendar(policy.calendar, years=(2025, 2026))
    with pytest.raises(CalendarError):
        short.add_business_hours(T("2026-11-30 10:00"), 1000)
    with pytest.raises(CalendarError):
        short.add_working_days_to_date(D("2026-12-31"), 1)


# --------------------------------------------------------------------- a zone with DST
def test_wall_clock_hours_across_dst_are_real_hours(berlin) -> None:
    day = Duration(amount=24, unit="hours")
    # Spring forward (Sun 03-29 02:00 -> 03:00): 24 real hours from Sat 12:00 CET = Sun 13:00
    # CEST, 25 h on the clock face.
    spring = berlin.add(T("2026-03-28 12:00"), day)
    assert spring == L("2026-03-29 13:00", "Europe/Berlin")
    assert spring - L("2026-03-28 12:00", "Europe/Berlin") == H(24)
    # Fall back (Sun 10-25 03:00 -> 02:00): Sat 12:00 CEST + 24 h = Sun 11:00 CET, 23 h on the
    # clock face.
    fall = berlin.add(T("2026-10-24 12:00"), day)
    assert fall == L("2026-10-25 11:00", "Europe/Berlin")
    assert fall - L("2026-10-24 12:00", "Europe/Berlin") == H(24)
    assert berlin.elapsed(T("2026-10-24 12:00"), T("2026-10-25 12:00"), "hours") == H(25)


def test_business_hours_across_dst_keep_local_opening_hours(berlin) -> None:
    # Fri 03-27 17:00 CET + 2 h: 1 h Fri, weekend (DST starts), Mon 03-30 09:00-10:00 CEST.
    assert berlin.add_business_hours(T("2026-03-27 17:00"), 2) == L(
        "2026-03-30 10:00", "Europe/Berlin"
    )
    # Fri 09:00 -> Mon 18:00: 9 h + 9 h, the lost hour is on Sunday night.
    assert berlin.business_time_between(T("2026-03-27 09:00"), T("2026-03-30 18:00")) == H(18)
    # Good Friday 04-03 and Easter Monday 04-06 are closed: Thu 04-02 17:00 + 2 h -> Tue 10:00.
    assert berlin.add_business_hours(T("2026-04-02 17:00"), 2) == L(
        "2026-04-07 10:00", "Europe/Berlin"
    )


# ===================================================================== properties vs reference
RANGE_START = dt.datetime(2025, 12, 1)
RANGE_MINUTES = int((dt.datetime(2027, 2, 1) - RANGE_START).total_seconds() // 60)
PROPERTY = settings(max_examples=200, deadline=None)


@pytest.fixture(scope="module")
def pairs(policy: Policy, lunch: BusinessCalendar) -> dict[str, tuple[BusinessCalendar,
                                                                      ReferenceCalendar]]:
    calendar = BusinessCalendar(policy.calendar)
    return {
        "one_interval": (calendar, ReferenceCalendar(policy.calendar)),
        "lunch_break": (lunch, ReferenceCalendar(lunch.policy)),
    }


both_calendars = pytest.mark.parametrize("which", ["one_interval", "lunch_break"])
instants = st.integers(0, RANGE_MINUTES - 1).map(lambda m: RANGE_START + dt.timedelta(minutes=m))
quarter_hours = st.integers(1, 120).map(lambda q: q / 4)  # 0.25 .. 30 h
pause_sets = st.lists(
    st.tuples(st.integers(-1440, 3 * 1440), st.integers(1, 1440)), max_size=4
)  # (begin relative to start, length), in minutes: up to 4 pauses of up to a day


def local(naive: dt.datetime) -> pd.Timestamp:
    return pd.Timestamp(naive).tz_localize(TZ)


def as_pauses(start: dt.datetime, offsets: list[tuple[int, int]]) -> list[tuple[dt.datetime,
                                                                                   dt.datetime]]:
    out = []
    for begin, length in offsets:
        paused = start + dt.timedelta(minutes=begin)
        out.append((paused, paused + dt.timedelta(minutes=length)))
    return out


def frame_of(rows: list[tuple[int, list[tuple[dt.datetime, dt.datetime]]]]) -> pd.DataFrame:
    flat = [(row, begin, end) for row, pauses in rows for begin, end in pauses]
    return pd.DataFrame(
        {
            "row": pd.Series([r for r, _, _ in flat], dtype="int64"),
            "paused_at": pd.Series([b for _, b, _ in flat], dtype="datetime64[ns]"),
            "resumed_at": pd.Series([e for _, _, e in flat], dtype="datetime64[ns]"),
        }
    )


def test_working_days_match_reference_for_every_day(pairs) -> None:
    calendar, reference = pairs["one_interval"]
    days = pd.date_range(RANGE_START, "2028-12-31", freq="D").date
    expected = [reference.is_working_day(d) for d in days]
    assert list(np.asarray(calendar.is_working_day(days))) == expected


@both_calendars
@PROPERTY
@given(start=instants, hours=quarter_hours)
def test_business_hours_match_reference(pairs, which, start, hours) -> None:
    calendar, reference = pairs[which]
    assert calendar.add_business_hours(start, hours) == local(
        reference.add_business_hours(start, hours)
    )


@both_calendars
@PROPERTY
@given(start=instants, days=st.integers(1, 10))
def test_working_days_match_reference(pairs, which, start, days) -> None:
    calendar, reference = pairs[which]
    assert calendar.add_working_days(start, days) == local(reference.add_working_days(start, days))


@both_calendars
@PROPERTY
@given(start=instants, offset=st.integers(-3 * 1440, 6 * 1440))
def test_business_time_between_matches_reference(pairs, which, start, offset) -> None:
    calendar, reference = pairs[which]
    end = start + dt.timedelta(minutes=offset)
    minutes = reference.business_minutes_between(start, end)
    assert calendar.business_time_between(start, end) == pd.Timedelta(minutes=minutes)


@both_calendars
@PROPERTY
@given(start=instants, hours=quarter_hours, offsets=pause_sets)
def test_pause_aware_deadline_matches_reference(pairs, which, start, hours, offsets) -> None:
    calendar, reference = pairs[which]
    pauses = as_pauses(start, offsets)
    expected = reference.deadline(start, hours, pauses)
    assert calendar.deadline(start, bh(hours), frame_of([(0, pauses)])) == local(expected)


@both_calendars
@PROPERTY
@given(start=instants, length=st.integers(0, 4 * 1440), offsets=pause_sets)
def test_elapsed_with_pauses_matches_reference(pairs, which, start, length, offsets) -> None:
    calendar, reference = pairs[which]
    end = start + dt.timedelta(minutes=length)
    pauses = as_pauses(start, offsets)
    minutes = reference.business_minutes_between(start, end, pauses)
    elapsed = calendar.elapsed(start, end, "business_hours", frame_of([(0, pauses)]))
    assert elapsed == pd.Timedelta(minutes=minutes)


@both_calendars
@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.one_of(st.none(), st.tuples(instants, quarter_hours, pause_sets)),
        min_size=1, max_size=4,
    )
)
def test_vectorised_rows_with_pauses_match_reference(pairs, which, rows) -> None:
    # Several rows in one call, each with its own target and pauses (None = a NaT start).
    calendar, reference = pairs[which]
    starts = pd.Series([pd.NaT if r is None else pd.Timestamp(r[0]) for r in rows],
                       dtype="datetime64[ns]", index=[f"t{i}" for i in range(len(rows))])
    hours = np.array([0 if r is None else r[1] for r in rows])
    pauses = [(i, [] if r is None else as_pauses(r[0], r[2])) for i, r in enumerate(rows)]
    frame = frame_of(pauses)[::-1]  # rows out of order must not matter

    deadlines = calendar.add_business_hours(starts, hours)
    expected = [pd.NaT if r is None else local(reference.add_business_hours(r[0], r[1]))
                for r in rows]
    assert list(deadlines) == expected

    # deadline() takes one Duration for all rows; use the first row's hours.
    target = next((r[1] for r in rows if r is not None), 1.0)
    paused = calendar.deadline(starts, bh(target), frame)
    expected = [pd.NaT if r is None else local(reference.deadline(r[0], target, p))
                for r, (_, p) in zip(rows, pauses, strict=True)]
    assert list(paused) == expected
    assert paused.index.equals(starts.index)
