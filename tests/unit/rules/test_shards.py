"""The shard plan (revisit.rules.shards), hand-computed: whole departments share a shard up to
scale.max_customers_per_shard customers, in department-id order; a larger department gets
ceil(count / max) hash buckets of its own; every row lands in exactly one shard."""

from __future__ import annotations

import pandas as pd
import pytest

from revisit.rules.shards import day_plan, plan_shards


def test_whole_departments_fill_a_shard_in_id_order_up_to_the_limit():
    # D1 3 + D2 4 = 7 <= 8; D3 2 would make 9: a new shard; D4 0 joins D3's
    plan = plan_shards(pd.Series({"D2": 4, "D1": 3, "D3": 2, "D4": 0}), 8)
    assert plan.departments == {"D1": ("000", 1), "D2": ("000", 1), "D3": ("001", 1),
                                "D4": ("001", 1)}
    assert plan.shard_ids == ["000", "001"]


def test_a_department_of_exactly_the_limit_stays_whole_and_one_more_is_cut_in_two():
    assert plan_shards(pd.Series({"D1": 8}), 8).shard_ids == ["000"]
    assert plan_shards(pd.Series({"D1": 9}), 8).shard_ids == ["000.0", "000.1"]
    # 17 customers, at most 8 each: ceil(17 / 8) = 3 buckets
    assert plan_shards(pd.Series({"D1": 17}), 8).departments == {"D1": ("000", 3)}


def test_a_split_department_has_shards_of_its_own_between_its_neighbours():
    plan = plan_shards(pd.Series({"D1": 2, "D2": 20, "D3": 2}), 8)
    assert plan.departments == {"D1": ("000", 1), "D2": ("001", 3), "D3": ("002", 1)}
    assert plan.shard_ids == ["000", "001.0", "001.1", "001.2", "002"]


def test_every_row_lands_in_exactly_one_shard_and_always_the_same_one():
    plan = plan_shards(pd.Series({"D1": 2, "D2": 300}), 100)
    customers = pd.Series([f"C{i:04d}" for i in range(300)])
    departments = pd.Series(["D2"] * 300)
    first = plan.shard_of(departments, customers)
    assert first.equals(plan.shard_of(departments, customers.copy()))
    assert set(first) == {"001.0", "001.1", "001.2"}
    assert first.value_counts().min() > 60  # a hash, not all in one bucket
    assert plan.shard_of(pd.Series(["D1"]), pd.Series(["C9"])).tolist() == ["000"]


@pytest.mark.parametrize("department, reason", [("D9", "D9"), (None, "<missing>")])
def test_a_row_of_a_department_outside_the_plan_is_an_error_not_a_lost_row(department,
                                                                            reason):
    plan = plan_shards(pd.Series({"D1": 2}), 100)
    with pytest.raises(ValueError, match=reason):
        plan.shard_of(pd.Series(["D1", department], dtype="string"), pd.Series(["C1", "C2"]))


def test_a_day_without_departments_still_has_its_one_empty_shard():
    empty = pd.DataFrame({"department_id": pd.Series(dtype="string")})
    plan = day_plan(empty, pd.DataFrame({"customer_id": [], "department_id": []}), 10)
    assert plan.shard_ids == ["000"]


def test_the_day_plan_counts_customers_per_department_and_knows_departments_without_any():
    departments = pd.DataFrame({"department_id": ["D1", "D2", "D3"]})
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3"],
                              "department_id": ["D1", "D1", "D3"]})
    assert day_plan(departments, customers, 2).departments == {
        "D1": ("000", 1), "D2": ("000", 1), "D3": ("001", 1)}
