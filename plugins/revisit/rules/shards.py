"""Shards: the slices of a day's work that grow with the customer base, each a mapped task
(DESIGN.md "Deployment": scale-out).

A shard is a set of whole departments with at most policy `scale.max_customers_per_shard`
customers between them, or one fixed hash bucket of a department larger than that. The plan is
a pure function of the departments and their customer counts, so every task of the day that
computes it (the planner and each shard) gets the same one, and a row belongs to exactly one
shard: by its department and, in a split department, by a fixed hash of its customer id.

Shard ids name files (handoff/D/sla_shards/<shard>.parquet): "000", "001" … for bins of
whole departments, "002.0", "002.1" … for the buckets of a split one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

EMPTY_SHARD = "000"


@dataclass(frozen=True)
class ShardPlan:
    """department_id -> (shard id, or the shard-id stem of its buckets; bucket count)."""

    departments: dict[str, tuple[str, int]]

    @property
    def shard_ids(self) -> list[str]:
        ids = []
        for stem, buckets in dict(self.departments.values()).items():
            ids += [stem] if buckets == 1 else [f"{stem}.{k}" for k in range(buckets)]
        return sorted(set(ids)) or [EMPTY_SHARD]  # a CRM without departments: one, empty

    def as_dict(self) -> dict[str, list]:
        """The plan as JSON can hold it (of_dict reads it back)."""
        return {d: [stem, n] for d, (stem, n) in sorted(self.departments.items())}

    @classmethod
    def of_dict(cls, data: dict[str, list]) -> ShardPlan:
        return cls({str(d): (str(stem), int(n)) for d, (stem, n) in data.items()})

    def departments_of(self, shard: str) -> list[str]:
        """The departments whose rows may be in `shard` (one, for a bucket of a split one)."""
        stem = shard.split(".", 1)[0]
        return sorted(d for d, (s, _) in self.departments.items() if s == stem)

    def shard_of(self, department_id: pd.Series, customer_id: pd.Series) -> pd.Series:
        """Each row's shard id from its department and customer (vectorised); a department
        the plan does not know is an error, never a silently dropped row."""
        dept = department_id.astype("string")
        unknown = sorted(set(dept.dropna()) - set(self.departments)) + (
            ["<missing>"] if dept.isna().any() else [])
        if unknown:
            raise ValueError(f"rows of departments outside the shard plan: {unknown[:5]}")
        stems = dept.map({d: s for d, (s, _) in self.departments.items()}).astype("string")
        buckets = dept.map({d: n for d, (_, n) in self.departments.items()}).astype("int64")
        split = (buckets > 1).to_numpy()
        if split.any():
            k = _bucket(customer_id[split], buckets[split].to_numpy())
            stems[split] = stems[split] + "." + pd.Series(k, index=stems[split].index,
                                                          dtype="string")
        return stems


def plan_shards(customers_per_department: pd.Series, max_customers: int) -> ShardPlan:
    """The plan for departments with these customer counts (index: department_id; a
    department without customers counts 0): departments in id order fill a bin while its
    total stays within `max_customers`; a department above it gets ceil(count / max)
    buckets of its own."""
    counts = customers_per_department.sort_index()
    plan: dict[str, tuple[str, int]] = {}
    index, filled = 0, None
    for department_id, count in counts.items():
        count = int(count)
        if count > max_customers:
            if filled is not None:
                index, filled = index + 1, None
            plan[str(department_id)] = (f"{index:03d}", math.ceil(count / max_customers))
            index += 1
            continue
        if filled is not None and filled + count > max_customers:
            index, filled = index + 1, None
        plan[str(department_id)] = (f"{index:03d}", 1)
        filled = (filled or 0) + count
    return ShardPlan(plan)


def day_plan(departments: pd.DataFrame, customers: pd.DataFrame,
             max_customers: int) -> ShardPlan:
    """The plan of a day from its clean departments and customers."""
    return counts_plan(departments, customers.groupby("department_id", observed=True).size(),
                       max_customers)


def counts_plan(departments: pd.DataFrame, counts: pd.Series, max_customers: int) -> ShardPlan:
    """day_plan from the customers per department (index: department_id), for a caller that
    counts them chunk by chunk (revisit.stages.shard_rows) rather than holding them."""
    every = pd.Index(departments["department_id"].astype(str)).union(counts.index.astype(str))
    return plan_shards(counts.rename(index=str).reindex(every, fill_value=0), max_customers)


def _bucket(customer_id: pd.Series, buckets: np.ndarray) -> np.ndarray:
    """Each id's bucket: pandas' hash of its text (fixed key: the same on every host and
    run, unlike hash()) modulo its department's bucket count. A pandas upgrade that changed
    the hash would move rows between shards, never change a result: the merges sort."""
    hashed = pd.util.hash_pandas_object(customer_id.astype("string"), index=False)
    return (hashed.to_numpy() % buckets.astype(np.uint64)).astype(np.int64)


__all__ = ["EMPTY_SHARD", "ShardPlan", "counts_plan", "day_plan", "plan_shards"]
