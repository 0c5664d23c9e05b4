"""Monthly KPIs per department and for the whole company (DESIGN.md "Outputs", KPI names).

Pure functions over snapshot frames (the CRM as it stood at the end of month M, naive
business-local timestamps). One snapshot taken at the 1st of M+1 00:00 answers the previous
months too: every rule here only looks at stamps before the end of the month it measures.

Definitions (month m = [1st of m 00:00, 1st of m+1 00:00), business-local):

- `visits_due`: visit obligations (revisit.rules.visits) whose window ends in m, of customers that
  may be called (do_not_call customers are excluded and counted in the data-quality note);
  `visits_on_time`: of those, done (a reached visit of the same kind and order / ticket) or
  refused (visits.after_refusal `end`) on time by revisit.rules.visits.on_time: by the window's
  last day and not before its first day less visits.early_tolerance_days (policy 004:
  "不得擅自提前或推迟回访时间"; an early visit completes the obligation but is not on time);
  `visit_timeliness_rate` = on time / due. The recurring kinds (`periodic`, `key_account`) have
  one obligation per anchor (the cooperation start, else the day the customer record was
  created, then every reached visit that restarts the clock): revisit.rules.visits
  .recurring_history, built from the same customers and anchors as the daily call list; a
  `periodic` obligation restarted by a reached visit of another kind before its window ended
  is superseded, not due.
- `tickets_raised`: tickets created in m; `tickets_resolved`: of those, resolved (resolved_at,
  else closed_at) before the end of m; `problem_resolution_rate` = resolved / raised.
- `avg_satisfaction`: mean of visit ratings in m (1-10, x10) and ticket ratings of tickets closed
  in m (1-5, x20), pooled, on 0-100; `complaint_satisfaction`: the same over complaint tickets
  closed in m.
- `sla_compliance_rate` = met / (met + breached) over (ticket, metric) rows of revisit.rules.sla
  whose deadline falls in m, evaluated at the cut-off 1st of M+1 00:00; `sla_breaches`: breached
  rows; `sla_unknown`: rows of status unknown (the step was passed without a stamp), which count
  as neither met nor breached here, in the per-agent table or in the worst breaches.
- `median_handling_hours`: median wall-clock hours created -> resolved of tickets resolved in m.

What a head acts on (the report's action page), at the cut-off of M:
- `open_visits`: per agent (the customer's owner, flagged when inactive so the head reassigns;
  the agent table credits the agent responsible instead, revisit.rules.credit), the obligations of
  callable customers that are `overdue` at the cut-off (past their window, still on the call
  list) and those `missed` in M (the last day they could be on the list, window_end +
  visits.max_overdue_days, fell in M: older misses were last month's news); from the same
  obligations at the cut-off as the timeliness KPI.
- `open_breaches`: SLA rows breached and not achieved at the cut-off, whatever the month of
  their deadline, most overdue first.
Both keep the top `report.action_rows` rows per department; `open_counts` has the totals.

Rates are fractions 0-1; an undefined value (nothing due, no rating) is NaN (empty in the CSV).
Visits and visit ratings belong to the customer's department, tickets and SLA rows to the
ticket's; company rows (`department_id` "ALL") count every row, even one of no department.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from revisit.config.policy import Policy
from revisit.config.schema import PRIORITIES
from revisit.core.periods import (
    MONTH,
    QUARTER,
    month_end,
    month_start,
    period_unit,
    quarter_of,
)
from revisit.core.phones import mask_phone
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.visits import (
    RECURRING_KINDS,
    on_time,
    recurring_history,
    table,
    visit_obligations,
)

COMPANY = "ALL"
KPI_NAMES = (
    "visits_due", "visits_on_time", "visit_timeliness_rate",
    "tickets_raised", "tickets_resolved", "problem_resolution_rate",
    "avg_satisfaction", "complaint_satisfaction",
    "sla_compliance_rate", "sla_breaches", "median_handling_hours", "sla_unknown",
)
COUNT_KPIS = ("visits_due", "visits_on_time", "tickets_raised", "tickets_resolved",
              "sla_breaches", "sla_unknown")
KPI_COLUMNS = ("month", "department_id", "metric", "value")
VISIT_SCALE, TICKET_SCALE = 10.0, 20.0


# ================================================================= months
def _month_of(stamps: pd.Series, unit: str = MONTH) -> pd.Series:
    """'YYYY-MM' of naive timestamps (NA for NaT); with unit QUARTER, 'YYYY-Qn'.

    Why a unit: every KPI puts its rows in a period by this label and compares it with the
    period measured, so compute_monthly over a quarter label ('2026-Q3',
    revisit.core.periods) computes the quarter's own rates and medians, not means of months."""
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is not None:  # the local month, not UTC's
        stamps = stamps.dt.tz_localize(None)
    # Month numbers, then one label per month in the span: no text made per value.
    months = stamps.to_numpy("datetime64[M]")
    known = ~np.isnat(months)
    if not known.any():
        return pd.Series(pd.NA, index=stamps.index, dtype="string")
    number = months.view("int64")  # months since 1970-01
    if unit == QUARTER:
        number = number // 3  # quarters since 1970-Q1
    low = number[known].min()
    span = np.arange(low, number[known].max() + 1)
    first_months = (span * 3 if unit == QUARTER else span).astype("datetime64[M]")
    labels = np.datetime_as_string(first_months, unit="M")
    if unit == QUARTER:  # one label per quarter of the span, not per value
        labels = np.array([quarter_of(m) for m in labels.tolist()])
    codes = pa.array(np.where(known, number - low, 0).astype(np.int32), mask=~known)
    text = pa.DictionaryArray.from_arrays(codes, pa.array(labels)).cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(text), index=stamps.index, dtype="string")


