"""Revisit daily DAG: wiring only; the work lives in plugins/revisit (see DESIGN.md)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, task

from revisit.bridge.alerts import TaskFailed
from revisit.bridge.params import RERUN_DOC, rerun_params

SCHEDULE = "0 6 * * *"  # 06:00 in the business time zone
# The label of a mapped shard task in the UI (obligations_shard, sla_shard): its shard id.
SHARD_LABEL = "{{ task.op_kwargs['shard'] }}"
# policy.yaml schedule.call_lists_ready_by (08:30) - 06:00; tests/dags checks they agree.
CALL_LISTS_READY_AFTER = timedelta(hours=2, minutes=30)
# The alert is declared for every run. Airflow 3.3.2's `airflow dags test` crashes at the end
# of a successful run of a DAG with a Deadline Alert (apache/airflow#73428): run test runs
# through `python -m tooling.dags_test`, which carries the upstream fix.

DOC = """
### Revisit daily

For call date **D** (the logical date in the business time zone, or `params.call_date`):

1. **extract** — the CRM (connection `crm_db`) as of D 00:00 local, snapshotted as Parquet
   under `snapshots/D/` in the output root (`REVISIT_OUTPUT_DIR`).
2. **quality_gate** — Great Expectations checks (a large table chunk by chunk,
   `scale.gate_chunk_rows`); failing rows are quarantined with their reason in `quality/D/`.
   A table failing beyond `quality.max_failure_share` stops the run here: no list or e-mail
   goes out. The clean rows go to `clean/D/` and, split by shard, to `handoff/D/shard_rows/`.
3. **shards → obligations_shard (mapped) → call_lists** — each shard's visit obligations
   computed by its own mapped task (its customers' orders, tickets and visits only), merged;
   then one XLSX + CSV per agent in `call_lists/D/`, plus `sms_notice.csv`,
   `carried_over.csv` (no capacity left) and `not_listed.csv` (reported instead of listed;
   rule: `revisit.rules.calllist._reported`).
4. **agent_mail** — each agent with a non-empty list gets one e-mail at `agents.email` with their
   own XLSX attached and a summary (customers, overdue, by reason; no phone in the body), at
   most once per day (the `mail_delivery` ledger). An agent without a valid address is logged
   and returned by id; the others still get theirs. `params.send_email = false` sends nothing.
5. **shards → sla_shard (mapped) → sla** — the tickets by their customer's shard (whole
   departments up to `scale.max_customers_per_shard` customers, hash buckets of a larger
   one), each shard's SLA status computed by its own mapped task, merged into the status
   of every ticket's SLA metrics in `sla/D/sla_status.csv` (the same bytes as unsharded) and
   the per-department breach digests `sla/D/digest_<department_id>.csv` (phones masked).
6. **sla_digest** — each department head with a new breach or an at-risk ticket gets the digest
   by e-mail (connection `smtp_default`), at most once per day: the `mail_delivery` ledger in the
   results database skips what was sent. `params.send_email = false` sends nothing.
7. **publish** — D's rows replaced in the results database (connection `revisit_results`,
   default `results.sqlite` in the output root).
8. **retention** — partitions holding personal data older than the policy's
   `retention.snapshot_days` on D are deleted (snapshots, clean, handoff, quality, call_lists,
   sla of a day; snapshots, quality, report_data of a month), whatever happened above; a
   replay skips it.

A Deadline Alert warns (callback `revisit.bridge.alerts.call_lists_late`, run by the triggerer)
when a run has not finished by the policy's `schedule.call_lists_ready_by` (08:30 local).

Idempotent: a rerun of the same D replaces D's partition atomically. XCom carries only paths and
counts. Rules and numbers: `include/config/policy.yaml`; contract: DESIGN.md.

"""


@dag(
    dag_id="revisit_daily",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["revisit", "daily", "crm"],
    doc_md=DOC + RERUN_DOC,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=CALL_LISTS_READY_AFTER,
        # A notifier (revisit.bridge.alerts): e-mails notify.data_team, scheduled runs only.
        callback=AsyncCallback("revisit.bridge.alerts.CallListsLate"),
        name="call_lists_ready_by",
    ),
    default_args={
        "owner": "data-team",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "on_failure_callback": TaskFailed(),  # e-mails notify.data_team after the last try
        # Every task is stopped after 30 min (the 1M-customer benchmark's slowest daily task
        # takes < 1 min; call lists are due 2.5 h after the start). A constant, not a policy
        # number: reading policy.yaml here would load pydantic at every parse, and a broken
        # policy would become an import error of the DAG instead of a task error naming the key.
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        # Rejected at trigger time: `format` (a real calendar day, checked by Airflow's
        # jsonschema FormatChecker) and `pattern` (also for a form that ignores formats).
        "call_date": Param(None, type=["null", "string"], format="date",
                           pattern=r"^\d{4}-\d{2}-\d{2}$",
                           description="Override the call date D (YYYY-MM-DD)"),
        "send_email": Param(True, type="boolean",
                            description="E-mail the SLA digests to the department heads"),
        **rerun_params(),  # policy_profile, refresh_snapshot, replay, replay_id
    },
)
def revisit_daily() -> None:
    @task
    def extract(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.extract_daily(context)

    @task
    def quality_gate(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.quality_gate(context)

    @task(map_index_template=SHARD_LABEL)
    def obligations_shard(shard: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.obligations_shard(context, shard)

    @task
    def call_lists(shard_ids: list[str], **context) -> dict:
        from revisit.bridge import tasks

        return tasks.call_lists(context, shard_ids)

    @task
    def shards(**context) -> list[str]:
        from revisit.bridge import tasks

        return tasks.shards(context)

    @task(map_index_template=SHARD_LABEL)
    def sla_shard(shard: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.sla_shard(context, shard)

    @task
    def sla(shard_ids: list[str], **context) -> dict:
        from revisit.bridge import tasks

        return tasks.sla(context, shard_ids)

    @task
    def sla_digest(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.sla_digest(context)

    @task
    def agent_mail(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.agent_mail(context)

    @task
    def publish(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.publish(context)

    @task(trigger_rule="all_done")  # personal data goes on time even when the run failed
    def retention(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.retention(context)

    gate = quality_gate()
    shard_ids = shards()
    lists = call_lists(shard_ids)  # the merges of the mapped per-shard obligations ...
    statuses = sla(shard_ids)  # ... and statuses
    extract() >> gate >> shard_ids
    obligations_shard.expand(shard=shard_ids) >> lists
    sla_shard.expand(shard=shard_ids) >> statuses
    [lists, statuses] >> publish() >> retention()
    statuses >> sla_digest()
    [lists, statuses] >> agent_mail()  # the e-mail lists the agent's due-today tickets too


revisit_daily()
