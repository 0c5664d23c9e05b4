"""The data team's alerts (DESIGN.md "Deployment": alerts reach people), as Airflow notifiers.

- `TaskFailed` — every task's `on_failure_callback` in both DAGs (their `default_args`). Airflow
  calls it in the worker once per task instance that ends FAILED, i.e. after its last try (a
  try that will be retried is UP_FOR_RETRY and calls `on_retry_callback`, which is not set).
  The e-mail names DAG, task (and map index), run, logical date, try, the error's first line
  and, when Airflow's `[api] base_url` is set, the task's log page. A quality stop
  (revisit.quality.errors.QualityStop: the day no lists go out) says so, with the gate's
  numbers per table from quality/<period>/summary.csv: rows, failed rows, share, limit.
- `CallListsLate` — the daily DAG's Deadline Alert at `schedule.call_lists_ready_by`, run by
  the triggerer. Airflow 3.3.2 (airflow.models.deadline.Deadline.handle_miss) gives it
  `context={"dag_run": <DAGRunResponse as JSON: dag_run_id, dag_id, run_type, state,
  logical_date, ...>, "deadline": {"id": ..., "deadline_time": ...}}`; the triggerer
  (airflow.triggers.callback.CallbackTrigger) builds the notifier with that context and awaits
  it. Only the scheduled run of the day is late for the agents: a manual run, a backfill or
  `airflow dags test` of a past date has missed its deadline the moment it starts, and says
  nothing. Airflow handles a missed deadline once, so a run gets at most one such e-mail.

Nothing here reads customer data: ids, states, times and the gate's counts only; an error's
first line (our stages' messages carry ids at most), never the task log.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from revisit.bridge.notify import Alert, DataTeamNotifier, base_url, field_of, one_line

log = logging.getLogger(__name__)

SCHEDULED = "scheduled"  # airflow.utils.types.DagRunType.SCHEDULED
MONTHLY_DAG_ID = "revisit_monthly"


# ================================================================= helpers
def _timezone() -> str:
    from revisit.config.policy import load_policy

    return load_policy().calendar.timezone


def local_time(value: Any, tz: str) -> str:
    """An instant (datetime or ISO text, as a deadline callback gets it) in the business zone."""
    if value in (None, ""):
        return "none"
    import pendulum

    instant = pendulum.parse(value) if isinstance(value, str) else pendulum.instance(value)
    return instant.in_timezone(tz).isoformat()


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def error_line(error: object) -> str:
    """`Type: first line` of a task's error; the type of the stage's own error (a RevisitError
    under Airflow's AirflowFailException) when there is one. Never more than the first line."""
    if error is None or error == "":
        return "(no error recorded)"
    if not isinstance(error, BaseException):
        return one_line(str(error).strip().splitlines()[0] if str(error).strip() else error, 500)
    from revisit.core.errors import RevisitError

    ours = [e for e in _chain(error) if isinstance(e, RevisitError)]
    name = type(ours[0] if ours else error).__name__
    lines = [line for line in str(error).splitlines() if line.strip()]
    return one_line(f"{name}: {lines[0]}" if lines else name, 500)


def is_quality_stop(error: object) -> bool:
    from revisit.quality.errors import QualityStop

    return isinstance(error, BaseException) and any(isinstance(e, QualityStop)
                                                    for e in _chain(error))


def gate_table(context: Mapping[str, Any], dag_id: str) -> tuple[str | None, list[list[str]]]:
    """(period, the gate's numbers per table) of the run, from quality/<period>/summary.csv:
    a header row, then table, rows, failed, share, limit, verdict. ([], period) when the
    summary cannot be read (the error line still has the stop's numbers)."""
    from revisit.bridge.workspace import workspace

    try:
        with workspace():  # an output root on object storage: the summary is fetched
            return _gate_table(context, dag_id)
    except Exception:  # the store unreachable, no room for a mirror: alert without the table
        log.exception("cannot read the quality summary for the quality-stop alert")
        return None, []


def _gate_table(context: Mapping[str, Any], dag_id: str) -> tuple[str | None, list[list[str]]]:
    from revisit.bridge import tasks

    try:
        parts, policy = (tasks.month_partitions(context) if dag_id == MONTHLY_DAG_ID
                         else tasks.day_partitions(context))
    except Exception:  # a bad param, a broken policy: the error line says what happened
        log.exception("cannot tell the run's period for the quality-stop alert")
        return None, []
    limit = policy.quality.max_failure_share
    summary = parts.quality / "summary.csv"
    try:
        tasks.needs(summary)
        text = summary.read_text(encoding="utf-8")
    except Exception as error:  # missing, unreadable, or the store unreachable
        log.warning("quality summary of %s not readable for the alert: %s", parts.period, error)
        return parts.period, []
    table = [["table", "rows", "failed", "share", "limit", ""]]
    for row in csv.DictReader(io.StringIO(text)):
        share = float(row["failure_share"] or 0)
        stopped = share > limit or row["passed"] == "False"
        table.append([row["table"], row["rows"], row["failed_rows"], f"{100 * share:.1f} %",
                      f"{100 * limit:.1f} %", "STOP" if stopped else "ok"])
    return parts.period, table


# ================================================================= a failed task
class TaskFailed(DataTeamNotifier):
    """`on_failure_callback` of every task: a task instance failed after its last try."""

    def compose(self, context: Mapping[str, Any]) -> Alert:
        ti = context.get("task_instance") or context.get("ti")
        dag_run = context.get("dag_run")
        dag_id = str(field_of(ti, "dag_id") or field_of(dag_run, "dag_id") or "?")
        task_id = str(field_of(ti, "task_id") or "?")
        run_id = str(field_of(ti, "run_id") or field_of(dag_run, "run_id")
                     or context.get("run_id") or "?")
        map_index = field_of(ti, "map_index")
        mapped = map_index is not None and int(map_index) >= 0
        label = field_of(ti, "rendered_map_index") if mapped else None
        task = f"{task_id} [map index {map_index}{f': {label}' if label else ''}]" \
            if mapped else task_id
        try_number = field_of(ti, "try_number")
        max_tries = field_of(ti, "max_tries")
        tries = f"{try_number} of {int(max_tries) + 1}" if try_number and max_tries is not None \
            else str(try_number or "?")
        early = bool(try_number and max_tries is not None and try_number <= int(max_tries))
        error = context.get("exception")
        tz = _timezone()
        facts = [
            ("DAG", dag_id), ("Task", task), ("Run", run_id),
            ("Run type", str(field_of(dag_run, "run_type") or "?")),
            ("Logical date", local_time(context.get("logical_date")
                                        or field_of(dag_run, "logical_date"), tz)),
            ("Try", f"{tries} (failed at once: no retry can fix this error)" if early
             else tries),
            ("Error", error_line(error)),
        ]
        url = base_url()
        if url and ti is not None and hasattr(ti, "log_url"):
            facts.append(("Log", str(ti.log_url)))
        key = f"{dag_id}|{run_id}|{task_id}|{map_index}|{try_number}"
        if is_quality_stop(error):
            period, table = gate_table(context, dag_id)
            day = period or "the run's date"
            what = ("no call lists, SLA digests or results go out" if dag_id != MONTHLY_DAG_ID
                    else "no monthly report goes out")
            text = [f"The quality gate stopped the run for {day}: {what} until the CRM data "
                    "is fixed and the run is cleared. Rows and reasons: quality/"
                    f"{period or '<period>'}/ in the output root (summary.md, quarantine.csv)."]
            if not table:
                text.append("The gate's summary could not be read; its numbers are in the "
                            "error above.")
            return Alert("quality_stop", key,
                         f"[Revisit] QUALITY STOP {dag_id} {day}: {what} ({task_id} failed, "
                         f"run {run_id})", facts, text, table)
        return Alert("task_failed", key,
                     f"[Revisit] FAILED {dag_id}.{task_id} (run {run_id}, try {tries})", facts,
                     ["The task failed after its last try; the tasks that need its result "
                      "do not run. Fix the cause, then clear the task to run it again."])


# ================================================================= lists late
class CallListsLate(DataTeamNotifier):
    """The daily DAG's Deadline Alert (AsyncCallback): its run is not done at the hour call
    lists are due (policy schedule.call_lists_ready_by)."""

    def compose(self, context: Mapping[str, Any]) -> Alert | str:
        from revisit.config.policy import load_policy

        dag_run = context.get("dag_run") or {}
        deadline = context.get("deadline") or {}
        dag_id = str(field_of(dag_run, "dag_id") or "revisit_daily")
        run_id = str(field_of(dag_run, "dag_run_id", "run_id") or "?")
        run_type = str(field_of(dag_run, "run_type") or "?")
        if run_type != SCHEDULED:
            return (f"{dag_id} run {run_id} ({run_type}) missed its deadline: only the "
                    "scheduled run of the day is late for the agents")
        policy = load_policy()
        tz = policy.calendar.timezone
        minutes = policy.schedule.call_lists_ready_by
        ready_by = f"{minutes // 60:02d}:{minutes % 60:02d} {tz}"
        state = str(field_of(dag_run, "state") or "?")
        facts = [
            ("DAG", dag_id), ("Run", run_id), ("Run type", run_type),
            ("Logical date", local_time(field_of(dag_run, "logical_date"), tz)),
            ("State", state),
            ("Started", local_time(field_of(dag_run, "start_date"), tz)),
            ("Deadline", local_time(field_of(deadline, "deadline_time"), tz)),
        ]
        url = base_url()
        if url:
            facts.append(("Run page", f"{url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"))
        text = [f"The scheduled run has not finished by {ready_by} (policy "
                "schedule.call_lists_ready_by): today's call lists are late and the agents are "
                "waiting for them."]
        text.append({
            "failed": "The run has failed (its failed task was e-mailed separately): no lists "
                      "go out until the cause is fixed and the run is cleared.",
            "queued": "The run has not started: check the scheduler and the workers.",
        }.get(state, "The run is still going."))
        return Alert("call_lists_late", f"{dag_id}|{run_id}",
                     f"[Revisit] LATE {dag_id}: call lists not ready by {ready_by} "
                     f"(run {run_id}, {state})", facts, text)


# Deadlines created before the notifier replaced the old coroutine still name this path.
call_lists_late = CallListsLate

__all__ = ["CallListsLate", "TaskFailed", "call_lists_late", "error_line", "gate_table",
           "is_quality_stop", "local_time"]


# ================================================================= lists that cannot be mailed
class ListsNotMailed(DataTeamNotifier):
    """After the agent_mail task: active agents whose call list of D could not be e-mailed
    because the CRM has no valid address for them (ids only; the others got theirs)."""

    def __init__(self, day: str, agent_ids: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.day, self.agent_ids = day, sorted(agent_ids)

    def compose(self, context: Mapping[str, Any]) -> Alert | str:
        if not self.agent_ids:
            return "every agent with a list has a valid address"
        dag_run = context.get("dag_run")
        run_id = str(field_of(dag_run, "run_id") or context.get("run_id") or "?")
        shown = ", ".join(self.agent_ids[:50]) + (" …" if len(self.agent_ids) > 50 else "")
        facts = [("DAG", "revisit_daily"), ("Run", run_id), ("Call date", self.day),
                 ("Agents", f"{len(self.agent_ids)}: {shown}")]
        return Alert("lists_not_mailed", f"revisit_daily|{self.day}",
                     f"[Revisit] {len(self.agent_ids)} call list(s) of {self.day} not e-mailed: "
                     "no valid agent address", facts,
                     ["These agents' call lists are in call_lists/"
                      f"{self.day}/ but could not be e-mailed: the CRM has no valid e-mail "
                      "address for them (agents.email). Every other agent got theirs. Fix the "
                      "address in the CRM; the next day's list goes out by itself, or hand "
                      "today's file over directly."])


def tell_lists_not_mailed(context: Mapping[str, Any], day: str, agent_ids: list[str],
                          ledger) -> str:
    """ListsNotMailed once per call date: the send-once ledger (mail kind `alert`, key
    `lists_not_mailed`) keeps a retry or a rerun of the task from telling the team twice."""
    from revisit.delivery.mail import FAILED, SENT

    if not agent_ids:
        return "nothing to tell"
    claim = ledger.claim(day, "lists_not_mailed", "notify.data_team")
    if not claim.send:
        return f"already told ({claim.state})"
    try:
        outcome = ListsNotMailed(day, agent_ids).notify(context)
    except Exception as error:
        ledger.mark(day, "lists_not_mailed", FAILED, error=one_line(error))
        raise
    ledger.mark(day, "lists_not_mailed", SENT)
    return outcome
