"""The quality gate's split of D's clean rows by shard (revisit.stages.shard_rows): each row in
its customer's shard (a pause in its ticket's), in the clean table's order, every shard with
every table, and the plan the shard tasks read."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from revisit.rules.shards import day_plan
from revisit.stages.shard_rows import (
    CUSTOMER_IDS,
    PLAN_FILE,
    SHARD_ROWS,
    ShardRows,
    read_plan,
)


def _frames() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(9)],
                              "department_id": ["D1"] * 6 + ["D2"] * 3})
    tickets = pd.DataFrame({"ticket_id": ["T1", "T2", "T3"], "customer_id": ["C7", "C0", "C8"],
                            "department_id": ["D1", "D2", "D2"]})  # T1: another dept's ticket
    return {
        "departments": pd.DataFrame({"department_id": ["D1", "D2", "D3"]}),
        "customers": customers,
        "orders": pd.DataFrame({"order_id": [f"O{i}" for i in range(9)],
                                "customer_id": [f"C{8 - i}" for i in range(9)]}),
        "tickets": tickets,
        "ticket_pauses": pd.DataFrame({"ticket_id": ["T2", "T1", "T1"],
                                       "paused_at": pd.to_datetime(["2026-11-01"] * 3)}),
        "visits": pd.DataFrame({"visit_id": [], "customer_id": []}, dtype="string"),
    }


def test_rows_go_to_their_customers_shard_in_order(tmp_path) -> None:
    tmp_path = tmp_path / SHARD_ROWS  # handoff/D/shard_rows
    frames = _frames()
    with ShardRows(tmp_path, 4) as split:
        for name, frame in frames.items():  # the customers in two chunks, as the gate may
            if name == "customers":
                split(name, frame.iloc[:5])
                split(name, frame.iloc[5:])
            else:
                split(name, frame)
    plan = day_plan(frames["departments"], frames["customers"], 4)
    assert read_plan(tmp_path.parent).shard_ids == plan.shard_ids == ["000.0", "000.1", "001"]
    shard_of = dict(zip(frames["customers"]["customer_id"],
                        plan.shard_of(frames["customers"]["department_id"],
                                      frames["customers"]["customer_id"]), strict=True))
    ticket_shard = {t: shard_of[c] for t, c in zip(frames["tickets"]["ticket_id"],
                                                   frames["tickets"]["customer_id"],
                                                   strict=True)}
    for name, owner, of in (("orders", "customer_id", shard_of),
                            ("tickets", "customer_id", shard_of),
                            ("ticket_pauses", "ticket_id", ticket_shard),
                            ("visits", "customer_id", shard_of)):
        clean = frames[name]
        for shard in plan.shard_ids:
            got = pd.read_parquet(tmp_path / shard / f"{name}.parquet")
            mine = clean[clean[owner].map(of) == shard].reset_index(drop=True)
            assert list(got.columns) == list(clean.columns)
            pd.testing.assert_frame_equal(got.astype(mine.dtypes.to_dict()), mine,
                                          check_dtype=False)
    customers = frames["customers"]["customer_id"]
    for shard in plan.shard_ids:  # each shard's customers, in the clean table's order
        got = pd.read_parquet(tmp_path / shard / f"{CUSTOMER_IDS}.parquet")["customer_id"]
        assert got.tolist() == [c for c in customers if shard_of[c] == shard]
    # T1 belongs to D2's department but to C7 (of D1): its pauses follow it to C7's shard.
    assert shard_of["C7"] != shard_of["C0"]
    saved = json.loads((tmp_path / PLAN_FILE).read_text())
    assert saved["max_customers_per_shard"] == 4 and saved["shard_ids"] == plan.shard_ids


def test_a_row_of_no_clean_customer_is_an_error(tmp_path) -> None:
    frames = _frames()
    with pytest.raises(ValueError, match="no clean customer"), ShardRows(tmp_path, 4) as split:
        split("departments", frames["departments"])
        split("customers", frames["customers"])
        split("orders", pd.DataFrame({"order_id": ["O1"], "customer_id": ["C-GONE"]}))


def test_a_shard_task_finds_its_customers_also_in_a_split_written_without_their_ids(
        tmp_path) -> None:
    """A split of an earlier version (no customer_ids.parquet: a retry or a reused gate across
    an upgrade) gives each shard the same customers, from every clean customer's shard."""
    import datetime as dt

    from revisit.stages.daily import _shard_customers
    from revisit.stages.partitions import DayPartitions
    from revisit.stages.shard_rows import shard_rows_file

    parts = DayPartitions(tmp_path, dt.date(2026, 11, 20))
    frames = _frames()
    with ShardRows(parts.handoff / SHARD_ROWS, 4) as split:
        for name, frame in frames.items():
            split(name, frame)
    parts.clean.mkdir(parents=True)
    frames["customers"].to_parquet(parts.clean / "customers.parquet")
    plan = read_plan(parts.handoff)
    written = {s: _shard_customers(parts, s).tolist() for s in plan.shard_ids}
    for shard in plan.shard_ids:
        shard_rows_file(parts.handoff, shard, CUSTOMER_IDS).unlink()
    assert {s: _shard_customers(parts, s).tolist() for s in plan.shard_ids} == written
    assert sorted(c for ids in written.values() for c in ids) == sorted(
        frames["customers"]["customer_id"])
