"""Revisit monthly DAG: wiring only; the work lives in plugins/revisit (see DESIGN.md)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task, task_group

from revisit.bridge.alerts import TaskFailed
from revisit.bridge.params import RERUN_DOC, rerun_params

# The label of a mapped department task in the UI: its department id. Inside the mapped task
# group `department_id` is an op_kwarg, resolved before the template is rendered.
DEPARTMENT_LABEL = "{{ task.op_kwargs['department_id'] }}"
PERIOD_LABEL = "{{ task.op_kwargs['period'] }}"  # a mapped company task: M or its quarter
SHARD_LABEL = "{{ task.op_kwargs['shard'] }}"  # a mapped kpis_shard task: its shard id

DOC = """
### Revisit monthly

Reviews month **M**: by default the month before the run's date in the business time zone
(the run on 2026-11-02 reviews 2026-10), or `params.month`.

1. **extract** — the CRM (connection `crm_db`) as it stood at the end of M (cut-off: the 1st of
   M+1, 00:00 local), snapshotted under `snapshots/M/` in the output root.
2. **quality_gate** — the daily run's gate over M's snapshot: `quality/M/`, and the rows that
   passed in `clean/M/`, split by shard (`scale.max_customers_per_shard`, as the daily run).
3. **shards → kpis_shard** (mapped, one per shard) — each shard's share of M's KPIs (sums,
   counts, the top rows; and of the quarter's when M ends one) in `handoff/M/kpi_shares/`.
4. **kpis** — merges the shares into the KPIs of M (trends: the five months before), per
   department and for the company (`ALL`): `reports/M/kpis.csv`, `agents.csv` (per-agent
   credit, for appraisal),
   `sla_status.csv` (the verdicts the SLA KPIs count), the results tables `kpis` and
   `agent_kpis` (M replaced), and one report-data file per department in `report_data/M/`;
   **departments** lists the department ids to fan out over.
5. **department** (one mapped task group per department, dynamic task mapping):
   **render** `reports/M/<department_id>.pdf`, then **send** it to the department head
   (`departments.head_email`) through the SMTP connection `smtp_default`. One department's
   failure does not stop the others.
6. **company** (one mapped task group per period: M, and after a quarter's last month —
   03, 06, 09, 12 — also the quarter, e.g. `2026-Q3`): **data** the company report data
   (`report_data/<period>/company/company.json`; for the quarter also `reports/<YYYY>-Q<n>/`
   `kpis.csv` and `agents.csv`, merged from the shards' shares of the quarter), **render**
   `reports/<period>/company/company.pdf` (every department side by side, ranks, trends),
   **send** it to each `notify.leadership` address (policy.yaml).
7. **summary** — runs whatever happened above: `reports/M/delivery.json` (departments and
   `leadership`); fails, naming them, when a report was not delivered.

E-mail is sent at most once per (month, department) and per (period, leadership address):
the `mail_delivery` table in the results
database (connection `revisit_results`) records every delivery, so retries and reruns skip what
was sent. A refused send is retried (task retries); a send that broke off mid-conversation is
marked `unknown` and never resent automatically. `params.send_email = false` renders without
sending.

Idempotent: a rerun of the same month replaces its files atomically; XCom carries only paths,
ids and counts. Rules and report settings: `include/config/policy.yaml`; contract: DESIGN.md.

"""


@dag(
    dag_id="revisit_monthly",
    schedule="0 7 2 * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["revisit", "monthly", "report"],
    doc_md=DOC + RERUN_DOC,
    default_args={
        "owner": "data-team",
        "retries": 2,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
        "on_failure_callback": TaskFailed(),  # e-mails notify.data_team after the last try
        # Every task is stopped after 60 min (the 1M-customer benchmark's kpis task takes
        # ~1.5 min, a render a few s). A constant, not a policy number: reading policy.yaml here
        # would load pydantic at every parse. A render has its own, shorter bound
        # (policy report.render_timeout_seconds, revisit.delivery.pdf.RenderTimeout).
        "execution_timeout": timedelta(minutes=60),
    },
    params={
        # = revisit.core.periods.MONTH_PATTERN (tests/dags checks), which would load pandas here
        "month": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                       description="Override the report month M (YYYY-MM)"),
        "send_email": Param(True, type="boolean",
                            description="E-mail the reports to the department heads"),
        **rerun_params(),  # policy_profile, refresh_snapshot, replay, replay_id
    },
)
def revisit_monthly() -> None:
    @task
    def extract(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.extract_monthly(context)

    @task
    def quality_gate(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.monthly_gate(context)

    @task
    def shards(**context) -> list[str]:
        from revisit.bridge import tasks

        return tasks.monthly_shards(context)

    @task(map_index_template=SHARD_LABEL)
    def kpis_shard(shard: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.kpis_shard(context, shard)

    @task
    def kpis(shard_ids: list[str], **context) -> dict:
        from revisit.bridge import tasks

        return tasks.monthly_kpis(context, shard_ids)

    @task
    def departments(kpis_result: dict) -> list[str]:
        return kpis_result["departments"]

    @task(map_index_template=DEPARTMENT_LABEL)
    def render(department_id: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.render(context, department_id)

    @task(map_index_template=DEPARTMENT_LABEL)
    def send(department_id: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.send(context, department_id)

    @task_group(group_id="department")
    def department(department_id: str) -> None:
        render(department_id=department_id) >> send(department_id=department_id)

    @task
    def company_periods(kpis_result: dict, **context) -> list[str]:
        from revisit.bridge import tasks

        return tasks.company_periods(context)

    @task(task_id="data", map_index_template=PERIOD_LABEL)
    def company_data(period: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.company_data(context, period)

    @task(task_id="render", map_index_template=PERIOD_LABEL)
    def company_render(period: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.company_render(context, period)

    @task(task_id="send", map_index_template=PERIOD_LABEL)
    def company_send(period: str, **context) -> dict:
        from revisit.bridge import tasks

        return tasks.company_send(context, period)

    @task_group(group_id="company")
    def company(period: str) -> None:
        company_data(period=period) >> company_render(period=period) \
            >> company_send(period=period)

    @task(trigger_rule="all_done")
    def summary(**context) -> dict:
        from revisit.bridge import tasks

        return tasks.summary(context)

    shard_ids = shards()
    result = kpis(shard_ids)  # the merge of the mapped per-shard shares
    extract() >> quality_gate() >> shard_ids
    kpis_shard.expand(shard=shard_ids) >> result
    done = summary()
    department.expand(department_id=departments(result)) >> done
    company.expand(period=company_periods(result)) >> done


revisit_monthly()
