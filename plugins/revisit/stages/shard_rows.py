"""handoff/D/shard_rows/<shard>/<table>.parquet: D's clean rows of the tables that grow with the
customers, split by shard (revisit.rules.shards) while the quality gate writes them.

Why: a shard task (sla_shard, obligations_shard) then reads its own rows only. Filtering the
whole clean table instead costs every shard a scan of every row (at a million customers 0.8 GiB
and 2 s per shard for the 13 M visits; at ten million, ten times that for each of ten times as
many shards), so the work would grow with the square of the CRM.

A row goes to the shard of the customer it belongs to; a pause to its ticket's; and each shard
gets the ids of its customers (customer_ids.parquet). Within a shard a table keeps the clean
table's order, so a shard reads what filtering the clean table gave it.
Every shard gets every table (an empty one with the table's columns when it has no rows).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from revisit.core.ids import IdCodes, arrow_strings
from revisit.io.files import write_text
from revisit.io.parquet import ParquetTables
from revisit.rules.shards import ShardPlan, counts_plan

SHARD_ROWS = "shard_rows"  # handoff/D/shard_rows/
PLAN_FILE = "plan.json"  # handoff/D/shard_rows/plan.json: the plan the rows were split by
# table -> the column that names its owner: a customer, or (a pause) a ticket
ROUTED = {"orders": "customer_id", "tickets": "customer_id", "ticket_pauses": "ticket_id",
          "visits": "customer_id"}
# <shard>/customer_ids.parquet: the ids of the shard's clean customers, in the clean table's
# order (a shard task would otherwise compute every customer's shard to find its own: 1.5 s
# of each kpis / obligations shard task at 1 M customers, pyinstrument)
CUSTOMER_IDS = "customer_ids"


class ShardRows:
    """A quality gate sink (revisit.quality.gate.Sink) beside the clean tables' one: the plan
    is made from the clean departments and customers, which the gate checks before the tables
    they own, and written to plan.json, which every later task reads."""

    def __init__(self, folder: Path, max_customers: int,
                 types: dict[str, pa.Schema] | None = None) -> None:
        self.folder = folder
        self.max_customers = max_customers
        self.types = types
        self.departments: pd.DataFrame | None = None
        # the clean customers until the plan is made: their ids and departments, in chunks
        self.customers: list[tuple[pa.Array, pa.Array]] = []
        self.per_department: list[pd.Series] = []
        self.plan: ShardPlan | None = None
        self.counts: dict[str, int] = {}
        # kind (customers, tickets) -> the ids seen and each one's shard code
        self.owners: defaultdict[str, IdCodes] = defaultdict(IdCodes)
        self.empty: dict[str, pd.DataFrame] = {}
        self.sinks: dict[str, ParquetTables] = {}

    def __call__(self, name: str, frame: pd.DataFrame) -> None:
        if name == "departments":
            self.departments = frame[["department_id"]]
        elif name == "customers":
            self.customers.append((arrow_strings(frame["customer_id"]),
                                   arrow_strings(frame["department_id"]).dictionary_encode()))
            self.per_department.append(frame.groupby("department_id", observed=True).size())
        if name not in ROUTED:
            return
        shard = self._shard_codes(name, frame)
        if name == "tickets":
            self._own("tickets", frame["ticket_id"], shard)
        self._route(name, frame, shard)

    def _route(self, name: str, frame: pd.DataFrame, shard: np.ndarray) -> None:
        """Each shard's rows of `frame` (`shard`: each row's code) to its sink."""
        self.empty.setdefault(name, frame.iloc[0:0])
        ids = self._plan().shard_ids
        order = np.argsort(shard, kind="stable")  # each shard's rows, in the table's order
        bounds = np.searchsorted(shard[order], np.arange(len(ids) + 1))
        for code in range(len(ids)):
            if bounds[code + 1] > bounds[code]:
                self._sink(ids[code])(name, frame.iloc[order[bounds[code]:bounds[code + 1]]])

    def _plan(self) -> ShardPlan:
        """The plan, made once: from the customers per department, then each customer's
        shard a chunk at a time (whole, the 3 M customers' ids as Python strings and their
        shard names held ~0.8 GB at once)."""
        if self.plan is None:
            counts = (pd.concat(self.per_department).groupby(level=0).sum()
                      if self.per_department else pd.Series(dtype="int64"))
            departments = self.departments if self.departments is not None else \
                pd.DataFrame({"department_id": []})
            self.plan = counts_plan(departments, counts, self.max_customers)
            self.counts = {str(d): int(n) for d, n in counts.sort_index().items()}
            index = {s: i for i, s in enumerate(self.plan.shard_ids)}
            for ids, dept in self.customers:
                ids, dept = ids.to_pandas(), dept.to_pandas()
                codes = pd.Series(self.plan.shard_of(dept, ids)).map(index).to_numpy(np.int64)
                self._own("customers", ids, codes)
                self._route(CUSTOMER_IDS, pd.DataFrame({"customer_id": ids}), codes)
            self.customers, self.per_department = [], []
        return self.plan

    def _own(self, kind: str, ids: pd.Series, codes: np.ndarray) -> None:
        self.owners[kind].add(ids, codes)

    def _shard_codes(self, name: str, frame: pd.DataFrame) -> np.ndarray:
        """Each row's shard (its index in the plan's shard ids)."""
        self._plan()
        kind = "tickets" if ROUTED[name] == "ticket_id" else "customers"
        codes = self.owners[kind].codes_of(frame[ROUTED[name]])
        if (codes < 0).any():  # the clean tables are referentially closed: a gate bug
            raise ValueError(f"{name}: {(codes < 0).sum()} clean row(s) whose "
                             f"{ROUTED[name]} is no clean {kind[:-1]}")
        return codes

    def _sink(self, shard: str) -> ParquetTables:
        if shard not in self.sinks:
            (self.folder / shard).mkdir(parents=True, exist_ok=True)
            self.sinks[shard] = ParquetTables(self.folder / shard, self.types)
        return self.sinks[shard]

    def __enter__(self) -> ShardRows:
        return self

    def __exit__(self, *exc) -> None:
        """Every shard gets every table, the plan is written, then the files are closed."""
        try:
            if exc[0] is None:
                plan = self._plan()
                for shard in plan.shard_ids:
                    sink = self._sink(shard)
                    for name, empty in self.empty.items():
                        if name not in sink.writers:
                            sink(name, empty)
                write_text(self.folder / PLAN_FILE, json.dumps(
                    {"max_customers_per_shard": self.max_customers,
                     "shard_ids": plan.shard_ids, "departments": plan.as_dict(),
                     "customers_per_department": self.counts}, indent=1))
        finally:
            for sink in self.sinks.values():
                sink.__exit__(*exc)


def both(*sinks):
    """One gate sink that hands each table to every one of `sinks`."""
    def hand(name: str, frame: pd.DataFrame) -> None:
        for sink in sinks:
            sink(name, frame)
    return hand


def shard_rows_file(handoff: Path, shard: str, table: str) -> Path:
    return handoff / SHARD_ROWS / shard / f"{table}.parquet"


def plan_file(handoff: Path) -> Path:
    return handoff / SHARD_ROWS / PLAN_FILE


def read_plan(handoff: Path) -> ShardPlan:
    """The plan D's rows were split by (written by the quality gate)."""
    return ShardPlan.of_dict(plan_info(handoff)["departments"])


def plan_info(handoff: Path) -> dict:
    """plan.json: the plan, the max_customers_per_shard it was made with, the customers per
    department."""
    path = plan_file(handoff)
    if not path.exists():
        raise FileNotFoundError(f"no shard plan: {path} is missing (run the quality gate "
                                "first)")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["CUSTOMER_IDS", "PLAN_FILE", "ROUTED", "SHARD_ROWS", "ShardRows", "both", "plan_file",
           "plan_info", "read_plan", "shard_rows_file"]
