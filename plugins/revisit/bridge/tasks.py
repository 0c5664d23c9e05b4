"""The bridge between Airflow task contexts and the pure domain functions.

Tasks call these with their context; everything returned is small (paths and counts), because
XCom must never carry customer rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum

from revisit.config.paths import output_root
from revisit.config.policy import Policy, load_policy

log = logging.getLogger(__name__)

CRM_CONN_ID = "crm_db"
RESULTS_CONN_ID = "revisit_results"


def call_date(context: dict[str, Any], policy: Policy) -> dt.date:
    """Call date D: params.call_date when given, else the logical date in the business zone."""
    override = (context.get("params") or {}).get("call_date")
    if override:
        return dt.date.fromisoformat(str(override))
    logical = context.get("logical_date") or context["dag_run"].run_after
    local = pendulum.instance(logical).in_timezone(policy.calendar.timezone)
    return dt.date(local.year, local.month, local.day)  # plain date: DB drivers reject pendulum's


def report_month(context: dict[str, Any], policy: Policy) -> str:
    """Report month M: params.month when given, else the month before the run's date."""
    override = (context.get("params") or {}).get("month")
    if override:
        return dt.date.fromisoformat(f"{override}-01").strftime("%Y-%m")
    first = call_date(context, policy).replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def _snapshot(cutoff: dt.date, partition: str, policy: Policy) -> dict[str, Any]:
    from revisit.bridge.connections import airflow_sqlalchemy_url
    from revisit.io.extract import extract_snapshot, snapshot_dir

    target = snapshot_dir(output_root(), partition)
    counts = extract_snapshot(airflow_sqlalchemy_url(CRM_CONN_ID), cutoff, target,
                              business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    log.info("snapshot %s (CRM as of %s 00:00): %s", partition, cutoff, counts)
    return {"partition": partition, "path": str(target), "rows": counts}


def extract_daily(context: dict[str, Any]) -> dict[str, Any]:
    """Snapshot the CRM (connection crm_db) as of D 00:00 local into snapshots/D."""
    policy = load_policy()
    day = call_date(context, policy)
    return _snapshot(day, day.isoformat(), policy)


def extract_monthly(context: dict[str, Any]) -> dict[str, Any]:
    """Snapshot the CRM as of the first day after month M into snapshots/M."""
    policy = load_policy()
    month = report_month(context, policy)
    first = dt.date.fromisoformat(f"{month}-01")
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return _snapshot(after, month, policy)


def _daily_parts(context: dict[str, Any]) -> tuple[Any, Policy]:
    from revisit.stages.daily import Partitions

    policy = load_policy()
    return Partitions(output_root(), call_date(context, policy)), policy


def _calendar(policy: Policy):
    from revisit.rules.calendar import BusinessCalendar

    return BusinessCalendar(policy.calendar)


def quality_gate(context: dict[str, Any]) -> dict[str, Any]:
    """Quality gate; a stop fails the task without retries (the data will not change)."""
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.quality.gate import QualityStop
    from revisit.stages.daily import run_quality

    parts, policy = _daily_parts(context)
    try:
        return run_quality(parts, policy)
    except QualityStop as stop:
        raise AirflowFailException(str(stop)) from None


def call_lists(context: dict[str, Any]) -> dict[str, Any]:
    from revisit.stages.daily import run_call_lists

    parts, policy = _daily_parts(context)
    return run_call_lists(parts, policy, _calendar(policy))


def sla(context: dict[str, Any]) -> dict[str, Any]:
    from revisit.stages.daily import run_sla

    parts, policy = _daily_parts(context)
    return run_sla(parts, policy, _calendar(policy))


def results_url() -> str:
    """Connection revisit_results when defined, else results.sqlite under the output root."""
    from revisit.bridge.connections import ConnectionMissingError, airflow_sqlalchemy_url
    from revisit.io.results import default_results_url

    try:
        return airflow_sqlalchemy_url(RESULTS_CONN_ID).render_as_string(hide_password=False)
    except ConnectionMissingError:
        return default_results_url(output_root())


def sending(context: dict[str, Any]) -> bool:
    """params.send_email (default on): off renders and records without e-mailing anyone."""
    value = (context.get("params") or {}).get("send_email", True)
    return value not in (False, "false", "False", 0)


def sla_digest(context: dict[str, Any]) -> dict[str, Any]:
    """The SLA digest of D to every department head with something to report, once."""
    from airflow.sdk.exceptions import AirflowFailException

    from revisit.delivery.mail import SmtpHookTransport
    from revisit.stages.daily import DigestNotSent, send_sla_digests

    parts, policy = _daily_parts(context)
    if not sending(context):
        log.info("params.send_email is off: no digest is sent for %s", parts.day)
        return {"sent": False}
    try:
        return send_sla_digests(parts, policy, results_url(), SmtpHookTransport())
    except DigestNotSent as error:
        if not error.retryable:
            raise AirflowFailException(str(error)) from None
        raise


def publish(context: dict[str, Any]) -> dict[str, Any]:
    from revisit.stages.daily import publish_results

    parts, _ = _daily_parts(context)
    return publish_results(parts, results_url())
