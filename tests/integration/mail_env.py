"""What the daily e-mail integration tests share besides the fixtures of conftest.py: the SMTP
connection of the local server, and the daily stages up to call lists + SLA as the DAG's tasks
call them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

D = dt.date(2026, 11, 20)  # a Friday; cut-off Fri 00:00, previous Thu 00:00
CONTEXT = {"params": {"call_date": D.isoformat()}}


def smtp_connection(port: int) -> str:
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                       "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5,
                                 "from_email": "revisit@example.com", "retry_limit": 0}})


def run_daily(crm: Path, root: Path, policy, calendar):
    """extract -> quality gate -> call lists + sla (the agent e-mail lists the handler's
    due-today tickets from sla/D/), as the daily DAG's tasks call them."""
    from revisit.io.extract import extract_snapshot
    from revisit.stages.daily import run_call_lists, run_quality, run_sla
    from revisit.stages.partitions import DayPartitions

    parts = DayPartitions(root, D)
    extract_snapshot(f"sqlite:///{crm}", D, parts.snapshot,
                     business_tz=policy.calendar.timezone, source_tz=policy.source_tz)
    run_quality(parts, policy)
    run_call_lists(parts, policy, calendar)
    run_sla(parts, policy, calendar)
    return parts
