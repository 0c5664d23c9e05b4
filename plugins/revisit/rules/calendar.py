"""The business calendar: working days, business hours and the four clocks of DESIGN.md.

Everything is vectorised over pandas Series (or numpy arrays) and exact to the nanosecond:
business time is a monotone "business clock" B(t) = business time elapsed since an epoch, built
from a sorted table of business intervals in UTC. Adding N business hours is then
B^-1(B(t) + N), found with one `searchsorted`, never a per-row loop. Working in UTC makes
wall-clock arithmetic right across DST changes in zones that have them.

Naive timestamps are read as local time in the calendar's time zone; results are tz-aware in
that zone. NaT in, NaT out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from revisit.config.policy import CalendarPolicy, Duration

NS_PER_MINUTE = 60 * 1_000_000_000
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
_NAT = np.iinfo(np.int64).min  # numpy's NaT as int64

DEFAULT_YEARS = (2015, 2040)


class CalendarError(ValueError):
    """A request the calendar cannot answer (e.g. a date outside its years)."""


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (pd.Series, pd.Index, np.ndarray, list, tuple))


@dataclass(frozen=True)
class _Clock:
    """A monotone clock: value(t) and its inverse over UTC nanoseconds (int64, NaT masked)."""

    starts: np.ndarray | None = None  # interval starts, UTC ns (None: wall clock)
    ends: np.ndarray | None = None
    cum_start: np.ndarray | None = None  # clock value at each interval start
    cum_end: np.ndarray | None = None

    def value(self, t: np.ndarray) -> np.ndarray:
        if self.starts is None:
            return t
        i = np.searchsorted(self.starts, t, side="right") - 1
        k = i.clip(0)
        inside = np.minimum(t - self.starts[k], self.ends[k] - self.starts[k])
        return np.where(i >= 0, self.cum_start[k] + inside, 0)

    def inverse(self, b: np.ndarray) -> np.ndarray:
        """Earliest instant whose clock value reaches b (for b > 0 on the business clock)."""
        if self.starts is None:
            return b
        j = np.searchsorted(self.cum_end, b, side="left")
        if (j >= len(self.cum_end)).any():
            raise CalendarError("a deadline falls after the calendar's last year")
        return self.starts[j] + (b - self.cum_start[j])


@dataclass
class BusinessCalendar:
    """Working days and business hours of one policy; build once per run, reuse everywhere."""

    policy: CalendarPolicy
    years: tuple[int, int] = DEFAULT_YEARS
    tz: str = field(init=False)
    working_days: np.ndarray = field(init=False, repr=False)  # sorted datetime64[D]
    _business: _Clock = field(init=False, repr=False)
    _wall: _Clock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import holidays

        self.tz = self.policy.timezone
        first, last = self.years
        years = list(range(first, last + 1))
        country = holidays.country_holidays(self.policy.country, years=years)
        closed = set(country) | set(self.policy.extra_holidays)
        opened = set(getattr(country, "weekend_workdays", ())) | set(self.policy.extra_workdays)
        days = pd.date_range(dt.date(first, 1, 1), dt.date(last, 12, 31), freq="D")
        weekday = days.day_of_week < 5
        dates = days.date
        is_closed = np.fromiter((d in closed for d in dates), bool, len(dates))
        is_opened = np.fromiter((d in opened for d in dates), bool, len(dates))
        # Extra workdays override holidays; extra holidays override adjusted working days.
        is_opened &= ~np.isin(dates, list(self.policy.extra_holidays))
        working = (weekday & ~is_closed) | is_opened
        self.working_days = days[working].values.astype("datetime64[D]")
        self._business = self._build_business_clock()
        self._wall = _Clock()

    # ----------------------------------------------------------------- construction helpers
    def _build_business_clock(self) -> _Clock:
        day_ns = self.working_days.astype("datetime64[ns]")
        starts, ends = [], []
        for hours in self.policy.hours:
            starts.append(day_ns + np.timedelta64(hours.start, "m"))
            ends.append(day_ns + np.timedelta64(hours.end, "m"))
        local_starts = np.sort(np.concatenate(starts))
        local_ends = np.sort(np.concatenate(ends))
        s = self._localize(local_starts)
        e = self._localize(local_ends)
        lengths = e - s
        cum_end = np.cumsum(lengths)
        return _Clock(starts=s, ends=e, cum_start=cum_end - lengths, cum_end=cum_end)

    def _localize(self, local: np.ndarray) -> np.ndarray:
        """Naive local datetime64 -> UTC int64 ns (nonexistent times shift forward)."""
        index = pd.DatetimeIndex(local).tz_localize(
            self.tz, ambiguous="NaT", nonexistent="shift_forward"
        )
        return index.as_unit("ns").asi8

    # ----------------------------------------------------------------- conversions
    def to_utc_ns(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """Timestamps (naive = local, or tz-aware) -> (UTC int64 ns, NaT mask)."""
        series = pd.Series(pd.to_datetime(values, errors="raise"))
        if series.dt.tz is None:
            series = series.dt.tz_localize(self.tz, ambiguous="NaT", nonexistent="shift_forward")
        ns = series.dt.as_unit("ns").array.asi8.copy()
        mask = series.isna().to_numpy()
        self._check_range(ns[~mask])
        return ns, mask

    def from_utc_ns(self, ns: np.ndarray, mask: np.ndarray, index: Any = None) -> pd.Series:
        ns = np.where(mask, _NAT, ns)
        out = pd.Series(
            pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(self.tz),
            index=index,
        )
        return out

    def _check_range(self, ns: np.ndarray) -> None:
        if ns.size == 0:
            return
        low = pd.Timestamp(self.years[0], 1, 1, tz=self.tz).value
        high = pd.Timestamp(self.years[1], 12, 1, tz=self.tz).value
        if ns.min() < low or ns.max() >= high:
            raise CalendarError(
                f"timestamps outside the calendar's years {self.years[0]}-{self.years[1]}: "
                f"{pd.Timestamp(ns.min(), tz='UTC')} .. {pd.Timestamp(ns.max(), tz='UTC')}"
            )

    def _local_dates(self, ns: np.ndarray, mask: np.ndarray) -> np.ndarray:
        local = self.from_utc_ns(ns, mask).dt.tz_localize(None)
        return local.to_numpy().astype("datetime64[D]")

    def _wrap(self, values: Any, ns: np.ndarray, mask: np.ndarray) -> Any:
        index = values.index if isinstance(values, pd.Series) else None
        out = self.from_utc_ns(ns, mask, index=index)
        return out.iloc[0] if _is_scalar(values) else out

    def clock(self, unit: str) -> _Clock:
        """The clock a target of `unit` is measured on."""
        return self._business if unit in ("business_hours", "working_days") else self._wall

    # ----------------------------------------------------------------- working days
    def is_working_day(self, dates: Any) -> Any:
        """True for working days (dates or timestamps' local calendar dates)."""
        days = self._as_days(dates)
        pos = np.searchsorted(self.working_days, days)
        hit = (pos < len(self.working_days)) & (
            self.working_days[pos.clip(0, len(self.working_days) - 1)] == days
        )
        return bool(hit[0]) if _is_scalar(dates) else hit

    def add_working_days_to_date(self, dates: Any, n: int | np.ndarray,
                                 outside: str = "raise") -> Any:
        """The n-th working day after each date (the date itself not counted); n >= 1.
        n = 0 gives the date itself if it is a working day, else the next working day.

        `outside` says what happens to a date before the calendar's first year, or an answer
        after its last working day: "raise" (CalendarError: a deadline computed from the
        wrong end of the table would be silently wrong), or "weekdays": Monday-Friday
        arithmetic (np.busday_offset) there. Why "weekdays" exists: a visit window can be
        anchored long before the calendar (a customer cooperating since 2005 and never
        reached); such a window ended long ago, so a Monday-Friday answer is fair there,
        where failing the whole daily run is not."""
        if outside not in ("raise", "weekdays"):
            raise ValueError(f"outside must be 'raise' or 'weekdays', not {outside!r}")
        days = self._as_days(dates, check=outside == "raise")
        n = np.asarray(n)
        if (n < 0).any():
            raise CalendarError("working days to add must be >= 0")
        nat = np.isnat(days)
        safe = np.where(nat, self.working_days[0], days)
        after = np.searchsorted(self.working_days, safe, side="right")
        on_or_after = np.searchsorted(self.working_days, safe, side="left")
        pos = np.where(n == 0, on_or_after, after + n - 1)
        if outside == "weekdays":
            out = self._weekdays_outside(days, n, pos)
        elif (pos >= len(self.working_days)).any():
            raise CalendarError("a working day falls after the calendar's last year")
        else:
            out = np.where(nat, np.datetime64("NaT", "D"), self.working_days[pos])
        if _is_scalar(dates):
            return None if np.isnat(out[0]) else out[0].astype(dt.date)
        return out

    def _weekdays_outside(self, days: np.ndarray, n: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """add_working_days_to_date's answers (positions `pos` in the table) where the table
        has them, Monday-Friday arithmetic where it has not (see `outside`)."""
        days, n = np.broadcast_arrays(days, n)
        out = np.full(pos.shape, np.datetime64("NaT", "D"))
        known = ~np.isnat(days)
        first = np.datetime64(f"{self.years[0]:04d}-01-01", "D")
        inside = known & (days >= first) & (pos < len(self.working_days))
        out[inside] = self.working_days[pos[inside]]
        # n = 0: the date if Monday-Friday, else the next Monday; n >= 1: the n-th weekday
        # after the date (a weekend date counts from the Friday before it).
        for zero, roll in ((True, "forward"), (False, "backward")):
            rows = known & ~inside & ((n == 0) == zero)
            if rows.any():
                out[rows] = np.busday_offset(days[rows], n[rows], roll=roll)
        return out

    def _as_days(self, dates: Any, check: bool = True) -> np.ndarray:
        """Calendar dates (datetime64[D]) of dates or timestamps (tz-aware: in the calendar's
        zone); with `check`, a date outside the calendar's years raises CalendarError."""
        if isinstance(dates, np.ndarray) and np.issubdtype(dates.dtype, np.datetime64):
            days = dates.astype("datetime64[D]")  # no pandas round trip for numpy dates
        else:
            if _is_scalar(dates):
                dates = [dates]
            values = pd.Series(dates)
            if pd.api.types.is_datetime64_any_dtype(values) and values.dt.tz is not None:
                values = values.dt.tz_convert(self.tz).dt.tz_localize(None)
            days = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
        if not check:
            return days
        known = days[~np.isnat(days)]  # answering outside the table would be silently wrong
        first = np.datetime64(f"{self.years[0]}-01-01")
        last = np.datetime64(f"{self.years[1]}-12-31")
        if known.size and (known.min() < first or known.max() > last):
            raise CalendarError(
                f"dates outside the calendar's years {self.years[0]}-{self.years[1]}: "
                f"{known.min()} .. {known.max()}"
            )
        return days

    # ----------------------------------------------------------------- the four clocks
    def add_business_hours(self, start: Any, hours: float | np.ndarray) -> Any:
        """Earliest instant at which `hours` of business time have passed since start."""
        ns, mask = self.to_utc_ns(start)
        amount = np.round(np.asarray(hours, dtype=float) * NS_PER_HOUR).astype(np.int64)
        out = self._add_on_clock(self._business, ns, mask, amount)
        return self._wrap(start, out, mask)

    def add_working_days(self, start: Any, days: int | np.ndarray) -> Any:
        """Closing time of the `days`-th working day after the calendar day of start."""
        ns, mask = self.to_utc_ns(start)
        out = self._working_day_deadline(ns, mask, np.asarray(days))
        return self._wrap(start, out, mask)

    def add(self, start: Any, duration: Duration) -> Any:
        """start + duration on the duration's own clock."""
        ns, mask = self.to_utc_ns(start)
        out = self._deadline(ns, mask, duration)
        return self._wrap(start, out, mask)

    def business_time_between(self, start: Any, end: Any) -> Any:
        """Business time from start to end (negative when end < start) as Timedelta."""
        return self.elapsed(start, end, "business_hours")

    def elapsed(self, start: Any, end: Any, unit: str, pauses: pd.DataFrame | None = None) -> Any:
        """Time from start to end on the clock of `unit`, less paused time (see `pauses`)."""
        s, smask = self.to_utc_ns(start)
        e, emask = self.to_utc_ns(end)
        mask = smask | emask
        clock = self.clock(unit)
        value = clock.value(np.where(mask, 0, e)) - clock.value(np.where(mask, 0, s))
        if pauses is not None and len(pauses):
            value = value - self._paused_between(clock, s, e, mask, pauses)
        out = pd.Series(pd.to_timedelta(np.where(mask, _NAT, value).view("timedelta64[ns]")))
        if isinstance(start, pd.Series):
            out.index = start.index
        return out.iloc[0] if _is_scalar(start) else out

    def deadline(self, start: Any, duration: Duration, pauses: pd.DataFrame | None = None) -> Any:
        """start + duration, with paused time not counting toward it.

        `pauses` has columns row (position in `start`), paused_at, resumed_at (NaT = still
        paused: the caller fills the cut-off). A pause that begins before the running deadline
        pushes it back by the pause's length on the target's clock."""
        ns, mask = self.to_utc_ns(start)
        out = self._deadline(ns, mask, duration)
        if pauses is not None and len(pauses):
            out = self._extend_for_pauses(self.clock(duration.unit), ns, mask, out, pauses)
        return self._wrap(start, out, mask)

    # ----------------------------------------------------------------- internals
    def _deadline(self, ns: np.ndarray, mask: np.ndarray, duration: Duration) -> np.ndarray:
        if duration.unit == "working_days":
            if not float(duration.amount).is_integer():
                raise CalendarError(f"working_days must be whole, got {duration}")
            return self._working_day_deadline(ns, mask, np.asarray(int(duration.amount)))
        per = {"business_hours": NS_PER_HOUR, "hours": NS_PER_HOUR, "days": NS_PER_DAY}
        amount = np.int64(round(duration.amount * per[duration.unit]))
        return self._add_on_clock(self.clock(duration.unit), ns, mask, amount)

    def _add_on_clock(
        self, clock: _Clock, ns: np.ndarray, mask: np.ndarray, amount: np.ndarray
    ) -> np.ndarray:
        safe = np.where(mask, self._business.starts[0], ns)
        amount = np.broadcast_to(amount, safe.shape)
        moved = clock.inverse(clock.value(safe) + np.maximum(amount, 1))
        return np.where(mask, _NAT, np.where(amount > 0, moved, safe))

    def _working_day_deadline(self, ns: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
        if (n < 1).any():
            raise CalendarError("working_days targets must be >= 1")
        days = self._local_dates(np.where(mask, self._business.starts[0], ns), mask)
        days = np.where(mask, self.working_days[0], days)
        target = self.add_working_days_to_date(days, np.broadcast_to(n, days.shape))
        closing = target.astype("datetime64[ns]") + np.timedelta64(self.policy.closing, "m")
        return np.where(mask, _NAT, self._localize(closing))

    def _merged_pauses(
        self, pauses: pd.DataFrame, start: np.ndarray, mask: np.ndarray
    ) -> pd.DataFrame:
        """Pauses per row, clipped to after the row's start, overlaps merged, in time order."""
        row = pauses["row"].to_numpy(dtype=np.int64)
        p, pmask = self.to_utc_ns(pauses["paused_at"])
        r, rmask = self.to_utc_ns(pauses["resumed_at"])
        if rmask.any():
            raise CalendarError("open pauses (resumed_at NaT) must be closed at the cut-off first")
        keep = ~pmask & ~mask[row]
        frame = pd.DataFrame({"row": row[keep], "begin": np.maximum(p[keep], start[row[keep]]),
                              "end": r[keep]})
        frame = frame[frame["end"] > frame["begin"]].sort_values(["row", "begin"], kind="stable")
        if frame.empty:
            return frame
        reach = frame.groupby("row")["end"].cummax()
        prev_reach = reach.groupby(frame["row"]).shift()
        new = prev_reach.isna() | (frame["begin"] > prev_reach)
        group = new.cumsum()
        merged = frame.groupby(group).agg(row=("row", "first"), begin=("begin", "first"),
                                          end=("end", "max"))
        merged["k"] = merged.groupby("row").cumcount()
        return merged.reset_index(drop=True)

    def _extend_for_pauses(
        self, clock: _Clock, start: np.ndarray, mask: np.ndarray, deadline: np.ndarray,
        pauses: pd.DataFrame,
    ) -> np.ndarray:
        merged = self._merged_pauses(pauses, start, mask)
        out = deadline.copy()
        for k in range(int(merged["k"].max()) + 1 if len(merged) else 0):
            step = merged[merged["k"] == k]
            rows = step["row"].to_numpy()
            begin = step["begin"].to_numpy()
            end = step["end"].to_numpy()
            current = out[rows]
            hit = begin < current
            if not hit.any():
                continue
            rows, begin, end, current = rows[hit], begin[hit], end[hit], current[hit]
            paused = clock.value(end) - clock.value(begin)
            extended = clock.inverse(clock.value(current) + np.maximum(paused, 1))
            out[rows] = np.where(paused > 0, extended, current)
        return out

    def _paused_between(
        self, clock: _Clock, start: np.ndarray, end: np.ndarray, mask: np.ndarray,
        pauses: pd.DataFrame,
    ) -> np.ndarray:
        merged = self._merged_pauses(pauses, start, mask)
        total = np.zeros(len(start), dtype=np.int64)
        if merged.empty:
            return total
        rows = merged["row"].to_numpy()
        upper = end[rows]
        begin = np.minimum(merged["begin"].to_numpy(), upper)
        finish = np.minimum(merged["end"].to_numpy(), upper)
        np.add.at(total, rows, clock.value(finish) - clock.value(begin))
        return total
