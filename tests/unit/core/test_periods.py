"""Month arithmetic: one cut-off for the extract, the KPIs, the quality history and the report."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from revisit.core.periods import (
    MONTH_PATTERN,
    month_cutoff_date,
    month_end,
    previous_month,
    trend_months,
)


def test_month_helpers():
    assert trend_months("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]
    assert month_end("2026-12") == pd.Timestamp("2027-01-01")


def test_a_month_ends_at_the_first_of_the_next_month_across_a_year_and_february():
    assert month_cutoff_date("2026-12") == dt.date(2027, 1, 1)
    assert month_cutoff_date("2028-02") == dt.date(2028, 3, 1)  # a leap year's 29 days


def test_a_monthly_run_reviews_the_month_before_its_date():
    assert previous_month(dt.date(2026, 11, 2)) == "2026-10"
    assert previous_month(dt.date(2027, 1, 1)) == "2026-12"


def test_only_real_months_match_the_month_pattern():
    assert MONTH_PATTERN.match("2026-10")
    assert not MONTH_PATTERN.match("2026-13") and not MONTH_PATTERN.match("2026-00")
