"""Reporting periods: a call date D and a month M, and the cut-off each run sees the CRM at.

One place for the month arithmetic, because the monthly extract, the KPIs, the quality history
query and the report's cut-off line must agree on where a month ends: the 1st of M+1 00:00
(business-local, exclusive).
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def month_start(month: str) -> pd.Timestamp:
    """'2026-10' -> 2026-10-01 00:00 (naive business-local)."""
    return pd.Timestamp(dt.date.fromisoformat(f"{month}-01"))


def next_month(month: str) -> str:
    return (month_start(month) + pd.offsets.MonthBegin(1)).strftime("%Y-%m")


def month_end(month: str) -> pd.Timestamp:
    """The cut-off of month M: the 1st of M+1 00:00 (exclusive end)."""
    return month_start(next_month(month))


def month_cutoff_date(month: str) -> dt.date:
    """The calendar day whose 00:00 is M's cut-off (the monthly snapshot's 'as of' date)."""
    return month_end(month).date()


def previous_month(day: dt.date) -> str:
    """The month before the one `day` falls in: what a monthly run on `day` reviews."""
    return (day.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def trend_months(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first."""
    start = month_start(month)
    return [(start - pd.offsets.MonthBegin(k)).strftime("%Y-%m") if k else month
            for k in range(count - 1, -1, -1)]


__all__ = ["MONTH_PATTERN", "month_cutoff_date", "month_end", "month_start", "next_month",
           "previous_month", "trend_months"]
