"""`airflow dags test` that also works for a DAG declaring a Deadline Alert.

Airflow 3.3.2's `DAG.test()` runs the DAG from an in-memory serialise/deserialise round trip,
which leaves `dag.deadline` holding encoded alerts instead of `deadline_alert` row ids; when the
run succeeds, `DagRun.update_state()` looks those up by id and crashes
(apache/airflow#73428, fix proposed in apache/airflow#73430). The scheduler never sees encoded
alerts, so production needs nothing; only a test run does. This wrapper applies the proposed
fix to this process alone — an encoded alert is decoded instead of looked up — and then runs
Airflow's own CLI, so the daily DAG declares its alert the same way in every process and never
changes shape with its command line.

    python -m tooling.dags_test revisit_daily 2026-11-20     # = airflow dags test ...

tests/tooling/test_dags_test.py checks that the upstream crash is still there: when an Airflow
upgrade fixes it, that test fails and this wrapper can go.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncodedAlert:
    """What `update_state` reads of an alert (its reference's class), from its encoding."""

    reference_class: type


def decoded_alert(encoded: dict[str, Any]) -> EncodedAlert:
    from airflow.serialization.decoders import decode_deadline_alert

    return EncodedAlert(type(decode_deadline_alert(encoded).reference))


def accept_encoded_alerts() -> None:
    """Let DeadlineAlert.get_by_id take an encoded alert as DAG.test() leaves it."""
    from airflow.models.deadline_alert import DeadlineAlert

    lookup = DeadlineAlert.get_by_id
    if getattr(lookup, "accepts_encoded", False):
        return

    def get_by_id(deadline_alert_id, **kwargs):
        if isinstance(deadline_alert_id, dict):
            return decoded_alert(deadline_alert_id)
        return lookup(deadline_alert_id, **kwargs)

    get_by_id.accepts_encoded = True  # type: ignore[attr-defined]
    DeadlineAlert.get_by_id = staticmethod(get_by_id)  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from airflow.__main__ import main as airflow_main

    accept_encoded_alerts()
    sys.argv = ["airflow", "dags", "test", *(sys.argv[1:] if argv is None else argv)]
    airflow_main()


if __name__ == "__main__":
    main()
