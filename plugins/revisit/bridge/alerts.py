"""Deadline Alert callbacks (Airflow 3): run in the triggerer when a DAG run is late.

The daily DAG declares a DeadlineAlert at policy `schedule.call_lists_ready_by` (08:30 local by
default): agents start calling then, so a run still going at that hour means lists are late.
The callback only logs (ids and times, no customer data); route the warning wherever the
team watches (Airflow's task logs, or swap in a Notifier such as Slack or SMTP).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


async def call_lists_late(context: dict[str, Any], **kwargs: Any) -> str:
    """Warn that the daily run has not finished by the hour call lists are due."""
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id", "?")
    dag_id = getattr(dag_run, "dag_id", None) or context.get("dag_id", "revisit_daily")
    from revisit.config.policy import load_policy

    policy = load_policy()
    minutes = policy.schedule.call_lists_ready_by
    ready_by = f"{minutes // 60:02d}:{minutes % 60:02d} {policy.calendar.timezone}"
    message = (f"{dag_id} run {run_id} has not finished by {ready_by}: today's call lists "
               "are late; agents are waiting for them")
    log.warning(message)
    return message
