"""Per-agent credit: which agent answers for each visit due in month M (the report's agent
table and reports/M/agents.csv, an input to appraisal).

The rule implemented, DESIGN.md "Outputs (contract)", Per-agent credit:

    "a due visit is credited to the agent responsible for it under the assignment rules — the
    agent whose call list it was on (from the results database's call_list history of month
    M), else the rule itself (owner; key tier → the department's supervisor; inactive owner →
    reassigned) — never to an inactive owner."

Why it matters, policy 004 (客服回访行为规范制度) 五(二)2 and 五(三)2:

    "回访及时率=按时回访次数/应回访次数×100%" … "将考核结果与回访人员的绩效奖金、晋升、奖励等挂钩。"

(the timeliness rate is on-time visits over due visits, and the appraisal result is tied to
the agent's performance bonus and promotion): a due visit must count against the person who
was told to make it, not against whoever owns the customer record.

Decisions where DESIGN.md is silent:
- Which listing wins when a visit was on several days' lists of M (an overdue row stays on the
  list, and may move to a colleague): the last listing on or before the window's last day —
  the agent who had it on the last day it could still be made on time answers for its
  timeliness; a colleague who inherited it once it was overdue does not. Only when it was
  listed after its window alone (the history of M starts after the window's last day), the
  earliest such listing. A listing matches a due visit by customer and kind (the list has one
  row per customer and day, all reasons merged, so one agent had all of that customer's
  visits that day).
- The listing agent is credited even when inactive at the end of M: it was their list.
- Without a listing (no results history: a first run, a new database, a replay of a month
  before the history; or a visit done before it was ever listed), revisit.rules.calllist
  .rule_agents: the daily assignment's own choice, capacity aside — the owner if active; a key
  customer to the owner if they are an active supervisor of the department, else to the
  department's supervisors; an inactive (or missing) owner's customers to the department's
  active agents; pooled customers spread least-loaded over the pool, every customer with a
  visit due in M taken in customer_id order (ties to the smaller agent_id), so one agent per
  customer for all their visits of M, whichever of them were listed. With several
  supervisors, key customers are so shared out between them. Nobody (a department without
  active staff) → not credited: left out of the agent table.
- Department of a row (an agent who moved department mid-month): a due visit and a visit
  made belong to the customer's department, a ticket and its SLA rows to the ticket's, as in
  the department KPIs. An agent appears once per department they worked for in M (with that
  department's work only) and under their own department as of the end of M (zeros if idle),
  so each department's rows add up to its own visits_due / visits_on_time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revisit.config.policy import Policy
from revisit.rules.calllist import REASON_SEPARATOR, rule_agents

LISTING_COLUMNS = ("run_date", "agent_id", "customer_id", "reasons")


def credited_agents(due: pd.DataFrame, frames: dict[str, pd.DataFrame], policy: Policy,
                    listings: pd.DataFrame | None = None) -> pd.Series:
    """The agent credited with each due visit (`due`: customer_id, kind, window_end), as a
    'string' Series on due's index (NA: nobody). `listings`: the results database's call_list
    rows of M (LISTING_COLUMNS), None when there is no history."""
    listed = listed_agents(due, listings)
    missing = listed.isna().to_numpy(bool)
    if missing.any():  # the rule over every due customer: one's pick never hangs on another's
        listed[missing] = ruled_agents(due["customer_id"], frames, policy).to_numpy()[missing]
    return listed


def listed_agents(due: pd.DataFrame, listings: pd.DataFrame | None) -> pd.Series:
    """The agent of the winning listing of each due visit (see the module: the last on or
    before the window's last day, else the earliest after); NA when never listed in M."""
    out = pd.Series(pd.NA, index=due.index, dtype="string")
    if listings is None or not len(listings) or not len(due):
        return out
    keys = pd.DataFrame({"customer_id": due["customer_id"].astype("string").to_numpy(),
                         "kind": due["kind"].astype("string").to_numpy(),
                         "window_end": pd.to_datetime(due["window_end"]).to_numpy(),
                         "_row": np.arange(len(due))})
    pairs = keys.merge(_by_kind(listings), on=["customer_id", "kind"], how="inner")
    if pairs.empty:
        return out
    late = (pairs["run_date"] > pairs["window_end"]).to_numpy(bool)
    gap = (pairs["run_date"] - pairs["window_end"]).abs()
    pairs = pairs.assign(_late=late, _gap=gap).sort_values(["_row", "_late", "_gap"],
                                                           kind="stable")
    winner = pairs.drop_duplicates("_row")
    out.iloc[winner["_row"].to_numpy()] = winner["agent_id"].to_numpy()
    return out


def _by_kind(listings: pd.DataFrame) -> pd.DataFrame:
    """One row per (run date, agent, customer, reason code) of the listings."""
    rows = pd.DataFrame({
        "run_date": pd.to_datetime(listings["run_date"]).to_numpy(),
        "agent_id": listings["agent_id"].astype("string").to_numpy(),
        "customer_id": listings["customer_id"].astype("string").to_numpy(),
        "kind": listings["reasons"].astype("string").str.split(REASON_SEPARATOR).to_numpy(),
    }).explode("kind", ignore_index=True)
    rows["kind"] = rows["kind"].astype("string").str.strip()
    return rows[rows["agent_id"].notna().to_numpy(bool) & rows["kind"].notna().to_numpy(bool)]


def ruled_agents(customer_ids: pd.Series, frames: dict[str, pd.DataFrame],
                 policy: Policy) -> pd.Series:
    """The agent the assignment rules give each customer (revisit.rules.calllist.rule_agents),
    one per customer, on `customer_ids`' index (NA: nobody)."""
    ids = customer_ids.dropna().astype("string").drop_duplicates().sort_values()
    ids = ids.reset_index(drop=True)
    chosen = pd.Series(rule_agents(ids, frames, policy), index=ids.to_numpy(), dtype="string")
    return customer_ids.astype("string").map(chosen).astype("string")


__all__ = ["LISTING_COLUMNS", "credited_agents", "listed_agents", "ruled_agents"]