def _naive(stamps: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.astype("datetime64[us]")


# ================================================================= visit obligations
def timeliness_obligations(frames: dict[str, pd.DataFrame], policy: Policy,
                           calendar: BusinessCalendar, month: str,
                           months: list[str] | None = None,
                           at_cutoff: pd.DataFrame | None = None) -> pd.DataFrame:
    """Visit obligations whose window ends in `months` (default [month]), as of the end of
    `month`: customer_id, kind, window_end, month, on_time, department_id, owner_agent_id,
    do_not_call. `at_cutoff`: visit_obligations at the end of `month`, when the caller has
    them already (compute_monthly also reads them for the action page)."""
    months = months or [month]
    cutoff = month_end(month)
    obligations = (visit_obligations(frames, policy, calendar, cutoff.date())
                   if at_cutoff is None else at_cutoff)
    single = obligations[~obligations["kind"].isin(RECURRING_KINDS).fillna(False)]
    single = pd.DataFrame({
        "customer_id": single["customer_id"].astype("string"),
        "kind": single["kind"].astype("string"),
        "window_end": single["window_end"].astype("datetime64[s]"),
        "on_time": on_time(single, policy),  # the one rule: revisit.rules.visits.on_time
    })
    recurring = recurring_history(frames, policy, calendar, cutoff.date())
    recurring = recurring.loc[~recurring["superseded"],
                              ["customer_id", "kind", "window_end", "on_time"]]
    out = pd.concat([single, recurring], ignore_index=True)
    out["month"] = _month_of(out["window_end"], period_unit(month))
    out = out[out["month"].isin(months).fillna(False)].reset_index(drop=True)
    return _with_customer(out, frames)


def _with_customer(out: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`out` (a RangeIndex, customer_id) with the customer's department_id, owner_agent_id and
    do_not_call."""
    customers = table(frames, "customers").drop_duplicates("customer_id").set_index("customer_id")
    # One lookup of the customer rows for the three columns (a lookup per column cost 3x).
    rows = customers.index.get_indexer(out["customer_id"])
    found = rows >= 0

    def of_customer(column: str) -> pd.Series:
        if not len(customers):
            return pd.Series(pd.NA, index=out.index, dtype="object")
        values = customers[column].iloc[np.where(found, rows, 0)].reset_index(drop=True)
        return values.where(pd.Series(found))

    out["department_id"] = of_customer("department_id").astype("string")
    out["owner_agent_id"] = of_customer("owner_agent_id").astype("string")
    dnc = of_customer("do_not_call")
    out["do_not_call"] = (pd.to_numeric(dnc, errors="coerce") == 1).fillna(False).to_numpy(bool)
    return out


# ================================================================= frames of facts
def _ticket_facts(frames: dict[str, pd.DataFrame], unit: str = MONTH) -> pd.DataFrame:
    """One row per ticket; its created / resolved / closed period labels in `unit`."""
    tickets = table(frames, "tickets")
    created = _naive(tickets["created_at"])
    resolved = _naive(tickets["resolved_at"]).fillna(_naive(tickets["closed_at"]))
    closed = _naive(tickets["closed_at"])
    return pd.DataFrame({
        "ticket_id": tickets["ticket_id"].astype("string"),
        "customer_id": tickets["customer_id"].astype("string"),
        "department_id": tickets["department_id"].astype("string"),
        "handler_agent_id": tickets["handler_agent_id"].astype("string"),
        "type": tickets["type"].astype("string"),
        "category": tickets["category"].astype("string"),
        "created_at": created,
        "resolved_at": resolved,
        "closed_at": closed,
        "satisfaction": pd.to_numeric(tickets["satisfaction"], errors="coerce").astype(float),
        "created_month": _month_of(created, unit),
        "resolved_month": _month_of(resolved, unit),
        "closed_month": _month_of(closed, unit),
    })


def _ratings(frames: dict[str, pd.DataFrame], tickets: pd.DataFrame,
             valid: bool = True, unit: str = MONTH) -> pd.DataFrame:
    """Every satisfaction rating on the 0-100 scale: month, department_id, score, complaint,
    agent_id (the visiting agent; NA for tickets). A rating off its scale (visits 1-10,
    tickets 1-5: a typo in the CRM) is left out; `valid=False` returns only those."""
    visits = table(frames, "visits")
    customers = table(frames, "customers").drop_duplicates("customer_id").set_index("customer_id")
    v_score = pd.to_numeric(visits["satisfaction"], errors="coerce").astype(float) * VISIT_SCALE
    rated = v_score.notna().to_numpy(bool)  # only rated visits are kept below: skip the rest early
    visits, v_score = visits[rated], v_score[rated]
    v = pd.DataFrame({
        "month": _month_of(visits["visited_at"], unit),
        "department_id": visits["customer_id"].map(customers["department_id"]).astype("string"),
        "score": v_score, "complaint": False,
        "agent_id": visits["agent_id"].astype("string"),
    })
    t = pd.DataFrame({
        "month": tickets["closed_month"],
        "department_id": tickets["department_id"],
        "score": tickets["satisfaction"] * TICKET_SCALE,
        "complaint": (tickets["type"] == "complaint").fillna(False).to_numpy(bool),
        "agent_id": pd.Series(pd.NA, index=tickets.index, dtype="string"),
    })
    out = pd.concat([v, t], ignore_index=True)
    # On its scale: 1-10 x10 for visits, 1-5 x20 for tickets, i.e. (scale .. 100) both ways.
    scale = np.r_[np.full(len(v), VISIT_SCALE), np.full(len(t), TICKET_SCALE)]
    score = out["score"].to_numpy(float)
    on_scale = (score >= scale) & (score <= 100.0)
    keep = ~np.isnan(score) & out["month"].notna().to_numpy(bool)
    keep &= on_scale if valid else ~on_scale
    return out[keep].reset_index(drop=True)


def sla_rows(frames: dict[str, pd.DataFrame], policy: Policy, calendar: BusinessCalendar,
             month: str) -> pd.DataFrame:
    """revisit.rules.sla.sla_status at the cut-off of `month`, with naive local deadline and its
    month."""
    return _localized(month_status(frames, policy, calendar, month), calendar, month)


def month_status(frames: dict[str, pd.DataFrame], policy: Policy, calendar: BusinessCalendar,
                 month: str) -> pd.DataFrame:
    """revisit.rules.sla.sla_status at the cut-off of `month` (STATUS_COLUMNS, stamps aware)."""
    from revisit.rules.sla import sla_status

    return sla_status(table(frames, "tickets"), frames.get("ticket_pauses"), policy, calendar,
                      month_end(month))


def _localized(status: pd.DataFrame, calendar: BusinessCalendar, month: str) -> pd.DataFrame:
    status = status.copy()
    for name in ("started_at", "deadline", "achieved_at"):
        status[name] = _naive(status[name].dt.tz_convert(calendar.tz))
    status["month"] = _month_of(status["deadline"], period_unit(month))
    return status


# ================================================================= KPI table
def _both(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows once per department and once more under COMPANY."""
    company = frame.assign(department_id=COMPANY)
    return pd.concat([frame[frame["department_id"].notna()], company], ignore_index=True)


def _agg(frame: pd.DataFrame, keys: list[str], **named) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=[*keys, *named])
    return frame.groupby(keys, sort=True).agg(**named).reset_index()


SUM_COLUMNS = ("visits_due", "visits_on_time", "tickets_raised", "tickets_resolved",
               "score_sum", "score_n", "complaint_sum", "complaint_n", "met", "sla_breaches",
               "sla_unknown")  # what kpi_sums adds up per (month, department_id)
_KEYS = ["month", "department_id"]


def kpi_sums(obligations: pd.DataFrame, tickets: pd.DataFrame, ratings: pd.DataFrame,
             sla: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sums and counts behind the KPIs per month and department_id (and COMPANY), only
    the pairs that have rows (SUM_COLUMNS), and the handling hours of the tickets resolved
    (month, department_id, hours): a median is no sum, so those travel whole.

    Why sums: each KPI counts its own rows (visit obligations, tickets, ratings, SLA rows), put
    in a month by its own stamp, and a sum over shards' sums is the sum over the CRM
    (revisit.rules.kpi_shares). Means are score_sum / score_n (whole-number scores add up
    exactly)."""
    due = _both(obligations[~obligations["do_not_call"]])
    visits = _agg(due, _KEYS, visits_due=("on_time", "size"), visits_on_time=("on_time", "sum"))

    ends = {m: month_end(m) for m in tickets["created_month"].dropna().unique()}
    end_of_created = pd.to_datetime(tickets["created_month"].map(ends))
    raised = _both(tickets.assign(
        month=tickets["created_month"],
        resolved=(tickets["resolved_at"] < end_of_created).fillna(False).to_numpy(bool)))
    raised_t = _agg(raised, _KEYS, tickets_raised=("ticket_id", "size"),
                    tickets_resolved=("resolved", "sum"))
    handled = tickets[tickets["resolved_month"].notna().to_numpy(bool)]
    hours = pd.DataFrame({
        "month": handled["resolved_month"].astype("string").to_numpy(),
        "department_id": handled["department_id"].astype("string").to_numpy(),
        "hours": ((handled["resolved_at"] - handled["created_at"]).dt.total_seconds() / 3600)
        .to_numpy(float)})

    rated = _both(ratings)
    sat = _agg(rated, _KEYS, score_sum=("score", "sum"), score_n=("score", "size"))
    comp = _agg(rated[rated["complaint"]], _KEYS, complaint_sum=("score", "sum"),
                complaint_n=("score", "size"))

    # unknown rows are counted on their own, never as met or breached (DESIGN.md "unknown")
    s = _both(sla[sla["status"].isin(("met", "breached", "unknown")).fillna(False)])
    s = s.assign(met=(s["status"] == "met").to_numpy(bool),
                 breached=(s["status"] == "breached").to_numpy(bool),
                 unknown=(s["status"] == "unknown").to_numpy(bool))
    sla_t = _agg(s, _KEYS, met=("met", "sum"), sla_breaches=("breached", "sum"),
                 sla_unknown=("unknown", "sum"))
    return add_up([visits, raised_t, sat, comp, sla_t], _KEYS, SUM_COLUMNS), hours


def add_up(frames: list[pd.DataFrame], keys: list[str], columns: tuple[str, ...]
           ) -> pd.DataFrame:
    """The frames' `columns` summed per `keys` (a missing column or pair counts 0), by keys:
    one shard's parts joined, or every shard's sums merged."""
    rows = [f.astype({k: "string" for k in keys}) for f in frames if len(f)]
    if not rows:
        return pd.DataFrame({**{k: pd.Series(dtype="string") for k in keys},
                             **{c: pd.Series(dtype=float) for c in columns}})
    joined = pd.concat(rows, ignore_index=True)
    for name in columns:
        joined[name] = pd.to_numeric(joined[name], errors="coerce").astype(float) \
            if name in joined else 0.0
    return joined.groupby(keys, sort=True)[list(columns)].sum().reset_index()


def kpi_long(sums: pd.DataFrame, hours: pd.DataFrame, months: list[str],
             departments: list[str]) -> pd.DataFrame:
    """All KPIs of `months` x (departments + COMPANY), long: month, department_id, metric,
    value, from kpi_sums' sums (merged) and handling hours (every shard's).

    Every (month, department, metric) is present; undefined values are NaN."""
    grid = pd.MultiIndex.from_product([months, [*departments, COMPANY]], names=_KEYS)
    wide = pd.DataFrame(index=grid)
    if len(sums):
        wide = wide.join(sums.set_index(_KEYS), how="left")
    medians = _agg(_both(hours), _KEYS, median_handling_hours=("hours", "median"))
    if len(medians):
        wide = wide.join(medians.astype({k: "string" for k in _KEYS}).set_index(_KEYS),
                         how="left")
    for name in SUM_COLUMNS:
        if name not in wide:
            wide[name] = 0
        wide[name] = pd.to_numeric(wide[name], errors="coerce").fillna(0).astype(float)
    if "median_handling_hours" not in wide:
        wide["median_handling_hours"] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        wide["avg_satisfaction"] = _ratio(wide["score_sum"], wide["score_n"])
        wide["complaint_satisfaction"] = _ratio(wide["complaint_sum"], wide["complaint_n"])
        wide["visit_timeliness_rate"] = _ratio(wide["visits_on_time"], wide["visits_due"])
        wide["problem_resolution_rate"] = _ratio(wide["tickets_resolved"], wide["tickets_raised"])
        wide["sla_compliance_rate"] = _ratio(wide["met"], wide["met"] + wide["sla_breaches"])
    long = wide[list(KPI_NAMES)].astype(float).reset_index().melt(
        id_vars=_KEYS, var_name="metric", value_name="value")
    order = {name: i for i, name in enumerate(KPI_NAMES)}
    dept_order = {d: i for i, d in enumerate([*departments, COMPANY])}
    long = long.assign(_m=long["metric"].map(order), _d=long["department_id"].map(dept_order))
    long = long.sort_values(["month", "_d", "_m"], kind="stable", ignore_index=True)
    return long.loc[:, list(KPI_COLUMNS)]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype(float)


# ================================================================= breakdowns of month M
def category_counts(tickets: pd.DataFrame, month: str) -> pd.DataFrame:
    """department_id (and COMPANY), category, tickets: tickets created in M per category
    (a missing category is "other"); add_up merges shards' counts."""
    rows = _both(tickets[(tickets["created_month"] == month).fillna(False).to_numpy(bool)])
    rows = rows.assign(category=rows["category"].fillna("other"))
    return rows.groupby(["department_id", "category"]).size().rename("tickets").reset_index()


def top_categories(counts: pd.DataFrame, top: int) -> pd.DataFrame:
    """department_id, category, tickets, share (of the department's tickets created in M):
    the `top` categories of each department, from category_counts."""
    counts = counts.assign(tickets=counts["tickets"].astype("int64"))
    totals = counts.groupby("department_id")["tickets"].transform("sum")
    counts["share"] = counts["tickets"] / totals
    counts = counts.sort_values(["department_id", "tickets", "category"],
                                ascending=[True, False, True], kind="stable")
    return counts.groupby("department_id").head(top).reset_index(drop=True)


PRIORITY_KEYS = ["department_id", "priority", "metric"]


def priority_counts(sla: pd.DataFrame, month: str) -> pd.DataFrame:
    """department_id (and COMPANY), priority, metric, met, breached for deadlines in M."""
    rows = _both(sla[(sla["month"] == month).fillna(False)
                     & sla["status"].isin(("met", "breached")).fillna(False)])
    rows = rows.assign(met=(rows["status"] == "met").to_numpy(bool),
                       breached=(rows["status"] == "breached").to_numpy(bool))
    return _agg(rows, PRIORITY_KEYS, met=("met", "sum"), breached=("breached", "sum"))


def sla_by_priority(counts: pd.DataFrame, metric_order: list[str]) -> pd.DataFrame:
    """department_id, priority, metric, met, breached, rate, from priority_counts."""
    out = counts.copy()
    if out.empty:
        return pd.DataFrame(columns=[*PRIORITY_KEYS, "met", "breached", "rate"])
    out["met"] = out["met"].astype(int)
    out["breached"] = out["breached"].astype(int)
    out["rate"] = out["met"] / (out["met"] + out["breached"])
    out["_p"] = out["priority"].map({p: i for i, p in enumerate(PRIORITIES)})
    out["_m"] = out["metric"].map({m: i for i, m in enumerate(metric_order)})
    out = out.sort_values(["department_id", "_p", "_m"], kind="stable", ignore_index=True)
    return out.drop(columns=["_p", "_m"])


def worst_breaches(sla: pd.DataFrame, frames: dict[str, pd.DataFrame], month: str,
                   top: int) -> pd.DataFrame:
    """The `top` breached rows with deadlines in M per department (and COMPANY), most overdue
    first; phones masked (the report leaves the CRM)."""
    rows = sla[(sla["month"] == month).fillna(False) & (sla["status"] == "breached").fillna(False)]
    return _most_overdue(_breach_rows(rows, frames)).groupby("department_id").head(top) \
        .reset_index(drop=True)


def _breach_rows(rows: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """SLA rows as the report lists them: customer name, masked phone, handler's name."""
    customers = table(frames, "customers").drop_duplicates("customer_id").set_index("customer_id")
    tickets = table(frames, "tickets").drop_duplicates("ticket_id").set_index("ticket_id")
    agents = table(frames, "agents").drop_duplicates("agent_id").set_index("agent_id")
    handler = rows["ticket_id"].map(tickets["handler_agent_id"]).astype("string")
    out = pd.DataFrame({
        "department_id": rows["department_id"].astype("string"),
        "ticket_id": rows["ticket_id"].astype("string"),
        "customer_name": rows["customer_id"].map(customers["name"]).astype("string"),
        "phone_masked": mask_phone(rows["customer_id"].map(customers["phone"])).to_numpy(),
        "priority": rows["priority"].astype("string"),
        "metric": rows["metric"].astype("string"),
        "deadline": rows["deadline"],
        "achieved_at": rows["achieved_at"],
        "overdue_minutes": rows["overdue_minutes"].astype(np.int64),
        "handler_agent_id": handler,
        "handler_name": handler.map(agents["name"]).astype("string"),
    })
    return _both(out)


def _most_overdue(rows: pd.DataFrame) -> pd.DataFrame:
    """By department, then most overdue first, then ticket_id."""
    return rows.sort_values(["department_id", "overdue_minutes", "ticket_id"],
                            ascending=[True, False, True], kind="stable", ignore_index=True)


# ================================================================= what a head acts on
OPEN_VISIT_COLUMNS = ("department_id", "agent_id", "name", "active", "overdue", "missed")


OPEN_GROUP_KEYS = ["department_id", "agent_id"]


def open_visit_groups(at_cutoff: pd.DataFrame, frames: dict[str, pd.DataFrame],
                      policy: Policy, month: str) -> pd.DataFrame:
    """Per department (and COMPANY) and owner (NA: no owner) with any: department_id,
    agent_id, overdue, missed — the visits `overdue` at the end of M and those `missed` in M
    (see the module's docstring), of callable customers. Shards' groups add up
    (add_open_groups); open_visits names and orders them."""
    status = at_cutoff["status"]
    last_listed = (at_cutoff["window_end"]
                   + pd.Timedelta(days=policy.visits.max_overdue_days))
    overdue = (status == "overdue").fillna(False).to_numpy(bool)
    missed = ((status == "missed").fillna(False).to_numpy(bool)
              & (last_listed >= month_start(month)).fillna(False).to_numpy(bool))
    chosen = overdue | missed
    rows = _with_customer(pd.DataFrame({
        "customer_id": at_cutoff["customer_id"].to_numpy()[chosen],
        "overdue": overdue[chosen], "missed": missed[chosen],
    }), frames)
    rows = _both(rows[~rows["do_not_call"].to_numpy(bool)])
    rows = rows.rename(columns={"owner_agent_id": "agent_id"})
    return add_open_groups([rows.loc[:, [*OPEN_GROUP_KEYS, "overdue", "missed"]]])


def add_open_groups(groups: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' overdue and missed summed per (department_id, agent_id), NA agent kept."""
    rows = [g for g in groups if len(g)]
    if not rows:
        return pd.DataFrame({"department_id": pd.Series(dtype="string"),
                             "agent_id": pd.Series(dtype="string"),
                             "overdue": pd.Series(dtype="int64"),
                             "missed": pd.Series(dtype="int64")})
    joined = pd.concat(rows, ignore_index=True).astype(
        {"department_id": "string", "agent_id": "string", "overdue": "int64",
         "missed": "int64"})
    return joined.groupby(OPEN_GROUP_KEYS, dropna=False, sort=True).agg(
        overdue=("overdue", "sum"), missed=("missed", "sum")).reset_index()


def open_visits(groups: pd.DataFrame, agents: pd.DataFrame) -> pd.DataFrame:
    """OPEN_VISIT_COLUMNS of open_visit_groups' groups: the owner's name and whether active,
    most open first, then agent_id."""
    if groups.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            OPEN_VISIT_COLUMNS, ("string", "string", "string", "bool", "int64", "int64"),
            strict=True)})
    out = groups.copy()
    agents = agents.drop_duplicates("agent_id").set_index("agent_id")
    out["name"] = out["agent_id"].map(agents["name"]).astype("string")
    out["active"] = (pd.to_numeric(out["agent_id"].map(agents["active"]), errors="coerce") == 1
                     ).fillna(False).to_numpy(bool)
    out[["overdue", "missed"]] = out[["overdue", "missed"]].astype("int64")
    out = out.assign(_open=out["overdue"] + out["missed"]).sort_values(
        ["department_id", "_open", "agent_id"], ascending=[True, False, True],
        kind="stable", na_position="last")
    return out.loc[:, list(OPEN_VISIT_COLUMNS)].reset_index(drop=True)


