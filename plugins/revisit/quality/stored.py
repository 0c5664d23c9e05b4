"""A gate's verdict kept beside its clean rows (handoff/<period>/gate/), so that another run over
the same snapshot can write its own quality report without gating again.

Why: the monthly run of M sees the CRM at the 1st of M+1 00:00, the instant the daily run of
that day snapshotted and gated a few hours before (revisit.stages.monthly.reused_gate). The
report itself (quality/<period>/) names its period, so it cannot simply be copied: it is
written again from this verdict, which holds everything write_quality_outputs reads except
the clean tables (of those the summary reads only the agents, from clean/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from revisit.io.files import atomic_dir
from revisit.quality.gate import REPLACED_COLUMNS, QualityResult

FRAMES = ("quarantine", "summary", "checks")  # as Parquet; `replaced` (lists) as JSON
VERDICT_FILE = "verdict.json"


def write_verdict(result: QualityResult, folder: Path) -> None:
    """The gate's verdict into `folder` (atomic, whole)."""
    with atomic_dir(folder) as tmp:
        for name in FRAMES:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
        replaced = [{c: _plain(v) for c, v in row.items()}
                    for row in result.replaced.loc[:, REPLACED_COLUMNS].to_dict("records")]
        (tmp / VERDICT_FILE).write_text(json.dumps(
            {"stopped": result.stopped, "stop_reason": result.stop_reason,
             "replaced": replaced}, ensure_ascii=False), encoding="utf-8")


def read_verdict(folder: Path, clean: dict[str, pd.DataFrame]) -> QualityResult | None:
    """The verdict write_verdict wrote (with `clean`, the clean tables the summary reads),
    None when `folder` holds none."""
    if not (folder / VERDICT_FILE).exists():
        return None
    meta = json.loads((folder / VERDICT_FILE).read_text(encoding="utf-8"))
    frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
    replaced = pd.DataFrame(meta["replaced"], columns=REPLACED_COLUMNS, dtype=object)
    return QualityResult(clean=clean, stopped=bool(meta["stopped"]),
                         stop_reason=str(meta["stop_reason"]), replaced=replaced, **frames)


def _plain(value):
    """A value JSON holds: numpy scalars and arrays as Python ones."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


__all__ = ["FRAMES", "VERDICT_FILE", "read_verdict", "write_verdict"]
