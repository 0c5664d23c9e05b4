"""The monthly stage: what the quality gate left out of M's KPIs reaches the report's note."""

from __future__ import annotations

import pandas as pd

from revisit.quality.gate import gate_or_stop
from revisit.rules.kpis import COMPANY
from revisit.stages.monthly import RawRows, left_out_by_gate
from tests.monthly_fixtures import frame, hand_built_frames, visit, write_snapshot

MONTH = "2026-10"


def _left_out(frames, policy, tmp_path) -> dict:
    # A hand-built month of a few rows: one typo is more than the default 5 % stop share.
    loose = policy.model_copy(update={"quality": policy.quality.model_copy(
        update={"max_failure_share": 0.5})})
    gate = gate_or_stop(frames, loose, tmp_path / "quality", MONTH)
    return left_out_by_gate(gate.quarantine, RawRows(frames), MONTH)


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


def test_the_kpis_stage_credits_from_the_call_list_history_and_replaces_its_month(policy,
                                                                                  tmp_path):
    """compute_kpis reads the results database's call lists of M: C1's stable_use visit (owner
    A1, window [20 Oct, 27 Oct], made late) was on A2's list on 26 and 27 Oct, so it is A2's,
    under C1's department D1; A1 keeps C1's early_use (on time), C4's periodic and T1's
    post_resolution (both missed). A rerun writes agents.csv and M's kpis / agent_kpis rows
    again, without duplicates."""
    import datetime as dt

    from sqlalchemy import create_engine, text

    from revisit.io.results import ensure_schema, replace_partition
    from revisit.rules.kpis import AGENT_COLUMNS, KPI_NAMES
    from revisit.stages.monthly import compute_kpis
    from revisit.stages.partitions import MonthPartitions

    loose = policy.model_copy(update={"quality": policy.quality.model_copy(
        update={"max_failure_share": 0.5})})
    parts = MonthPartitions(tmp_path / "out", MONTH)
    write_snapshot(parts.snapshot, manifest={
        "extracted_at": "2026-11-01T07:00:01+08:00", "cutoff": "2026-11-01", "rows": {}})
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    engine = create_engine(url)
    ensure_schema(engine)
    listed = pd.DataFrame({"agent_id": ["A2"], "list_rank": [1], "customer_id": ["C1"],
                           "tier": ["standard"], "reasons": ["stable_use"],
                           "window_end": [dt.date(2026, 10, 27)], "overdue_days": [0],
                           "ticket_id": [None], "order_id": ["O1"], "suggested_window": [None]})
    for day in (dt.date(2026, 10, 26), dt.date(2026, 10, 27)):
        replace_partition(engine, "call_list", day, listed)

    for _ in range(2):  # the run, then its rerun
        result = compute_kpis(parts, loose, url)
    agents = pd.read_csv(result["agents_csv"], dtype={"month": str})
    assert list(agents.columns) == list(AGENT_COLUMNS)
    due = {(r.department_id, r.agent_id): (r.visits_due, r.visits_on_time)
           for r in agents.itertuples()}
    assert due == {("D1", "A1"): (3, 1), ("D1", "A2"): (1, 0), ("D2", "A2"): (3, 3)}
    assert result["published"] == {"kpis": 3 * len(KPI_NAMES), "agent_kpis": 3}
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT department_id, agent_id, visits_due, visits_on_time FROM agent_kpis "
            "WHERE month = :m ORDER BY department_id, agent_id"), {"m": MONTH}).all()
        kpi_rows = conn.execute(text("SELECT COUNT(*) FROM kpis")).scalar()
    engine.dispose()
    assert [tuple(r) for r in stored] == [("D1", "A1", 3, 1), ("D1", "A2", 1, 0),
                                          ("D2", "A2", 3, 3)]
    assert kpi_rows == 3 * len(KPI_NAMES)


def test_a_month_without_visits_counts_the_quarantined_ratings_of_tickets_only():
    from revisit.rules.visits import empty_table

    frames = {name: empty_table(name) for name in
              ("customers", "tickets", "orders", "visits", "agents", "departments")}
    quarantine = pd.DataFrame({"table": ["tickets", "visits"], "row_key": ["T1", "V1"],
                               "check": ["range", "range"],
                               "column": ["satisfaction", "satisfaction"]})
    counted = left_out_by_gate(quarantine, RawRows(frames), MONTH)  # an empty lookup used to raise
    assert counted[COMPANY]["invalid_ratings"] == 0  # neither row's stamp is known to be in M


def test_the_months_sla_verdicts_are_written_beside_the_kpis_they_make(policy, tmp_path):
    """tests/unit/rules/test_kpis.py: October's SLA rows are D1 met 6 breached 1, D2 met 4
    breached 1 — reports/M/sla_status.csv holds exactly those rows, so a head can check
    sla_compliance_rate (10 / 12 for the company) ticket by ticket."""
    from revisit.io.results import default_results_url
    from revisit.rules.sla import STATUS_COLUMNS
    from revisit.stages.monthly import compute_kpis
    from revisit.stages.partitions import MonthPartitions

    root = tmp_path / "out"
    write_snapshot(root / "snapshots" / MONTH)
    compute_kpis(MonthPartitions(root, MONTH), policy, default_results_url(root))
    verdicts = pd.read_csv(root / "reports" / MONTH / "sla_status.csv", dtype=str)
    assert list(verdicts.columns) == list(STATUS_COLUMNS)
    assert verdicts["deadline"].str.startswith(MONTH).all()
    counts = verdicts.groupby(["department_id", "status"]).size().to_dict()
    assert {k: v for k, v in counts.items() if k[1] in ("met", "breached")} == {
        ("D1", "breached"): 1, ("D1", "met"): 6, ("D2", "breached"): 1, ("D2", "met"): 4}
    kpis = pd.read_csv(root / "reports" / MONTH / "kpis.csv")
    rate = kpis[(kpis["department_id"] == COMPANY) & (kpis["metric"] == "sla_compliance_rate")]
    assert abs(rate["value"].iloc[0] - 10 / 12) < 1e-6
