"""Where each stage of a run reads and writes, under the output root: one object per period.

A daily run's period is its call date D, a monthly run's its month M. Every stage writes only its
own partition (atomically, revisit.io.files.atomic_dir), which is what makes a rerun of the same
period idempotent and a retry safe.

A replay (DESIGN.md "Reproducible reruns and what-if replay") writes under its own root,
replays/<replay_id>/ of the output root, and reads the original run's snapshot: `source` is the
output root the snapshot comes from (None: the partitions' own root).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from revisit.core.periods import month_cutoff_date


@dataclass(frozen=True)
class DayPartitions:
    """The partitions of call date D."""

    root: Path
    day: dt.date
    source: Path | None = None  # a replay's original output root (its snapshot's home)

    @property
    def period(self) -> str:
        return self.day.isoformat()

    @property
    def cutoff_date(self) -> dt.date:
        """The run sees the CRM as of this day's 00:00."""
        return self.day

    @property
    def replay(self) -> bool:
        """Whether these are a replay's partitions (nothing is sent or published)."""
        return self.source is not None

    @property
    def snapshot(self) -> Path:
        return (self.source or self.root) / "snapshots" / self.period

    @property
    def clean(self) -> Path:
        return self.root / "clean" / self.period

    @property
    def quality(self) -> Path:
        return self.root / "quality" / self.period

    @property
    def call_lists(self) -> Path:
        return self.root / "call_lists" / self.period

    @property
    def handoff(self) -> Path:
        """Typed Parquet the call-list and SLA tasks hand to publish (not a user output)."""
        return self.root / "handoff" / self.period

    @property
    def sla(self) -> Path:
        return self.root / "sla" / self.period


@dataclass(frozen=True)
class MonthPartitions:
    """The partitions of report month M ('2026-10')."""

    root: Path
    month: str
    source: Path | None = None  # a replay's original output root (its snapshot's home)

    @property
    def period(self) -> str:
        return self.month

    @property
    def cutoff_date(self) -> dt.date:
        """The run sees the CRM as it stood at the end of M: the 1st of M+1, 00:00."""
        return month_cutoff_date(self.month)

    @property
    def replay(self) -> bool:
        """Whether these are a replay's partitions (nothing is sent or published)."""
        return self.source is not None

    @property
    def snapshot(self) -> Path:
        return (self.source or self.root) / "snapshots" / self.month

    @property
    def quality(self) -> Path:
        return self.root / "quality" / self.month

    @property
    def clean(self) -> Path:
        """clean/M: the rows of M's snapshot that passed the quality gate."""
        return self.root / "clean" / self.month

    @property
    def handoff(self) -> Path:
        """handoff/M: the gate's rows split by shard and each shard's KPI share (not a user
        output)."""
        return self.root / "handoff" / self.month

    @property
    def reports(self) -> Path:
        """reports/M: the PDFs, kpis.csv and delivery.json of month M."""
        return self.root / "reports" / self.month

    @property
    def data(self) -> Path:
        """report_data/M: one JSON of report data per department (masked, no raw phones)."""
        return self.root / "report_data" / self.month

    def data_file(self, department_id: str) -> Path:
        return self.data / f"{department_id}.json"

    def pdf(self, department_id: str) -> Path:
        return self.reports / f"{department_id}.pdf"

    def agents_xlsx(self, department_id: str) -> Path:
        """reports/M/<department_id>_agents.xlsx: the department's full per-agent table. No
        collision with another department's file: only this method writes .xlsx into
        reports/M/, and appending a fixed suffix maps distinct ids to distinct names (the
        XLSX of a department "D_agents" is D_agents_agents.xlsx; D_agents.pdf is its PDF)."""
        return self.reports / f"{department_id}_agents.xlsx"


__all__ = ["DayPartitions", "MonthPartitions"]
