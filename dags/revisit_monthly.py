"""Revisit monthly DAG: wiring only; the work lives in plugins/revisit (see DESIGN.md)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

DOC = """
### Revisit monthly

Reviews month **M**: by default the month before the run's date in the business time zone
(the run on 2026-11-02 reviews 2026-10), or `params.month`.

1. **extract** — the CRM (connection `crm_db`) as it stood at the end of M (cut-off: the 1st of
   M+1, 00:00 local), snapshotted under `snapshots/M/` in the output root.

Idempotent: a rerun of the same month replaces its partition atomically; XCom carries only paths
and counts. Rules and report settings: `include/config/policy.yaml`; contract: DESIGN.md.
"""


@dag(
    dag_id="revisit_monthly",
    schedule="0 7 2 * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["revisit", "monthly", "report"],
    doc_md=DOC,
    default_args={
        "owner": "data-team",
        "retries": 2,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
    },
    params={
        "month": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                       description="Override the report month M (YYYY-MM)"),
    },
)
def revisit_monthly() -> None:
    @task
    def extract(**context) -> dict:
        from revisit import runtime

        return runtime.extract_monthly(context)

    extract()


revisit_monthly()
