"""A deliberately simple reference business calendar, for checking BusinessCalendar against.

Pure Python, naive local datetimes at whole minutes, and it steps one minute at a time: slow, but
each rule of DESIGN.md "Business calendar (contract)" is one obvious line. The minute starting at
`t` is business time when t's date is a working day and t's time of day lies in one of the
policy's [opening, closing) intervals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import holidays

from revisit.config.policy import CalendarPolicy

MINUTE = dt.timedelta(minutes=1)
Pause = tuple[dt.datetime, dt.datetime]  # [paused_at, resumed_at), naive local


class ReferenceCalendar:
    def __init__(self, policy: CalendarPolicy, years: Iterable[int] = range(2025, 2029)) -> None:
        self.policy = policy
        self.country = holidays.country_holidays(policy.country, years=list(years))
        self.adjusted_workdays = set(getattr(self.country, "weekend_workdays", ()))
        self.hours = [(h.start, h.end) for h in policy.hours]  # minutes after midnight
        self._working: dict[dt.date, bool] = {}  # a memo only: is_working_day is the rule

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.policy.extra_holidays:
            return False
        if day in self.policy.extra_workdays or day in self.adjusted_workdays:
            return True
        if day in self.country:
            return False
        return day.weekday() < 5  # Monday..Friday

    def is_business_minute(self, t: dt.datetime) -> bool:
        minute_of_day = t.hour * 60 + t.minute
        if not any(start <= minute_of_day < end for start, end in self.hours):
            return False
        day = t.date()
        if day not in self._working:
            self._working[day] = self.is_working_day(day)
        return self._working[day]

    def counts(self, t: dt.datetime, pauses: Iterable[Pause] = ()) -> bool:
        """Does the minute starting at t count toward a business-hours target?"""
        return self.is_business_minute(t) and not any(begin <= t < end for begin, end in pauses)

    def add_business_hours(
        self, t: dt.datetime, hours: float, pauses: Iterable[Pause] = ()
    ) -> dt.datetime:
        """Earliest instant at which `hours` of (unpaused) business time have passed since t."""
        assert t.second == 0 and t.microsecond == 0, "the reference works in whole minutes"
        pauses = list(pauses)
        needed = round(hours * 60)
        counted = 0
        while counted < needed:
            if self.counts(t, pauses):
                counted += 1
            t += MINUTE
        return t

    def deadline(self, t: dt.datetime, hours: float, pauses: Iterable[Pause]) -> dt.datetime:
        """Pause-aware business-hours deadline: minutes inside a pause do not count."""
        return self.add_business_hours(t, hours, pauses)

    def add_working_days(self, t: dt.datetime, n: int) -> dt.datetime:
        """Closing time of the n-th working day after t's calendar day (that day not counted)."""
        day = t.date()
        for _ in range(n):
            day += dt.timedelta(days=1)
            while not self.is_working_day(day):
                day += dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=self.policy.closing)

    def business_minutes_between(
        self, a: dt.datetime, b: dt.datetime, pauses: Iterable[Pause] = ()
    ) -> int:
        """Business minutes in [a, b) outside pauses; negative when b < a."""
        if b < a:
            return -self.business_minutes_between(b, a, pauses)
        pauses = list(pauses)
        minutes = 0
        while a < b:
            minutes += self.counts(a, pauses)
            a += MINUTE
        return minutes
