"""The DAG params both DAGs share: reproducible reruns and what-if replay (DESIGN.md
"Reproducible reruns and what-if replay"). One definition, so the daily and monthly forms
offer the same choices; revisit.bridge.tasks reads and checks them at run time."""

from __future__ import annotations

from airflow.sdk import Param

# What both DAGs' doc_md say about these params.
RERUN_DOC = """
Reruns reproduce: a rerun reads the period's stored snapshot (`params.refresh_snapshot = true`
re-extracts the CRM); every partition's `run.json` says which policy, snapshot and code made it.
`params.policy_profile` picks a policy profile (`include/config/profiles/`). What-if:
`params.replay = true` recomputes the period from its stored snapshot under that profile into
`replays/<replay_id>/` with `changes.csv` and `summary.md`, and sends and publishes nothing
(docs/operations.md "What-if replay"; `python -m revisit replay` without Airflow).
"""

# = revisit.stages.replay's replay id rule (a folder name; tests/dags checks they agree)
REPLAY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def rerun_params() -> dict[str, Param]:
    """policy_profile, refresh_snapshot, replay, replay_id."""
    return {
        "policy_profile": Param(None, type=["null", "string"],
                                description="Policy profile (include/config/profiles/<name>"
                                ".yaml) or a policy file; default REVISIT_POLICY / policy.yaml"),
        "refresh_snapshot": Param(False, type="boolean",
                                  description="Re-extract the CRM although the period has a "
                                  "stored snapshot (a rerun otherwise reproduces the first run)"),
        "replay": Param(False, type="boolean",
                        description="What-if: recompute the period from its stored snapshot "
                        "under policy_profile into replays/<replay_id>/; sends nothing"),
        "replay_id": Param(None, type=["null", "string"], pattern=REPLAY_ID_PATTERN,
                           description="Folder name of the replay (default: period, profile, "
                           "policy version)"),
    }


__all__ = ["REPLAY_ID_PATTERN", "RERUN_DOC", "rerun_params"]
