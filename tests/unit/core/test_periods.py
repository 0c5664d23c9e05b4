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


# ================================================================= quarters ('2026-Q3')
def test_a_quarter_starts_on_its_first_month_and_ends_on_the_first_of_the_next_quarter():
    from revisit.core.periods import month_start

    assert month_start("2026-Q3") == pd.Timestamp("2026-07-01")
    assert month_end("2026-Q3") == pd.Timestamp("2026-10-01")
    assert month_start("2026-Q1") == pd.Timestamp("2026-01-01")
    assert month_end("2026-Q1") == pd.Timestamp("2026-04-01")


def test_the_fourth_quarter_ends_on_the_first_of_january_of_the_next_year():
    from revisit.core.periods import next_month

    assert month_end("2026-Q4") == pd.Timestamp("2027-01-01")
    assert month_cutoff_date("2026-Q4") == dt.date(2027, 1, 1)
    assert next_month("2026-Q4") == "2027-Q1"


def test_a_month_belongs_to_the_quarter_of_its_three_months():
    from revisit.core.periods import quarter_months, quarter_of

    assert [quarter_of(f"2026-{m:02d}") for m in range(1, 13)] == [
        f"2026-Q{q}" for q in (1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4)]
    assert quarter_months("2026-Q3") == ["2026-07", "2026-08", "2026-09"]
    assert quarter_months("2026-Q4") == ["2026-10", "2026-11", "2026-12"]


def test_only_march_june_september_and_december_end_a_quarter():
    from revisit.core.periods import ends_quarter

    assert [m for m in range(1, 13) if ends_quarter(f"2026-{m:02d}")] == [3, 6, 9, 12]
    assert not ends_quarter("2026-Q3")  # a quarter label is not a month


def test_quarter_trends_count_quarters_back_across_a_year():
    assert trend_months("2026-Q2", 4) == ["2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2"]
    assert trend_months("2026-Q1", 1) == ["2026-Q1"]


def test_a_label_says_its_unit_and_a_bad_quarter_is_refused():
    import pytest

    from revisit.core.periods import MONTH, QUARTER, QUARTER_PATTERN, period_unit, quarter_months

    assert period_unit("2026-Q3") == QUARTER and period_unit("2026-09") == MONTH
    assert not QUARTER_PATTERN.match("2026-Q5") and not QUARTER_PATTERN.match("2026-Q0")
    with pytest.raises(ValueError, match="not a quarter"):
        quarter_months("2026-Q5")
