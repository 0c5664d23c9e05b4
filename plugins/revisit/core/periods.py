"""Reporting periods: a call date D, a month M or a quarter Q, and the cut-off each run sees
the CRM at.

One place for the period arithmetic, because the monthly extract, the KPIs, the quality history
query and the report's cut-off line must agree on where a month ends: the 1st of M+1 00:00
(business-local, exclusive).

A quarter is labelled '2026-Q3' (DESIGN.md: the quarterly review that policy 004 asks for,
定期考核每月或每季度进行一次). The month functions below take either label, so the KPIs of a
quarter are the monthly KPIs computed with quarter labels (revisit.rules.kpis): '2026-Q3'
starts 2026-07-01 00:00 and ends 2026-10-01 00:00; Q4 ends on the 1st of January of the next
year.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # a call date's shape; a real day: fromisoformat
MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
QUARTER_PATTERN = re.compile(r"^(\d{4})-Q([1-4])$")
MONTH, QUARTER = "M", "Q"  # the units of period labels (period_unit)


def period_unit(label: str) -> str:
    """QUARTER for '2026-Q3', MONTH for '2026-10' (anything else is taken as a month)."""
    return QUARTER if QUARTER_PATTERN.match(label) else MONTH


def quarter_of(month: str) -> str:
    """The quarter a month falls in: '2026-08' -> '2026-Q3'."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year}-Q{(number - 1) // 3 + 1}"


def quarter_months(quarter: str) -> list[str]:
    """'2026-Q3' -> ['2026-07', '2026-08', '2026-09']."""
    year, number = _quarter(quarter)
    return [f"{year}-{3 * (number - 1) + k:02d}" for k in (1, 2, 3)]


def ends_quarter(month: str) -> bool:
    """Whether `month` is the last of its quarter (03, 06, 09, 12): the monthly run of such a
    month also reviews the quarter."""
    return period_unit(month) == MONTH and int(month[5:7]) % 3 == 0


def _quarter(label: str) -> tuple[int, int]:
    found = QUARTER_PATTERN.match(label)
    if not found:
        raise ValueError(f"not a quarter label (YYYY-Qn): {label!r}")
    return int(found.group(1)), int(found.group(2))


def month_start(month: str) -> pd.Timestamp:
    """'2026-10' -> 2026-10-01 00:00 (naive business-local); '2026-Q3' -> 2026-07-01 00:00."""
    if period_unit(month) == QUARTER:
        month = quarter_months(month)[0]
    return pd.Timestamp(dt.date.fromisoformat(f"{month}-01"))


def next_month(month: str) -> str:
    """The period after `month`, of its unit: '2026-12' -> '2027-01', '2026-Q4' -> '2027-Q1'."""
    if period_unit(month) == QUARTER:
        year, number = _quarter(month)
        return f"{year + number // 4}-Q{number % 4 + 1}"
    return (month_start(month) + pd.offsets.MonthBegin(1)).strftime("%Y-%m")


def month_end(month: str) -> pd.Timestamp:
    """The cut-off of month M: the 1st of M+1 00:00 (exclusive end); of a quarter, the 1st of
    the month after its last."""
    return month_start(next_month(month))


def month_cutoff_date(month: str) -> dt.date:
    """The calendar day whose 00:00 is M's cut-off (the monthly snapshot's 'as of' date)."""
    return month_end(month).date()


def previous_month(day: dt.date) -> str:
    """The month before the one `day` falls in: what a monthly run on `day` reviews."""
    return (day.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def trend_months(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first (quarters, for a quarter label)."""
    if period_unit(month) == QUARTER:
        out = [month]
        while len(out) < count:
            year, number = _quarter(out[0])
            out.insert(0, f"{year - (number == 1)}-Q{(number - 2) % 4 + 1}")
        return out
    start = month_start(month)
    return [(start - pd.offsets.MonthBegin(k)).strftime("%Y-%m") if k else month
            for k in range(count - 1, -1, -1)]


__all__ = ["DAY_PATTERN", "MONTH", "MONTH_PATTERN", "QUARTER", "QUARTER_PATTERN", "ends_quarter",
           "month_cutoff_date", "month_end", "month_start", "next_month", "period_unit",
           "previous_month", "quarter_months", "quarter_of", "trend_months"]
