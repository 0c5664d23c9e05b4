"""A run param no retry can fix (params.call_date, params.month) fails the task at once, naming
the param and the value, before any work; a good one (or none) gives the run's period."""

from __future__ import annotations

import datetime as dt
import inspect
import re

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from revisit.bridge import tasks
from revisit.core.errors import BadParam, RevisitError

BAD_CALL_DATES = ["2026-02-30", "yesterday", "2026-13-01", "2026-2-3", "20261120", "2026-W47-5",
                  "2026-11-20T06:00", 20261120]
BAD_MONTHS = ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "october", 202610]

# Every task function that reads the period, with the arguments after the context.
DAILY = {"extract_daily": (), "quality_gate": (), "call_lists": (), "agent_mail": (), "sla": (),
         "sla_digest": (), "publish": ()}
MONTHLY = {"extract_monthly": (), "monthly_kpis": (), "render": ("D01",), "send": ("D01",),
           "summary": ()}
# Where the work starts: the CRM snapshot, the results database, the mail transport, the stages.
WORK = {
    tasks: ("_snapshot", "results_url", "_transport", "_calendar"),
    "revisit.stages.daily": ("run_quality", "run_call_lists", "send_call_lists", "run_sla",
                             "send_sla_digests", "publish_results"),
    "revisit.stages.monthly": ("compute_kpis", "render_department", "send_department",
                               "summarize"),
}
HELPERS = {"call_date", "report_month", "sending", "results_url", "fail_fast"}


def daily_context(call_date=None) -> dict:
    return {"params": {"call_date": call_date, "send_email": True},
            "logical_date": pendulum.datetime(2026, 11, 19, 22, 30, tz="UTC")}  # 11-20 06:30 CST


def monthly_context(month=None) -> dict:
    return {"params": {"month": month, "send_email": True},
            "logical_date": pendulum.datetime(2026, 11, 1, 23, tz="UTC")}  # 11-02 07:00 CST


@pytest.fixture
def work(monkeypatch) -> list[tuple[str, str | None]]:
    """Replace every place work starts with a recorder: (what, the period it was given)."""
    import importlib

    calls: list[tuple[str, str | None]] = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append((name, getattr(args[0], "period", None) if args else None))
            return "sqlite://" if name == "results_url" else {}
        return record

    for module, names in WORK.items():
        target = importlib.import_module(module) if isinstance(module, str) else module
        for name in names:
            monkeypatch.setattr(target, name, recorder(name))
    return calls


@pytest.mark.parametrize("value", ["2026-11-20", "2024-02-29"])
def test_a_real_call_date_is_the_runs_day(policy, value):
    assert tasks.call_date(daily_context(value), policy) == dt.date.fromisoformat(value)


def test_without_call_date_the_day_is_the_logical_date_in_the_business_zone(policy):
    assert tasks.call_date(daily_context(), policy) == dt.date(2026, 11, 20)


@pytest.mark.parametrize("value", BAD_CALL_DATES, ids=str)
def test_a_call_date_that_is_no_day_is_a_bad_param_naming_it(policy, value):
    with pytest.raises(BadParam, match=re.escape(f"params.call_date = {value!r}")) as caught:
        tasks.call_date(daily_context(value), policy)
    assert caught.value.retryable is False and caught.value.param == "call_date"


@pytest.mark.parametrize("value", ["2026-10", "2026-01", "2026-12"])
def test_a_real_month_is_the_report_month(policy, value):
    assert tasks.report_month(monthly_context(value), policy) == value


def test_without_month_the_report_month_is_the_one_before_the_run(policy):
    assert tasks.report_month(monthly_context(), policy) == "2026-10"


@pytest.mark.parametrize("value", BAD_MONTHS, ids=str)
def test_a_month_that_is_no_month_is_a_bad_param_naming_it(policy, value):
    with pytest.raises(BadParam, match=re.escape(f"params.month = {value!r}")) as caught:
        tasks.report_month(monthly_context(value), policy)
    assert caught.value.retryable is False and caught.value.param == "month"


@pytest.mark.parametrize("name", DAILY)
@pytest.mark.parametrize("value", ["2026-02-30", "yesterday"])
def test_daily_task_with_a_bad_call_date_fails_without_retries_before_any_work(work, name,
                                                                               value):
    with pytest.raises(AirflowFailException, match=rf"params\.call_date = '{value}'"):
        getattr(tasks, name)(daily_context(value), *DAILY[name])
    assert work == []


@pytest.mark.parametrize("name", MONTHLY)
@pytest.mark.parametrize("value", ["2026-13", "2026-1"])
def test_monthly_task_with_a_bad_month_fails_without_retries_before_any_work(work, name, value):
    with pytest.raises(AirflowFailException, match=rf"params\.month = '{value}'"):
        getattr(tasks, name)(monthly_context(value), *MONTHLY[name])
    assert work == []


@pytest.mark.parametrize("name", DAILY)
def test_daily_task_with_a_good_call_date_works_on_that_day(work, name):
    getattr(tasks, name)(daily_context("2026-11-18"), *DAILY[name])
    periods = {period for _, period in work if period}
    assert periods == {"2026-11-18"}, work


@pytest.mark.parametrize("name", MONTHLY)
def test_monthly_task_with_a_good_month_works_on_that_month(work, name):
    getattr(tasks, name)(monthly_context("2026-09"), *MONTHLY[name])
    periods = {period for _, period in work if period}
    assert periods == {"2026-09"}, work


def test_every_task_function_taking_a_context_fails_fast():
    """A new task function (it reads the period) must be wrapped too."""
    for name in sorted(set(tasks.__all__) - HELPERS):
        function = getattr(tasks, name)
        if next(iter(inspect.signature(function).parameters), None) != "context":
            continue
        assert hasattr(function, "__wrapped__"), f"{name} is not wrapped in @fail_fast"
    assert set(DAILY) | set(MONTHLY) <= set(tasks.__all__)


def test_a_retryable_error_is_left_for_airflow_to_retry():
    @tasks.fail_fast
    def flaky():
        raise RevisitError("the CRM is restarting")

    with pytest.raises(RevisitError, match="restarting"):
        flaky()
