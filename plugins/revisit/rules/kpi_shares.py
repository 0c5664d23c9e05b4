"""One shard's share of a period's KPIs, and the merge of every shard's share into the
MonthlyKpis the report shows (DESIGN.md "Deployment": scale-out; what each number means:
revisit.rules.kpis).

Why shares, not rows: the merge of a sharded month holds sums and counts per (month,
department), per (department, agent) and per category, plus the few rows the report lists —
never a customer table. What cannot be summed travels whole, and small:
- the handling hours of the tickets resolved in the trend months (a median);
- the visits due in the period (customer, kind, window): who is credited with each is the
  agent a call list named (the history of the period, read once by the merge), else decided
  over the whole department (the pool is shared least-loaded in customer_id order,
  revisit.rules.credit), so the merge decides it.
A customer, and so each of their orders, tickets and visits, is in exactly one shard
(revisit.rules.shards), so a sum of the shards' sums is the sum over the CRM, and the top rows
of a department are among the top rows of its shards. compute_monthly is the merge of one
share: a sharded month and an unsharded one go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from revisit.config.policy import Policy
from revisit.core.periods import month_end, period_unit, trend_months
from revisit.rules import kpis as k
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.visits import table, visit_obligations

SHARE_DICTS = ("quality", "open_breach_counts")  # the fields that are not frames


@dataclass
class KpiShare:
    """One shard's share of the KPIs of `period` (a month, or a quarter label)."""

    period: str
    sums: pd.DataFrame  # kpis.SUM_COLUMNS per (month, department_id), COMPANY included
    hours: pd.DataFrame  # month, department_id, hours: tickets resolved in the trend months
    categories: pd.DataFrame  # department_id, category, tickets (created in the period)
    priorities: pd.DataFrame  # department_id, priority, metric, met, breached
    breaches: pd.DataFrame  # the worst breaches of the period: the top of each department
    due: pd.DataFrame  # kpis.due_visits: the visits due in the period
    work: pd.DataFrame  # kpis.AGENT_WORK per (department_id, agent_id)
    open_groups: pd.DataFrame  # kpis.open_visit_groups
    open_breaches: pd.DataFrame  # breached, not achieved at the cut-off: the top of each
    verdicts: pd.DataFrame  # SLA rows with deadlines in the period (sla_status.csv)
    quality: dict[str, dict]  # kpis.data_quality
    open_breach_counts: dict[str, int]  # per department (and COMPANY): every open breach

    def frames(self) -> dict[str, pd.DataFrame]:
        """The share's frames by field name (what revisit.stages.monthly stores per shard)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("period", *SHARE_DICTS)}


def kpi_share(frames: dict[str, pd.DataFrame], policy: Policy, calendar: BusinessCalendar,
              period: str) -> KpiShare:
    """The share of `period`'s KPIs of the customers in `frames` (one shard's rows, or the
    whole CRM), from the snapshot at the end of the period."""
    unit, cutoff = period_unit(period), month_end(period)
    months = trend_months(period, policy.report.trend_months)
    at_cutoff = visit_obligations(frames, policy, calendar, cutoff.date())
    obligations = k.timeliness_obligations(frames, policy, calendar, period, months, at_cutoff)
    tickets = k._ticket_facts(frames, unit)
    tickets = tickets[~(tickets["created_at"] >= cutoff).fillna(False).to_numpy(bool)]
    ratings = k._ratings(frames, tickets, unit=unit)
    ratings = ratings[(ratings["month"] <= period).fillna(False).to_numpy(bool)]
    status = k.month_status(frames, policy, calendar, period)
    sla = k._localized(status, calendar, period)
    verdicts = status[(sla["month"] == period).fillna(False).to_numpy(bool)]
    del status
    sums, hours = k.kpi_sums(obligations, tickets, ratings, sla)
    hours = hours[hours["month"].isin(months).fillna(False).to_numpy(bool)]  # what is shown
    breaches_open = k.open_breaches(sla, frames)
    top = policy.report.action_rows
    return KpiShare(
        period=period, sums=sums, hours=hours,
        categories=k.category_counts(tickets, period),
        priorities=k.priority_counts(sla, period),
        breaches=k.worst_breaches(sla, frames, period, policy.report.worst_breaches),
        due=k.due_visits(obligations, period),
        work=k.agent_work(frames, tickets, ratings, sla, period),
        open_groups=k.open_visit_groups(at_cutoff, frames, policy, period),
        open_breaches=breaches_open.groupby("department_id").head(top)
        .reset_index(drop=True),
        verdicts=verdicts.reset_index(drop=True),
        quality=k.data_quality(frames, obligations, tickets, period,
                               department_ids(frames), sla, list(policy.sla.metrics)),
        open_breach_counts={str(d): int(n) for d, n in
                            breaches_open["department_id"].value_counts().items()},
    )


def department_ids(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The departments of the CRM, by id (every share counts all of them)."""
    return departments(frames)["department_id"].astype("string").tolist()