def open_breaches(sla: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every SLA row breached and not yet achieved at the cut-off (any deadline month), per
    department (and COMPANY), most overdue first (overdue_minutes: to the cut-off)."""
    rows = sla[(sla["status"] == "breached").fillna(False).to_numpy(bool)
               & sla["achieved_at"].isna().to_numpy(bool)]
    return _most_overdue(_breach_rows(rows, frames))


def open_counts(visits: pd.DataFrame, breaches: pd.Series) -> dict[str, dict[str, int]]:
    """Per department (and COMPANY): the totals behind the action page's top rows, from
    every open visit group and the open breaches per department (`breaches`: counts)."""
    by_dept = visits.groupby("department_id").agg(
        agents=("agent_id", "size"), overdue=("overdue", "sum"), missed=("missed", "sum"))
    by_dept = by_dept.join(breaches.rename("breaches"), how="outer")
    by_dept = by_dept.fillna(0).astype("int64")  # one row per department: small
    return {str(dept): {k: int(v) for k, v in row.items()}
            for dept, row in by_dept.to_dict("index").items()}


AGENT_COLUMNS = ("month", "department_id", "agent_id", "visits_due", "visits_on_time",
                 "visits_made", "visits_reached", "avg_visit_satisfaction", "tickets_handled",
                 "sla_breaches")  # reports/M/agents.csv and the agent_kpis table (DESIGN.md)
AGENT_COUNTS = ("visits_due", "visits_on_time", "visits_made", "visits_reached",
                "tickets_handled", "sla_breaches")
_AGENT_KEYS = ["department_id", "agent_id"]


AGENT_WORK = ("visits_made", "visits_reached", "rating_sum", "rating_n", "tickets_handled",
              "sla_breaches")  # agent_work's sums per (department_id, agent_id)


def agent_work(frames: dict[str, pd.DataFrame], tickets: pd.DataFrame, ratings: pd.DataFrame,
               sla: pd.DataFrame, month: str) -> pd.DataFrame:
    """The per-agent sums of M that do not hang on the credit rule (AGENT_WORK): the visits
    the agent made (their ratings as a sum and a count), the tickets they handle resolved in
    M and those tickets' breached SLA rows with deadlines in M."""
    rated = ratings[(ratings["month"] == month).fillna(False).to_numpy(bool)
                    & ratings["agent_id"].notna().to_numpy(bool)]
    rated = _agg(rated, _AGENT_KEYS, rating_sum=("score", "sum"), rating_n=("score", "size"))
    return add_up([_agent_visits(frames, month), rated, _agent_tickets(tickets, sla, month)],
                  _AGENT_KEYS, AGENT_WORK)


def due_visits(obligations: pd.DataFrame, month: str) -> pd.DataFrame:
    """The visits due in M of callable customers: department_id, customer_id, kind,
    window_end, on_time — what credit_due credits (one row per due visit)."""
    due = obligations[(obligations["month"] == month).fillna(False).to_numpy(bool)
                      & ~obligations["do_not_call"].to_numpy(bool)]
    return pd.DataFrame({
        "department_id": due["department_id"].astype("string").to_numpy(),
        "customer_id": due["customer_id"].astype("string").to_numpy(),
        "kind": due["kind"].astype("string").to_numpy(),
        "window_end": pd.to_datetime(due["window_end"]).to_numpy(),
        "on_time": due["on_time"].to_numpy(bool)}).astype(
            {"department_id": "string", "customer_id": "string", "kind": "string"})


def credit_due(due: pd.DataFrame, frames: dict[str, pd.DataFrame], policy: Policy,
               listings: pd.DataFrame | None = None) -> pd.DataFrame:
    """visits_due / visits_on_time per (customer's department, credited agent): the agent of
    the visit's listing (`listings`: the call_list history of M), else the assignment rules
    over every due customer (revisit.rules.credit.credited_agents: the pool is shared out
    over the whole department, so this runs over all shards' due visits; `frames`: their
    customers and the agents)."""
    from revisit.rules.credit import credited_agents

    rows = pd.DataFrame({"department_id": due["department_id"].astype("string").to_numpy(),
                         "agent_id": credited_agents(due, frames, policy, listings).to_numpy(),
                         "on_time": due["on_time"].to_numpy(bool)})
    return _agg(rows, _AGENT_KEYS, visits_due=("on_time", "size"),
                visits_on_time=("on_time", "sum"))


def agent_table(agents: pd.DataFrame, credited: pd.DataFrame, work: pd.DataFrame,
                month: str) -> pd.DataFrame:
    """One row per (department, agent) of M: AGENT_COLUMNS plus name, role, active and
    visit_timeliness_rate (on time / due), by department_id then agent_id.

    visits_due / visits_on_time (credit_due): the visits due in M credited to the agent
    responsible (revisit.rules.credit, from the call_list history of M, else the assignment
    rules); visits_made / visits_reached / avg_visit_satisfaction (0-100, the visit's 1-10 x10,
    as avg_satisfaction): the visits the agent made in M; tickets_handled: the tickets they
    handle (handler_agent_id) resolved in M; sla_breaches: those tickets' breached SLA rows
    with deadlines in M (agent_work). Each number is kept under the department its rows
    belong to (the customer's, the ticket's), and every agent of a department as of the end
    of M has a row there: see revisit.rules.credit for an agent who moved department."""
    agents = agents.drop_duplicates("agent_id").set_index("agent_id")
    members = pd.DataFrame({"department_id": agents["department_id"].astype("string").to_numpy(),
                            "agent_id": agents.index.astype("string")})
    parts = [credited, work]
    keys = pd.concat([members, *(p.loc[:, _AGENT_KEYS].astype("string") for p in parts)],
                     ignore_index=True)
    out = keys.dropna().drop_duplicates(ignore_index=True).astype("string")
    for part in parts:
        out = out.merge(part.astype({k: "string" for k in _AGENT_KEYS}), on=_AGENT_KEYS,
                        how="left")
    for name in (*AGENT_COUNTS, "rating_n", "rating_sum"):
        out[name] = pd.to_numeric(out[name], errors="coerce").fillna(0)
    for name in AGENT_COUNTS:
        out[name] = out[name].astype("int64")
    out["avg_visit_satisfaction"] = _ratio(out["rating_sum"].astype(float),
                                           out["rating_n"].astype(float))
    out = out.drop(columns=["rating_sum", "rating_n"])
    out.insert(0, "month", month)
    out["name"] = out["agent_id"].map(agents["name"]).astype("string")
    out["role"] = out["agent_id"].map(agents["role"]).astype("string")
    out["active"] = (pd.to_numeric(out["agent_id"].map(agents["active"]), errors="coerce") == 1
                     ).fillna(False).to_numpy(bool)
    out["home_department_id"] = out["agent_id"].map(agents["department_id"]).astype("string")
    out["visit_timeliness_rate"] = _ratio(out["visits_on_time"].astype(float),
                                          out["visits_due"].astype(float))
    out = out.loc[:, [*AGENT_COLUMNS, "name", "role", "active", "home_department_id",
                      "visit_timeliness_rate"]]
    return out.sort_values(_AGENT_KEYS, ignore_index=True)


def _agent_visits(frames: dict[str, pd.DataFrame], month: str) -> pd.DataFrame:
    """visits_made / visits_reached per (customer's department, visiting agent) in M."""
    visits = table(frames, "visits")
    made = visits[(_month_of(visits["visited_at"], period_unit(month)) == month)
                  .fillna(False).to_numpy(bool)]
    customers = table(frames, "customers").drop_duplicates("customer_id").set_index("customer_id")
    rows = pd.DataFrame({
        "department_id": made["customer_id"].map(customers["department_id"]).astype("string")
        .to_numpy(),
        "agent_id": made["agent_id"].astype("string").to_numpy(),
        "reached": (made["outcome"] == "reached").fillna(False).to_numpy(bool),
    })
    return _agg(rows, _AGENT_KEYS, visits_made=("reached", "size"),
                visits_reached=("reached", "sum"))


def _agent_tickets(tickets: pd.DataFrame, sla: pd.DataFrame, month: str) -> pd.DataFrame:
    """tickets_handled (resolved in M) and sla_breaches (breached rows with deadlines in M)
    per (ticket's department, handler)."""
    handled = tickets[(tickets["resolved_month"] == month).fillna(False).to_numpy(bool)]
    handled = _agg(handled.rename(columns={"handler_agent_id": "agent_id"}), _AGENT_KEYS,
                   tickets_handled=("ticket_id", "size"))
    handler = tickets.drop_duplicates("ticket_id").set_index("ticket_id")["handler_agent_id"]
    breached = sla[(sla["month"] == month).fillna(False).to_numpy(bool)
                   & (sla["status"] == "breached").fillna(False).to_numpy(bool)]
    breached = pd.DataFrame({
        "department_id": breached["department_id"].astype("string").to_numpy(),
        "agent_id": breached["ticket_id"].map(handler).astype("string").to_numpy(),
        "ticket_id": breached["ticket_id"].to_numpy(),
    })
    breaches = _agg(breached, _AGENT_KEYS, sla_breaches=("ticket_id", "size"))
    return handled.merge(breaches, on=_AGENT_KEYS, how="outer")


def data_quality(frames: dict[str, pd.DataFrame], obligations: pd.DataFrame,
                 tickets: pd.DataFrame, month: str, departments: list[str],
                 sla: pd.DataFrame | None = None, metric_order: list[str] | None = None
                 ) -> dict[str, dict]:
    """Per department (and COMPANY): what the numbers leave out or may be skewed by, among the
    rows that passed the quality gate. What the gate itself left out (unreadable values,
    ratings off their scale, tickets without a department) it counts: revisit.stages.monthly
    .left_out_by_gate. With `sla` (sla_rows): `sla_unknown`, the SLA rows with deadlines in M
    whose status is unknown, and `sla_unknown_metrics`, those counts per metric (in
    `metric_order`, the policy's, then any other by name)."""
    customers = table(frames, "customers")
    dnc = (pd.to_numeric(customers["do_not_call"], errors="coerce") == 1).fillna(False)
    due = obligations[(obligations["month"] == month)]
    out: dict[str, dict[str, int]] = {}
    for dept in [*departments, COMPANY]:
        def pick(values: pd.Series, dept: str = dept) -> np.ndarray:
            if dept == COMPANY:
                return np.ones(len(values), dtype=bool)
            return (values == dept).fillna(False).to_numpy(bool)

        out[dept] = {
            "do_not_call_customers": int((dnc.to_numpy(bool)
                                          & pick(customers["department_id"])).sum()),
            "do_not_call_visits": int((due["do_not_call"].to_numpy(bool)
                                       & pick(due["department_id"])).sum()),
            "unrated_closed_tickets": int((pick(tickets["department_id"])
                                           & (tickets["closed_month"] == month).fillna(False)
                                           .to_numpy(bool)
                                           & tickets["satisfaction"].isna().to_numpy(bool)).sum()),
        }
        if sla is not None:
            unknown = sla[pick(sla["department_id"])
                          & (sla["month"] == month).fillna(False).to_numpy(bool)
                          & (sla["status"] == "unknown").fillna(False).to_numpy(bool)]
            counts = unknown["metric"].astype(str).value_counts()
            order = [m for m in (metric_order or []) if m in counts.index]
            order += sorted(set(counts.index) - set(order))
            out[dept]["sla_unknown"] = len(unknown)
            out[dept]["sla_unknown_metrics"] = {m: int(counts[m]) for m in order}
    return out


# ================================================================= all of it
@dataclass
class MonthlyKpis:
    """Everything the monthly report of month M shows, for every department and COMPANY."""

    month: str
    months: list[str]  # trend months, oldest first, ending with `month`
    departments: pd.DataFrame  # department_id, name, head_name, head_email
    kpis: pd.DataFrame  # long: month, department_id, metric, value (all trend months)
    categories: pd.DataFrame
    sla_priority: pd.DataFrame
    breaches: pd.DataFrame
    agents: pd.DataFrame
    quality: dict[str, dict] = field(default_factory=dict)  # counts; sla_unknown_metrics a dict
    # The action page: top report.action_rows rows per department, and the totals.
    open_visits: pd.DataFrame | None = None  # OPEN_VISIT_COLUMNS
    open_breaches: pd.DataFrame | None = None  # as `breaches`, not achieved at the cut-off
    open_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # The SLA verdicts with deadlines in M at M's cut-off (revisit.rules.sla STATUS_COLUMNS):
    # what sla_compliance_rate, sla_breaches and sla_unknown count (reports/M/sla_status.csv).
    verdicts: pd.DataFrame | None = None

    def of_month(self) -> pd.DataFrame:
        """The kpis.csv rows: month M only."""
        return self.kpis[self.kpis["month"] == self.month].reset_index(drop=True)


def compute_monthly(frames: dict[str, pd.DataFrame], policy: Policy,
                    calendar: BusinessCalendar, month: str,
                    listings: pd.DataFrame | None = None) -> MonthlyKpis:
    """The KPIs of month M and the `policy.report.trend_months` - 1 months before it, plus the
    breakdowns of M, from one snapshot taken at the end of M. `listings`: the results
    database's call_list rows of M (revisit.rules.credit.LISTING_COLUMNS; None: no history),
    which say who was credited with each due visit in the agent table. One share of the whole
    CRM, merged: a sharded month is the merge of its shards' (revisit.rules.kpi_shares)."""
    from revisit.rules.kpi_shares import kpi_share, merge_shares

    return merge_shares([kpi_share(frames, policy, calendar, month)], frames, policy, listings)


def write_kpis_csv(kpis: MonthlyKpis, path: Path) -> Path:
    """reports/M/kpis.csv: month, department_id, metric, value (UTF-8, header; counts as
    integers, rates as fractions, empty when undefined); written atomically."""
    from revisit.io.files import write_text

    rows = kpis.of_month()
    values = [
        "" if pd.isna(v) else (str(int(v)) if m in COUNT_KPIS else f"{v:.6g}")
        for m, v in zip(rows["metric"], rows["value"], strict=True)
    ]
    out = rows.loc[:, ["month", "department_id", "metric"]].assign(value=values)
    return write_text(path, out.to_csv(index=False, lineterminator="\n"))


def agent_rows(kpis: MonthlyKpis) -> pd.DataFrame:
    """The agents.csv / agent_kpis rows of M: AGENT_COLUMNS of the agent table (the report's
    agent table shows the same rows and numbers)."""
    return kpis.agents.loc[:, list(AGENT_COLUMNS)].reset_index(drop=True)


def write_agents_csv(kpis: MonthlyKpis, path: Path) -> Path:
    """reports/M/agents.csv: AGENT_COLUMNS (UTF-8, header; counts as integers, the average
    rating as in kpis.csv, empty when undefined); written atomically."""
    from revisit.io.files import write_text

    rows = agent_rows(kpis)
    rows["avg_visit_satisfaction"] = [
        "" if pd.isna(v) else f"{v:.6g}" for v in rows["avg_visit_satisfaction"]]
    return write_text(path, rows.to_csv(index=False, lineterminator="\n"))


__all__ = [
    "AGENT_COLUMNS", "AGENT_WORK", "COMPANY", "KPI_COLUMNS", "KPI_NAMES", "OPEN_VISIT_COLUMNS",
    "PRIORITY_KEYS", "SUM_COLUMNS", "MonthlyKpis", "add_open_groups", "add_up", "agent_rows",
    "agent_table", "agent_work", "category_counts", "compute_monthly", "credit_due",
    "data_quality", "due_visits", "kpi_long", "kpi_sums", "open_breaches", "open_counts",
    "open_visit_groups", "open_visits", "priority_counts", "sla_by_priority", "sla_rows",
    "timeliness_obligations", "top_categories", "worst_breaches", "write_agents_csv",
    "write_kpis_csv",
]
