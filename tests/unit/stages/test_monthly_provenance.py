"""Every monthly output says what produced it: reports/M/run.json and quality/M/run.json name
the policy, the snapshot and the code, and each PDF's footer shows the policy_version."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pypdf import PdfReader

from revisit.stages.monthly import compute_kpis, render_department
from revisit.stages.partitions import MonthPartitions
from tests.monthly_fixtures import write_snapshot

MONTH = "2026-10"


def _snapshot(parts: MonthPartitions) -> None:
    """The hand-built month as a stored snapshot of M, with its manifest."""
    write_snapshot(parts.snapshot, manifest={
        "extracted_at": "2026-11-02T07:00:01+08:00", "cutoff": "2026-11-01", "rows": {}})


def test_reports_and_quality_of_m_say_what_made_them_and_the_pdf_shows_it(policy, tmp_path):
    loose = policy.model_copy(update={"quality": policy.quality.model_copy(
        update={"max_failure_share": 0.5})})  # a few hand-built rows: no stop on one typo
    parts = MonthPartitions(tmp_path / "out", MONTH)
    _snapshot(parts)
    compute_kpis(parts, loose, f"sqlite:///{tmp_path / 'results.sqlite'}")
    info = json.loads((parts.reports / "run.json").read_text(encoding="utf-8"))
    assert info["period"] == MONTH and info["policy_version"] == loose.version
    assert info["snapshot"] == {"cutoff": "2026-11-01",
                                "extracted_at": "2026-11-02T07:00:01+08:00"}
    assert (parts.quality / "run.json").read_bytes() == (parts.reports / "run.json").read_bytes()
    assert not (parts.data / "run.json").exists()  # report_data/M/*.json are departments

    pdf = render_department(parts, loose, "D1")["pdf"]
    pages = PdfReader(io.BytesIO(Path(pdf).read_bytes())).pages
    assert all(f"policy {loose.version}" in page.extract_text() for page in pages)