def departments(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """department_id, name, head_name, head_email of every department, by id."""
    rows = table(frames, "departments").drop_duplicates("department_id")
    rows = rows.sort_values("department_id", ignore_index=True)
    return rows.loc[:, ["department_id", "name", "head_name", "head_email"]]


def merge_shares(shares: list[KpiShare], frames: dict[str, pd.DataFrame], policy: Policy,
                 listings: pd.DataFrame | None = None) -> k.MonthlyKpis:
    """The MonthlyKpis of the shares' period from every shard's share. `frames`: the
    departments, the agents, and the customers of the visits due (the credit rule's pool,
    revisit.rules.credit); `listings`: the results database's call_list rows of the period
    (revisit.rules.credit.LISTING_COLUMNS; None: no history)."""
    period = shares[0].period
    if any(s.period != period for s in shares):
        raise ValueError(f"shares of different periods: {sorted({s.period for s in shares})}")
    months = trend_months(period, policy.report.trend_months)
    dept_frame = departments(frames)
    top = policy.report.action_rows

    def joined(name: str) -> pd.DataFrame:
        rows = [getattr(s, name) for s in shares]
        kept = [r for r in rows if len(r)]
        return pd.concat(kept, ignore_index=True) if kept else rows[0]

    def most_overdue(name: str, count: int) -> pd.DataFrame:
        rows = k._most_overdue(joined(name))
        return rows.groupby("department_id").head(count).reset_index(drop=True)

    groups = k.add_open_groups([s.open_groups for s in shares])
    visits_open = k.open_visits(groups, table(frames, "agents"))
    due = joined("due")
    return k.MonthlyKpis(
        month=period, months=months, departments=dept_frame,
        kpis=k.kpi_long(k.add_up([s.sums for s in shares], k._KEYS, k.SUM_COLUMNS),
                        joined("hours"), months,
                        dept_frame["department_id"].astype("string").tolist()),
        categories=k.top_categories(k.add_up([s.categories for s in shares],
                                             ["department_id", "category"], ("tickets",)),
                                    policy.report.top_categories),
        sla_priority=k.sla_by_priority(k.add_up([s.priorities for s in shares],
                                                k.PRIORITY_KEYS, ("met", "breached")),
                                       list(policy.sla.metrics)),
        breaches=most_overdue("breaches", policy.report.worst_breaches),
        agents=k.agent_table(table(frames, "agents"), k.credit_due(due, frames, policy, listings),
                             k.add_up([s.work for s in shares], k._AGENT_KEYS, k.AGENT_WORK),
                             period),
        quality=add_quality([s.quality for s in shares], list(policy.sla.metrics)),
        open_visits=visits_open.groupby("department_id").head(top).reset_index(drop=True),
        open_breaches=most_overdue("open_breaches", top),
        open_counts=k.open_counts(groups, _add_counts([s.open_breach_counts for s in shares])),
        verdicts=joined("verdicts").sort_values("ticket_id", kind="stable",
                                                ignore_index=True),
    )


def _add_counts(counts: list[dict[str, int]]) -> pd.Series:
    total: dict[str, int] = {}
    for one in counts:
        for key, value in one.items():
            total[key] = total.get(key, 0) + int(value)
    return pd.Series(total, dtype="int64")


def add_quality(shares: list[dict[str, dict]], metric_order: list[str]) -> dict[str, dict]:
    """kpis.data_quality of every shard added up: counts summed, the unknown SLA rows per
    metric in the policy's metric order, then any other by name."""
    out: dict[str, dict] = {}
    for share in shares:
        for dept, counts in share.items():
            into = out.setdefault(dept, {})
            for name, value in counts.items():
                if isinstance(value, dict):
                    metrics = into.setdefault(name, {})
                    for metric, n in value.items():
                        metrics[metric] = metrics.get(metric, 0) + int(n)
                else:
                    into[name] = into.get(name, 0) + int(value)
    for counts in out.values():
        for name, value in counts.items():
            if isinstance(value, dict):
                order = [m for m in metric_order if m in value]
                order += sorted(set(value) - set(order))
                counts[name] = {m: value[m] for m in order}
    return out


__all__ = ["SHARE_DICTS", "KpiShare", "add_quality", "department_ids", "departments",
           "kpi_share", "merge_shares"]
