"""The monthly stage: what the quality gate left out of M's KPIs reaches the report's note."""

from __future__ import annotations

import pandas as pd

from revisit.quality.gate import gate_or_stop
from revisit.rules.kpis import COMPANY
from revisit.stages.monthly import left_out_by_gate
from tests.monthly_fixtures import frame, hand_built_frames, visit

MONTH = "2026-10"


def _left_out(frames, policy, tmp_path) -> dict:
    # A hand-built month of a few rows: one typo is more than the default 5 % stop share.
    loose = policy.model_copy(update={"quality": policy.quality.model_copy(
        update={"max_failure_share": 0.5})})
    gate = gate_or_stop(frames, loose, tmp_path / "quality", MONTH)
    return left_out_by_gate(gate.quarantine, frames, MONTH)


def test_ratings_off_their_scale_are_left_out_and_counted(policy, tmp_path):
    frames = hand_built_frames()
    typo = dict(frames)
    extra = frame("visits", [visit("V9", "C1", "A1", "periodic", "2026-10-20 10:00", sat=11)])
    typo["visits"] = pd.concat([frames["visits"], extra], ignore_index=True)
    counted = _left_out(typo, policy, tmp_path)
    assert counted["D1"]["invalid_ratings"] == 1
    assert counted[COMPANY]["invalid_ratings"] == 1
    assert _left_out(frames, policy, tmp_path / "clean").get("D1", {}).get("invalid_ratings",
                                                                           0) == 0


def test_an_off_scale_rating_of_another_month_is_not_counted_in_this_one(policy, tmp_path):
    frames = hand_built_frames()
    extra = frame("visits", [visit("V9", "C1", "A1", "periodic", "2026-09-20 10:00", sat=11)])
    frames["visits"] = pd.concat([frames["visits"], extra], ignore_index=True)
    assert _left_out(frames, policy, tmp_path)[COMPANY]["invalid_ratings"] == 0
