"""Call lists for call date D: who each agent calls today, why, in which order, and when.

Why this module: the visit obligations (revisit.rules.visits) say which visits are due; an agent
needs one row per customer (all reasons merged), ranked by urgency, spread over the department
within each agent's daily capacity, with a suggested call window that respects the customer's
time and a short human note. What cannot be listed is reported, never silently dropped: missed,
unreachable, refused and do-not-call obligations go to `not_listed` (which ones, how long:
`_reported`), customers beyond the department's capacity to `carried_over`. Customers whose
first call is coming up get an SMS pre-notice (policy 003: "提前1天通过短信/预约").

Decisions where DESIGN.md is silent:
- A call date that is not a working day has no lists, no carry-over and no SMS (agents receive
  a list per working day; the previous working day's run already pre-noticed the next working
  day); `not_listed` is still reported.
- "Last satisfaction" is the customer's latest rating before the cut-off, visit or ticket,
  judged on its own scale (visit < visit_below of 10, ticket <= ticket_at_most of 5).
- Ties in ranking go to the smaller customer_id; ties in "least loaded" to the smaller agent_id.
- Capacity: in each department the lowest-ranked rows beyond the department's total capacity
  are carried over first, so what is listed always fits; key-tier rows overflow to the other
  supervisors first, agents' rows to the other agents, then to anyone of the department.
- What not_listed reports and for how long (`visits.report_missed_days`): see `_reported`.
- The suggested window is the allowed slot holding the time of day the customer was last
  reached (they answered then), else the day's first allowed slot.

Vectorised throughout: ids are hashed once into integer positions, strings are joined with
pyarrow compute kernels; Python loops run only over visit kinds, departments, roles, the few call
slots of a day and the largest number of ids one customer has.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from revisit.config.policy import Policy
from revisit.config.translations import load_translations, translation_path
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.visits import (
    OPEN_STATUSES,
    OUTSIDE_CALENDAR,
    arrow_strings,
    as_day,
    dates,
    positions,
    table,
    timestamps,
)

# Fixed order of reason codes in `reasons` and in the note: the most urgent first, then the
# customer's life cycle.
REASON_ORDER = (
    "post_resolution", "major_complaint", "welcome", "new_product", "early_use", "stable_use",
    "long_term", "product_upgrade", "key_account", "periodic",
)
# Reasons that put a customer first on the list (DESIGN.md: post_resolution first; a major
# complaint's care call ranks with it; policy 004: "当接到客户投诉时，回访人员应立即做出
# 响应").
FIRST_REASONS = ("post_resolution", "major_complaint")
REASON_SEPARATOR = ";"
ID_SEPARATOR = ";"
REPORTED_STATUSES = ("missed", "unreachable", "refused")

CALL_LIST_COLUMNS: dict[str, str] = {
    "call_date": "string",  # ISO date
    "rank": "int64",  # 1.. within each agent's list
    "agent_id": "string",
    "customer_id": "string",
    "customer_name": "string",
    "contact_name": "string",
    "phone": "string",
    "tier": "string",
    "reasons": "string",  # reason codes in REASON_ORDER joined by ';'
    "window_end": "string",  # ISO date: the earliest window end of the reasons
    "overdue_days": "int64",
    "ticket_id": "string",  # ids of the reasons that have one, joined by ';'
    "order_id": "string",
    "suggested_window": "string",  # 'HH:MM-HH:MM'
    "note": "string",
}
CARRIED_OVER_COLUMNS: dict[str, str] = {
    "call_date": "string",
    "customer_id": "string",
    "customer_name": "string",
    "department_id": "string",
    "tier": "string",
    "reasons": "string",
    "window_end": "string",
    "overdue_days": "int64",
    "ticket_id": "string",
    "order_id": "string",
    "agent_id": "string",  # who would have had it (NA: nobody in particular)
    "reason": "string",  # capacity | no_active_agent
}
NOT_LISTED_COLUMNS: dict[str, str] = {
    "call_date": "string",
    "customer_id": "string",
    "kind": "string",
    "order_id": "string",
    "ticket_id": "string",
    "window_end": "string",
    "overdue_days": "int64",
    "status": "string",  # the obligation's status
    "reason": "string",  # missed | unreachable | refused | do_not_call (an open row of such a
    #                      customer)
    "agent_id": "string",  # the customer's owner
    "department_id": "string",
}
SMS_COLUMNS: dict[str, str] = {
    "customer_id": "string",
    "phone": "string",
    "planned_call_date": "string",  # ISO date
    "agent_id": "string",
}


@dataclass(frozen=True)
class CallListResult:
    """The call lists of one call date and what was reported instead of listed.

    lists: CALL_LIST_COLUMNS, sorted by agent_id, rank (one file per agent downstream);
    carried_over: CARRIED_OVER_COLUMNS, due customers no one had capacity for, in rank order;
    not_listed: NOT_LISTED_COLUMNS, the obligations `_reported` selects (the rule is there);
    sms_notice: SMS_COLUMNS, customers to pre-notify today, by customer_id."""

    lists: pd.DataFrame
    carried_over: pd.DataFrame
    not_listed: pd.DataFrame
    sms_notice: pd.DataFrame


# ================================================================= helpers
def _typed(data: dict[str, object] | pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """A frame with exactly `columns`, in that order and with those dtypes (also when empty)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def _iso(days: np.ndarray) -> np.ndarray:
    """datetime64 dates as ISO strings ('2026-10-16'); NaT as None."""
    days = np.asarray(days).astype("datetime64[D]")
    out = np.datetime_as_string(days, unit="D").astype(object)
    out[np.isnat(days)] = None
    return out


def _strings(values: pa.Array | pd.Series | np.ndarray) -> pd.Series:
    """Any text column as a 'string' Series with a fresh RangeIndex."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.Series(pd.array(values.cast(pa.large_string()), dtype="string"))
    return pd.Series(np.asarray(values, dtype=object), dtype="string")


def _take(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """values at positions `rows` (-1 gives NA) as a 'string' Series."""
    return pd.Series(values.astype("string").array.take(rows, allow_fill=True), dtype="string")


def _cumcount(counts: np.ndarray) -> np.ndarray:
    """0, 1, .. within each block of np.repeat(x, counts)."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts


def _join(columns: list[pa.Array], sep: str) -> pa.Array:
    """Element-wise join of string columns by `sep`, skipping nulls (all null: null).

    (pyarrow's null_handling='skip' is not used: it returns a short array in pyarrow 26.)"""
    out = columns[0]
    separator = pa.scalar(sep, pa.large_string())
    for column in columns[1:]:
        out = pc.coalesce(pc.binary_join_element_wise(out, column, separator), out, column)
    return out


def _join_groups(group: np.ndarray, values: pa.Array, size: int, sep: str) -> pa.Array:
    """Values joined by `sep` per group 0..size-1, in row order (null for a group without).

    Why not groupby(...).agg(sep.join): that calls Python once per group; this loops only over
    the largest number of values one group has."""
    null = pa.nulls(size, pa.large_string())
    if not len(group):
        return null
    order = np.argsort(group, kind="stable")
    g = group[order]
    nth = np.arange(len(g)) - np.searchsorted(g, g, side="left")
    columns = []
    for j in range(int(nth.max()) + 1):
        pick = np.full(size, -1, dtype=np.int64)
        pick[g[nth == j]] = order[nth == j]
        columns.append(values.take(pa.array(pick, mask=pick < 0)))
    return _join(columns, sep)


def _true(values: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    return values.isin(allowed).fillna(False).to_numpy(dtype=bool)


# ================================================================= messages (note column)
@dataclass(frozen=True)
class Messages:
    """The note's phrases in one locale: section `call_list` of revisit.config.translations."""

    separator: str
    id_separator: str
    reasons: dict[str, str]
    overdue: str
    overdue_one: str
    last_day: str
    key_tier: str
    low_satisfaction: str


_FIELDS = {"reasons": {"order_id", "ticket_id"}, "overdue": {"days"}, "overdue_one": {"days"}}


@lru_cache(maxsize=8)
def load_messages(locale: str) -> Messages:
    """The call-list phrases of `locale` (en filling what it lacks), checked: every reason
    present, only known fields.

    Why a file: the wording is the company's, and a translation is a text edit, not code."""
    path = translation_path(locale)
    try:
        data = dict(load_translations(locale)["call_list"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read call-list messages from {path}: {error!r}") from None
    missing = [k for k in REASON_ORDER if k not in (data.get("reasons") or {})]
    missing += [k for k in ("separator", "id_separator", "overdue", "last_day", "key_tier",
                            "low_satisfaction") if k not in data]
    if missing:
        raise ValueError(f"{path}: call_list lacks {', '.join(missing)}")
    data.setdefault("overdue_one", data["overdue"])
    for key in ("overdue", "overdue_one", "last_day", "key_tier", "low_satisfaction"):
        _check_fields(path, key, data[key], _FIELDS.get(key, set()))
    for kind in REASON_ORDER:
        _check_fields(path, f"reasons.{kind}", data["reasons"][kind], _FIELDS["reasons"])
    return Messages(**{k: data[k] for k in Messages.__dataclass_fields__})


def _check_fields(path: Path, key: str, template: str, allowed: set[str]) -> None:
    used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if used - allowed:
        raise ValueError(f"{path}: call_list.{key} uses unknown placeholder(s) "
                         f"{', '.join(sorted(used - allowed))} (allowed: {sorted(allowed)})")


def _render(template: str, present: np.ndarray, fields: dict[str, pa.Array]) -> pa.Array:
    """str.format over columns, null where not `present` (a missing field renders empty)."""
    pieces: list[pa.Array | pa.Scalar] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pa.scalar(literal, pa.large_string()))
        if field is not None:
            pieces.append(pc.fill_null(fields[field].cast(pa.large_string()), ""))
    if not pieces:
        pieces.append(pa.scalar("", pa.large_string()))
    text = pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))
    return pc.if_else(present, text, pa.scalar(None, pa.large_string()))


# ================================================================= call slots
def call_slots(policy: Policy) -> list[tuple[int, int]]:
    """The day's allowed call slots (minutes): business hours minus call_windows.avoid.

    When the policy avoids every business minute, business hours are suggested as they are
    (a list with no window would tell the agent nothing)."""
    slots = [(h.start, h.end) for h in policy.calendar.hours]
    for avoid in policy.call_windows.avoid:
        cut: list[tuple[int, int]] = []
        for start, end in slots:
            if avoid.end <= start or avoid.start >= end:
                cut.append((start, end))
                continue
            if start < avoid.start:
                cut.append((start, avoid.start))
            if avoid.end < end:
                cut.append((avoid.end, end))
        slots = cut
    return slots or [(h.start, h.end) for h in policy.calendar.hours]


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def suggested_windows(minute_of_day: np.ndarray, policy: Policy) -> np.ndarray:
    """'HH:MM-HH:MM' per row: the allowed slot containing the time of day the customer was last
    reached (they answered then), else the day's first allowed slot. NaN minute = never reached."""
    slots = call_slots(policy)
    labels = np.array([f"{_fmt(s)}-{_fmt(e)}" for s, e in slots], dtype=object)
    minute = np.asarray(minute_of_day, dtype="float64")
    choice = np.zeros(len(minute), dtype=np.int64)
    found = np.zeros(len(minute), dtype=bool)
    for i, (start, end) in enumerate(slots):
        inside = ~found & (minute >= start) & (minute < end)
        choice[inside] = i
        found |= inside
    return labels[choice]


# ================================================================= customers and history
# What build_call_list reads of the customers table (a merge of shards reads only these).
CUSTOMER_READS = ("customer_id", "name", "contact_name", "phone", "tier", "department_id",
                  "owner_agent_id", "do_not_call")


@dataclass(frozen=True)
class _Customers:
    """The customers table, deduplicated, with the flags the rules need as numpy arrays."""

    frame: pd.DataFrame
    ids: pd.Series
    do_not_call: np.ndarray
    key: np.ndarray

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> _Customers:
        c = table(frames, "customers")
        c = c[c["customer_id"].notna().to_numpy(dtype=bool)].drop_duplicates("customer_id")
        c = c.reset_index(drop=True)
        return cls(
            frame=c,
            ids=c["customer_id"].astype("string"),
            do_not_call=pd.to_numeric(c["do_not_call"]).fillna(0).to_numpy() != 0,
            key=_true(c["tier"].astype("string"), ("key",)),
        )

    def take(self, column: str, rows: np.ndarray) -> pd.Series:
        return _take(self.frame[column], rows)


def _history(frames: dict[str, pd.DataFrame], policy: Policy, cutoff: np.datetime64,
             customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """For the given customers: (low satisfaction flag, minute of day of the last reached visit
    or NaN).

    Why: customers whose satisfaction was low rank first among equals (the policy's
    "历史满意度较低" priority), and the suggested window holds the time of day the customer last
    answered. Low = the customer's latest rating before the cut-off is low on its own scale: a
    visit's below visit_below (of 10), a ticket's at most ticket_at_most (of 5); whichever
    source it came from (a visit rated at the same instant as a ticket wins)."""
    rule = policy.visits.low_satisfaction
    minute, visit_at, visit_score = _visit_history(frames, cutoff, customer_ids)
    ticket_at, ticket_score = _ticket_rating(frames, cutoff, customer_ids)
    use_ticket = ~np.isnat(ticket_at) & (np.isnat(visit_at) | (ticket_at > visit_at))
    use_visit = ~np.isnat(visit_at) & ~use_ticket
    low = np.zeros(len(customer_ids), dtype=bool)
    low[use_visit] = visit_score[use_visit] < rule.visit_below
    low[use_ticket] = ticket_score[use_ticket] <= rule.ticket_at_most
    return low, minute


HISTORY_COLUMNS: dict[str, str] = {  # customer_history: what the ranking reads of the past
    "customer_id": "string",
    "low_satisfaction": "bool",
    "last_reached_minute": "float64",  # minute of day, NaN: never reached
}


def customer_history(frames: dict[str, pd.DataFrame], policy: Policy, call_date: dt.date,
                     customer_ids: pd.Series) -> pd.DataFrame:
    """_history of `customer_ids` as a table (HISTORY_COLUMNS), from `frames`' visits and
    tickets.

    Why a table: a shard computes it over its own customers' visits and tickets, so the task
    that merges the shards builds the lists without either table (DESIGN.md scale-out)."""
    ids = pd.Series(customer_ids, dtype="string").reset_index(drop=True)
    low, minute = _history(frames, policy, as_day(call_date).astype("datetime64[us]"), ids)
    return _typed({"customer_id": ids, "low_satisfaction": low,
                   "last_reached_minute": minute}, HISTORY_COLUMNS)


def _history_of(history: pd.DataFrame | None, frames: dict[str, pd.DataFrame],
                policy: Policy, call_day: np.datetime64,
                customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """_history of the given customers: computed from `frames`, or looked up in a
    customer_history table (a customer it does not name: not low, never reached)."""
    if history is None:
        return _history(frames, policy, call_day.astype("datetime64[us]"), customer_ids)
    at = positions(customer_ids, history["customer_id"])
    found = at >= 0
    low = np.zeros(len(at), dtype=bool)
    low[found] = history["low_satisfaction"].to_numpy(bool)[at[found]]
    minute = np.full(len(at), np.nan)
    minute[found] = history["last_reached_minute"].to_numpy("float64")[at[found]]
    return low, minute


def _visit_history(frames: dict[str, pd.DataFrame], cutoff: np.datetime64,
                   customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer, from their visits before the cut-off: (minute of day of the last reached
    one or NaN, when the last rated one was made or NaT, its satisfaction or NaN)."""
    size = len(customer_ids)
    v = table(frames, "visits")
    at = timestamps(v["visited_at"])
    score = pd.to_numeric(v["satisfaction"]).to_numpy(dtype="float64", na_value=np.nan)
    reached = _true(v["outcome"].astype("string"), ("reached",))
    rated = ~np.isnan(score)
    rows, who = _rows_of(v["customer_id"], (at < cutoff) & (reached | rated), customer_ids)
    last_reached = _latest(reached[rows], at[rows], who, size)
    minute = np.full(size, np.nan)
    got = last_reached >= 0
    stamp = pd.DatetimeIndex(at[rows][last_reached[got]])
    minute[got] = stamp.hour * 60 + stamp.minute
    rated_at, rated_score = _latest_rating(rated[rows], at[rows], score[rows], who, size)
    return minute, rated_at, rated_score


def _ticket_rating(frames: dict[str, pd.DataFrame], cutoff: np.datetime64,
                   customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: (when their latest ticket rating before the cut-off was given or NaT, its
    satisfaction or NaN). A ticket's rating is stamped when it closed, else when the result
    was fed back, it was resolved, it was created (CRMs rate at different steps)."""
    t = table(frames, "tickets")
    stamp = timestamps(t["closed_at"])
    for fallback in ("result_fed_back_at", "resolved_at", "created_at"):
        stamp = np.where(np.isnat(stamp), timestamps(t[fallback]), stamp)
    score = pd.to_numeric(t["satisfaction"]).to_numpy(dtype="float64", na_value=np.nan)
    rows, who = _rows_of(t["customer_id"], (stamp < cutoff) & ~np.isnan(score), customer_ids)
    return _latest_rating(np.ones(len(rows), dtype=bool), stamp[rows], score[rows], who,
                          len(customer_ids))


def _rows_of(ids: pd.Series, keep: np.ndarray,
             customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(rows where `keep` whose id is one of customer_ids, that customer's position per row).

    Why: ids are hashed once (revisit.rules.visits.positions); the rest works on integers."""
    rows = np.flatnonzero(keep)
    who = positions(ids.iloc[rows], customer_ids) if len(rows) else rows
    return rows[who >= 0], who[who >= 0]


def _latest(mask: np.ndarray, stamp: np.ndarray, group: np.ndarray, size: int) -> np.ndarray:
    """Per group 0..size-1, the row (index into stamp) of the latest stamp among the rows of
    `mask` (equal stamps: the later row), -1 for none. One lexsort instead of a groupby."""
    sel = np.flatnonzero(mask)
    order = sel[np.lexsort((stamp[sel], group[sel]))]
    last = order[np.r_[group[order][1:] != group[order][:-1], True]] if len(order) else order
    out = np.full(size, -1, dtype=np.int64)
    out[group[last]] = last
    return out


def _latest_rating(mask: np.ndarray, stamp: np.ndarray, score: np.ndarray, group: np.ndarray,
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """(stamp, score) of each group's latest row among `mask`; (NaT, NaN) for none."""
    last = _latest(mask, stamp, group, size)
    got = last >= 0
    at = np.full(size, np.datetime64("NaT", "us"))
    at[got] = stamp[last[got]]
    value = np.full(size, np.nan)
    value[got] = score[last[got]]
    return at, value


# ================================================================= staff and assignment
@dataclass(frozen=True)
class _Staff:
    """Agents sorted by agent_id (so position order = tie-break order)."""

    ids: np.ndarray
    dept: np.ndarray
    role: np.ndarray
    active: np.ndarray
    capacity: np.ndarray

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame], policy: Policy) -> _Staff:
        a = table(frames, "agents")
        a = a[a["agent_id"].notna().to_numpy(dtype=bool)].drop_duplicates("agent_id")
        a = a.assign(_id=a["agent_id"].astype("string")).sort_values("_id", kind="stable")
        capacity = pd.to_numeric(a["daily_capacity"]).fillna(policy.assignment.daily_capacity)
        return cls(
            ids=a["_id"].to_numpy(dtype=object),
            dept=a["department_id"].astype("string").fillna("").to_numpy(dtype=object),
            role=a["role"].astype("string").fillna("").to_numpy(dtype=object),
            active=pd.to_numeric(a["active"]).fillna(0).to_numpy() != 0,
            capacity=np.maximum(capacity.to_numpy(dtype=np.int64), 0),
        )

    def position(self, ids: pd.Series) -> np.ndarray:
        """Position of each agent id (-1: unknown or NA)."""
        if not len(self.ids):
            return np.full(len(ids), -1, dtype=np.int64)
        return positions(ids, pd.Series(self.ids, dtype="string"))

    def members(self, dept: str, role: str | None = None) -> np.ndarray:
        """Active staff of a department (optionally of one role), in agent_id order."""
        mask = self.active & (self.dept == dept)
        if role is not None:
            mask &= self.role == role
        return np.flatnonzero(mask)

    def id_of(self, rows: np.ndarray) -> np.ndarray:
        """Agent ids at positions (None for -1)."""
        if not len(self.ids):
            return np.full(len(rows), None, dtype=object)
        return np.where(rows >= 0, self.ids[np.maximum(rows, 0)], None)


def _water_fill(count: int, loads: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Greedy least-loaded assignment of `count` rows (in rank order) to a pool, ties to the
    earlier member, nobody beyond their capacity: index into the pool per row, -1 = no room.

    Why slots: member i's s-th new row is taken at load level loads[i] + s, and greedy
    least-loaded takes the slots in (level, member) order, so sorting the slots gives the same
    answer as the row-by-row greedy loop, in one lexsort."""
    spare = _slots_up_to_level(loads, np.clip(caps - loads, 0, count), count)
    who = np.repeat(np.arange(len(loads)), spare)
    level = loads[who] + _cumcount(spare)
    order = np.lexsort((who, level))[:count]
    out = np.full(count, -1, dtype=np.int64)
    out[: len(order)] = who[order]
    return out


def _slots_up_to_level(loads: np.ndarray, spare: np.ndarray, count: int) -> np.ndarray:
    """Per member, how many of its `spare` slots (levels loads[i], loads[i] + 1, ..) lie at or
    below the lowest level L that holds `count` slots in all: the greedy's `count` picks are
    the lowest slots, so none above L is ever taken.

    Why: an unbounded pool (the monthly credit's, revisit.rules.credit) offered every member
    `count` slots, members x count in all: 1.1 GB of the monthly merge's peak at 3 M customers
    (memray); now at most count + members."""
    if count == 0 or not len(loads):
        return np.zeros_like(spare)

    def upto(level: int) -> np.ndarray:
        return np.clip(level - loads + 1, 0, spare)

    lo, hi = int(loads.min()), int((loads + spare).max())
    if upto(hi).sum() <= count:
        return spare
    while lo < hi:  # the smallest level with `count` slots at or below it
        mid = (lo + hi) // 2
        if upto(mid).sum() >= count:
            hi = mid
        else:
            lo = mid + 1
    return upto(lo)


def _preferred(owner: pd.Series, dept_ids: pd.Series, key: np.ndarray, staff: _Staff,
               policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(direct agent position or -1, role of the pool to draw from, team) per row.

    Owner if active; key tier (when key_tier_to_supervisor) to the owner if they are an active
    supervisor of the customer's department, else to the pool of its supervisors (or, without
    any, to the owner / the department's agents); an inactive owner's customers to the pool of
    the department's agents. A row's team is its direct agent's department, else the
    customer's: overflow goes to the direct agent's colleagues."""
    dept = dept_ids.astype("string").fillna("").to_numpy(dtype=object)
    n = len(dept)
    if not len(staff.ids):
        return np.full(n, -1, dtype=np.int64), np.full(n, "agent", dtype=object), dept
    own = staff.position(owner)
    o = np.maximum(own, 0)
    owner_active = (own >= 0) & staff.active[o]
    owner_sup_here = owner_active & (staff.role[o] == "supervisor") & (staff.dept[o] == dept)
    has_sup = np.isin(dept, np.unique(staff.dept[staff.active & (staff.role == "supervisor")]))
    key = key & policy.assignment.key_tier_to_supervisor
    to_sup_pool = key & ~owner_sup_here & has_sup
    direct = np.where(key & owner_sup_here, own,
                      np.where(~to_sup_pool & owner_active, own, -1)).astype(np.int64)
    pool_role = np.where(to_sup_pool, "supervisor", "agent").astype(object)
    team = np.where(direct >= 0, staff.dept[np.maximum(direct, 0)], dept).astype(object)
    return direct, pool_role, team


def _fill_pools(agent: np.ndarray, want_mask: np.ndarray, pool_role: np.ndarray,
                team: np.ndarray, staff: _Staff, load: np.ndarray,
                capacity: np.ndarray) -> None:
    """Rows of `want_mask` still without agent (in rank order) to the least-loaded member with
    room: of their team and preferred role first, then of their team, whatever the role.
    Updates `agent` and `load` in place."""
    for dept in pd.unique(team[want_mask]):
        in_team = want_mask & (team == dept)
        for role in ("supervisor", "agent", None):
            wanted = in_team & (agent < 0)
            if role is not None:
                wanted &= pool_role == role
            want = np.flatnonzero(wanted)
            pool = staff.members(dept, role)
            if not len(want) or not len(pool):
                continue
            got = _water_fill(len(want), load[pool], capacity[pool])
            took = got >= 0
            agent[want[took]] = pool[got[took]]
            np.add.at(load, pool[got[took]], 1)


def _assign(owner: pd.Series, dept: pd.Series, key: np.ndarray, staff: _Staff,
            policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agent position per row (-1: carried over), the carry-over reason, the intended agent.

    Rows are in rank order. Steps: (0) in each team, rows beyond the team's total capacity
    (the lowest ranked) are carried over, so what stays always fits; (1) direct rows go to their
    agent up to capacity, in rank order; (2) the rest, in rank order, to the least-loaded member
    with room of the preferred role (supervisors' overflow to supervisors first), then (3) to
    the least-loaded member of the team with room."""
    n = len(key)
    direct, pool_role, team = _preferred(owner, dept, key, staff, policy)
    agent = np.full(n, -1, dtype=np.int64)
    reason = np.full(n, None, dtype=object)
    if n == 0:
        return agent, reason, direct
    active = staff.active
    team_cap = pd.Series(staff.capacity[active]).groupby(staff.dept[active]).sum()
    cap = team_cap.reindex(team).fillna(0).to_numpy()
    team_rank = pd.Series(team).groupby(team, sort=False).cumcount().to_numpy()
    over = team_rank >= cap
    reason[over] = np.where(cap[over] > 0, "capacity", "no_active_agent")

    d_rows = np.flatnonzero(~over & (direct >= 0))
    nth = pd.Series(direct[d_rows]).groupby(direct[d_rows]).cumcount().to_numpy()
    fits = nth < staff.capacity[direct[d_rows]]
    agent[d_rows[fits]] = direct[d_rows[fits]]
    overflow = d_rows[~fits]
    pool_role[overflow] = staff.role[direct[overflow]]

    load = np.bincount(agent[agent >= 0], minlength=len(staff.ids))
    _fill_pools(agent, ~over & (agent < 0), pool_role, team, staff, load, staff.capacity)
    reason[~over & (agent < 0)] = "capacity"  # only when team data disagree with staff data
    return agent, reason, direct


# The customers' columns rule_agents reads (_Customers.of, _preferred): a caller that holds
# customers only for it reads just these (the monthly merge: every due customer of the CRM).
RULE_CUSTOMER_COLUMNS = ("customer_id", "department_id", "owner_agent_id", "tier", "do_not_call")


def rule_agents(customer_ids: pd.Series, frames: dict[str, pd.DataFrame],
                policy: Policy) -> np.ndarray:
    """The agent id (None: nobody) the assignment rules give each customer, capacity aside.

    Why here: the monthly per-agent credit (revisit.rules.credit) falls back to these rules
    when no call list says who had a visit, and must pick exactly as the daily list does:
    `_preferred` (owner; key tier -> a supervisor of the department; inactive owner -> the
    department's agents), then pooled customers, in the given order, to the least-loaded
    pool member (ties to the smaller agent_id), as the SMS pre-notice picks its agent."""
    customers, staff = _Customers.of(frames), _Staff.of(frames, policy)
    rows = positions(customer_ids, customers.ids)
    known = rows >= 0
    key = np.zeros(len(rows), dtype=bool)
    key[known] = customers.key[rows[known]]
    direct, pool_role, team = _preferred(customers.take("owner_agent_id", rows),
                                         customers.take("department_id", rows), key, staff,
                                         policy)
    agent = direct.copy()
    unbounded = np.full(len(staff.ids), np.iinfo(np.int32).max, dtype=np.int64)
    _fill_pools(agent, known & (agent < 0), pool_role, team, staff,
                np.zeros(len(staff.ids), dtype=np.int64), unbounded)
    agent[~known] = -1
    return staff.id_of(agent)


# ================================================================= the lists
@dataclass(frozen=True)
class _Listed:
    """Open obligations merged to one row per customer (not yet ranked)."""

    customer: np.ndarray  # position in _Customers
    window_end: np.ndarray  # datetime64[D]
    has_post: np.ndarray  # a reason of FIRST_REASONS
    reasons: pa.Array
    ticket_ids: pa.Array
    order_ids: pa.Array
    kind_present: dict[str, np.ndarray]
    kind_ids: dict[str, dict[str, pa.Array]]  # kind -> field -> ids joined for the note


def _merge(open_rows: pd.DataFrame, who: np.ndarray, messages: Messages) -> _Listed:
    """One row per customer from their open obligations: reasons in REASON_ORDER, the earliest
    window end, and the order / ticket ids of the reasons (in reason order, distinct)."""
    customers, group = np.unique(who, return_inverse=True)
    size = len(customers)
    kind = positions(open_rows["kind"], pa.array(REASON_ORDER))
    end = open_rows["window_end"].to_numpy().astype("datetime64[D]")
    end_i = np.full(size, np.iinfo(np.int64).max)
    np.minimum.at(end_i, group, end.astype(np.int64))
    present = {k: np.bincount(group[kind == i], minlength=size) > 0
               for i, k in enumerate(REASON_ORDER)}
    null = pa.scalar(None, pa.large_string())
    reasons = _join([pc.if_else(present[k], pa.scalar(k, pa.large_string()), null)
                     for k in REASON_ORDER], REASON_SEPARATOR)
    ids: dict[str, pa.Array] = {}
    kind_ids: dict[str, dict[str, pa.Array]] = {k: {} for k in REASON_ORDER}
    for field in ("ticket_id", "order_id"):
        values = open_rows[field].astype("string")
        frame = pd.DataFrame({"g": group, "k": kind, "v": values.to_numpy()})
        frame = frame[values.notna().to_numpy(dtype=bool)]
        frame = frame.sort_values(["g", "k", "v"], kind="stable")
        for i, k in enumerate(REASON_ORDER):
            one = frame[frame["k"] == i].drop_duplicates(["g", "v"])
            kind_ids[k][field] = _join_groups(one["g"].to_numpy(), arrow_strings(one["v"]),
                                              size, messages.id_separator)
        distinct = frame.drop_duplicates(["g", "v"])
        ids[field] = _join_groups(distinct["g"].to_numpy(), arrow_strings(distinct["v"]),
                                  size, ID_SEPARATOR)
    return _Listed(customer=customers, window_end=end_i.astype("datetime64[D]"),
                   has_post=np.logical_or.reduce([present[k] for k in FIRST_REASONS]),
                   reasons=reasons,
                   ticket_ids=ids["ticket_id"], order_ids=ids["order_id"],
                   kind_present=present, kind_ids=kind_ids)


def _notes(listed: _Listed, overdue: np.ndarray, key: np.ndarray, low: np.ndarray,
           messages: Messages, call_day: np.datetime64) -> pa.Array:
    """The note per listed customer: reason phrases, then overdue / last day / key / low."""
    parts = [_render(messages.reasons[k], listed.kind_present[k], listed.kind_ids[k])
             for k in REASON_ORDER]
    days = {"days": pa.array(overdue).cast(pa.large_string())}
    parts.append(_render(messages.overdue, overdue > 1, days))
    parts.append(_render(messages.overdue_one, overdue == 1, days))
    parts.append(_render(messages.last_day, listed.window_end == call_day, {}))
    parts.append(_render(messages.key_tier, key, {}))
    parts.append(_render(messages.low_satisfaction, low, {}))
    return _join(parts, messages.separator)


def build_call_list(obligations: pd.DataFrame, frames: dict[str, pd.DataFrame], policy: Policy,
                    calendar: BusinessCalendar, call_date: dt.date,
                    history: pd.DataFrame | None = None) -> CallListResult:
    """Today's call lists from the obligations of revisit.rules.visits.visit_obligations (or
    their listable_obligations: the same lists).

    Why one entry point: ranking, assignment, carry-over and the SMS list depend on each other
    (a customer on today's list gets no pre-notice; the SMS names who would call). Dates in the
    output are ISO strings (YYYY-MM-DD), ids strings; column orders are the *_COLUMNS dicts.
    On a non-working call date only `not_listed` has rows. `frames` needs customers and agents,
    and visits and tickets unless `history` (customer_history of the customers with open
    obligations) is given."""
    call_day = as_day(call_date)
    customers = _Customers.of(frames)
    staff = _Staff.of(frames, policy)
    messages = load_messages(policy.report.locale)
    sms_day = _sms_day(calendar, policy, call_day)
    today = _Today.of(obligations, customers, sms_day)
    not_listed = _not_listed(today, customers, call_day, policy)
    # Nobody calls on a non-working day: no lists, no carry-over, no SMS (the last working
    # day's run already pre-noticed the next working day's first calls).
    working = bool(calendar.is_working_day(pd.Timestamp(str(call_day))))
    low, minute = _history_of(history, frames, policy, call_day,
                              _ranked_customers(today, customers, working))
    frame, rows = _ranked(today, customers, low, minute, policy, messages, call_day, working)
    lists, carried, load = _assigned(frame, rows, customers, staff, policy)
    sms = _sms_notice(today, customers, staff, policy, calendar, sms_day, load) if working \
        else pd.DataFrame(columns=list(SMS_COLUMNS))
    return CallListResult(
        lists=_typed(lists, CALL_LIST_COLUMNS),
        carried_over=_typed(carried, CARRIED_OVER_COLUMNS),
        not_listed=not_listed,
        sms_notice=_typed(sms, SMS_COLUMNS),
    )


@dataclass(frozen=True)
class _Today:
    """The obligations today's outputs can use, of known customers, with their flags.

    Why a subset: only open rows are listed, reported statuses may go to not_listed and upcoming
    rows up to the SMS day make the pre-notice; the rest (done, later upcoming) would only cost
    time on every step after."""

    rows: pd.DataFrame  # OBLIGATION_COLUMNS, fresh RangeIndex
    who: np.ndarray  # the customer's position in _Customers
    status: pd.Series
    is_open: np.ndarray
    dnc: np.ndarray  # the customer is do-not-call

    @classmethod
    def of(cls, obligations: pd.DataFrame, customers: _Customers,
           sms_day: np.datetime64) -> _Today:
        ob = obligations[_usable(obligations, sms_day)].reset_index(drop=True)
        who = positions(ob["customer_id"], customers.ids)
        ob, who = ob[who >= 0].reset_index(drop=True), who[who >= 0]
        status = ob["status"].astype("string")
        return cls(rows=ob, who=who, status=status, is_open=_true(status, OPEN_STATUSES),
                   dnc=customers.do_not_call[who])


def _usable(obligations: pd.DataFrame, sms_day: np.datetime64) -> np.ndarray:
    """The rows _Today keeps: open, reported, or upcoming with a window opening by the SMS day."""
    status = obligations["status"].astype("string")
    soon = _true(status, ("upcoming",)) & (dates(obligations["window_start"]) <= sms_day)
    return _true(status, OPEN_STATUSES) | _true(status, REPORTED_STATUSES) | soon


def _sms_day(calendar: BusinessCalendar, policy: Policy, call_day: np.datetime64
             ) -> np.datetime64:
    """The days_ahead-th working day after D: whose first call today's SMS pre-notices."""
    return calendar.add_working_days_to_date(
        np.array([call_day], dtype="datetime64[D]"), policy.sms_notice.days_ahead,
        outside=OUTSIDE_CALENDAR)[0]


def listable_obligations(obligations: pd.DataFrame, policy: Policy,
                         calendar: BusinessCalendar, call_date: dt.date) -> pd.DataFrame:
    """The obligations build_call_list can use at D, in their order: it gives the same lists
    from these as from all.

    Why: a shard hands on these only (a few per customer with something to do) instead of
    every past and future window of its customers."""
    sms_day = _sms_day(calendar, policy, as_day(call_date))
    return obligations[_usable(obligations, sms_day)].reset_index(drop=True)


# ================================================================= not listed
def _reported(today: _Today, call_day: np.datetime64, policy: Policy) -> np.ndarray:
    """Which obligations go to not_listed (not_listed.csv), and for how long.

    The rule is stated in full only here; policy.yaml and the docs point to it.
    not_listed is a daily report, so it names what needs attention now:
    - a missed, unreachable or refused obligation of a callable customer is reported while
      D - window_end <= max_overdue_days + report_missed_days (policy `visits.max_overdue_days`
      and `visits.report_missed_days`, 30 and 30 as shipped): from the day it is missed (or
      found unreachable, also while its window is still open) until report_missed_days days
      after the last day it could have been on the call list (window_end + max_overdue_days),
      then no more (refused: only with visits.after_refusal `end`, from the day of the
      refusal; policy 004 "尊重客户的意见和选择": the customer is not called for it again, and
      the report says why);
    - a do-not-call customer's due / overdue obligations are reported, reason do_not_call
      (they would be listed otherwise); their missed / unreachable / refused ones are not."""
    rules = policy.visits
    late = (call_day - dates(today.rows["window_end"])).astype(np.int64)
    recent = late <= rules.max_overdue_days + rules.report_missed_days
    return (_true(today.status, REPORTED_STATUSES) & recent & ~today.dnc) | \
        (today.is_open & today.dnc)


def _not_listed(today: _Today, customers: _Customers, call_day: np.datetime64,
                policy: Policy) -> pd.DataFrame:
    """The not_listed report (NOT_LISTED_COLUMNS): the rows _reported selects, each with its
    reason (do_not_call, else its status) and the customer's owner and department, so that
    someone can act on it."""
    rep = np.flatnonzero(_reported(today, call_day, policy))
    ob, who, status = today.rows, today.who[rep], today.status
    return _typed({
        "call_date": str(call_day),
        "customer_id": _take(customers.ids, who),
        "kind": _take(ob["kind"], rep),
        "order_id": _take(ob["order_id"], rep),
        "ticket_id": _take(ob["ticket_id"], rep),
        "window_end": _iso(ob["window_end"].to_numpy()[rep]),
        "overdue_days": ob["overdue_days"].to_numpy()[rep],
        "status": _take(status, rep),
        "reason": np.where(today.dnc[rep], "do_not_call",
                           status.to_numpy(dtype=object, na_value=None)[rep]),
        "agent_id": customers.take("owner_agent_id", who),
        "department_id": customers.take("department_id", who),
    }, NOT_LISTED_COLUMNS)


# ================================================================= ranked, then assigned
def _listed_rows(today: _Today, working: bool) -> np.ndarray:
    """Rows of `today` to call: due / overdue, not do-not-call; none on a non-working day."""
    return np.flatnonzero(today.is_open & ~today.dnc) if working else np.zeros(0, dtype=np.int64)


def _ranked_customers(today: _Today, customers: _Customers, working: bool) -> pd.Series:
    """The ids of the customers _ranked lists, in _merge's order (its `customer`)."""
    return _take(customers.ids, np.unique(today.who[_listed_rows(today, working)]))


def _ranked(today: _Today, customers: _Customers, low: np.ndarray, minute: np.ndarray,
            policy: Policy, messages: Messages, call_day: np.datetime64,
            working: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """(one row per customer to call today, in rank order, with the call-list columns but
    agent_id and rank, plus department_id; each row's position in _Customers). `low` and
    `minute`: _history of _ranked_customers.

    Who: _listed_rows. Why merged first: the ranking and the note look at all of a customer's
    reasons."""
    keep = _listed_rows(today, working)
    merged = _merge(today.rows.iloc[keep], today.who[keep], messages)
    c = merged.customer
    overdue = np.maximum((call_day - merged.window_end).astype(np.int64), 0)
    key = customers.key[c]
    order = _rank_order(merged, overdue, key, low, _take(customers.ids, c))
    notes = _notes(merged, overdue, key, low, messages, call_day)
    rows = c[order]
    frame = pd.DataFrame({
        "customer_id": _take(customers.ids, rows),
        "customer_name": customers.take("name", rows),
        "contact_name": customers.take("contact_name", rows),
        "phone": customers.take("phone", rows),
        "tier": customers.take("tier", rows),
        "department_id": customers.take("department_id", rows),
        "reasons": _strings(merged.reasons.take(order)),
        "window_end": _iso(merged.window_end[order]),
        "overdue_days": overdue[order],
        "ticket_id": _strings(merged.ticket_ids.take(order)),
        "order_id": _strings(merged.order_ids.take(order)),
        "suggested_window": suggested_windows(minute[order], policy),
        "note": _strings(notes.take(order)),
        "call_date": str(call_day),
    })
    return frame, rows


def _rank_order(merged: _Listed, overdue: np.ndarray, key: np.ndarray, low: np.ndarray,
                ids: pd.Series) -> np.ndarray:
    """Positions of the merged rows in call order (DESIGN.md "Business rules — visits"):
    post_resolution or major_complaint (FIRST_REASONS) first, then overdue, then tier key, then
    low last satisfaction, then the earliest window end, then the smaller customer_id."""
    rank_keys = pd.DataFrame({
        "post": merged.has_post, "late": overdue > 0, "key": key, "low": low,
        "end": merged.window_end, "id": ids,
    }).sort_values(["post", "late", "key", "low", "end", "id"],
                   ascending=[False, False, False, False, True, True], kind="stable")
    return rank_keys.index.to_numpy()


def _assigned(frame: pd.DataFrame, rows: np.ndarray, customers: _Customers, staff: _Staff,
              policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(the lists, the carried-over rows, rows per agent) of the ranked `frame` (see _assign).

    Each agent's rows keep the call order and are ranked 1..; a carried-over row names the
    agent who would have had it, so a supervisor knows whose work piled up. The load feeds
    the SMS list's choice of the least-loaded agent."""
    agent, carry_reason, intended = _assign(
        customers.take("owner_agent_id", rows), frame["department_id"], customers.key[rows],
        staff, policy)
    taken = agent >= 0
    lists = frame[taken].assign(agent_id=staff.id_of(agent[taken]))
    lists["rank"] = lists.groupby("agent_id", sort=False).cumcount().to_numpy() + 1
    lists = lists.sort_values(["agent_id", "rank"], kind="stable")
    carried = frame[~taken].assign(agent_id=staff.id_of(intended[~taken]),
                                   reason=carry_reason[~taken])
    return lists, carried, np.bincount(agent[taken], minlength=len(staff.ids))


# ================================================================= SMS pre-notice
def _sms_notice(today: _Today, customers: _Customers, staff: _Staff, policy: Policy,
                calendar: BusinessCalendar, sms_day: np.datetime64,
                load: np.ndarray) -> pd.DataFrame:
    """Customers whose first call falls on the days_ahead-th working day after D (a window
    opening on a non-working day is first called on the next working day), who are not
    do-not-call and have nothing open today; with the agent who would call them, capacity
    aside (pooled customers to the least-loaded pool member counting today's lists)."""
    ob, who = today.rows, today.who
    up = np.flatnonzero(_true(today.status, ("upcoming",)) & ~today.dnc)
    first_call = calendar.add_working_days_to_date(
        np.asarray(dates(ob["window_start"].iloc[up]), dtype="datetime64[D]"), 0,
        outside=OUTSIDE_CALENDAR)
    size = len(customers.ids)
    first = np.full(size, np.iinfo(np.int64).max)
    np.minimum.at(first, who[up], first_call.astype(np.int64))
    busy = np.zeros(size, dtype=bool)
    busy[who[today.is_open]] = True
    chosen = np.flatnonzero((first == sms_day.astype(np.int64)) & ~busy)
    if not len(chosen):
        return pd.DataFrame(columns=list(SMS_COLUMNS))
    chosen = chosen[np.argsort(customers.ids.iloc[chosen].to_numpy(dtype=object),
                               kind="stable")]
    direct, pool_role, team = _preferred(customers.take("owner_agent_id", chosen),
                                         customers.take("department_id", chosen),
                                         customers.key[chosen], staff, policy)
    agent = direct.copy()
    unbounded = np.full(len(staff.ids), np.iinfo(np.int32).max, dtype=np.int64)
    _fill_pools(agent, agent < 0, pool_role, team, staff, load.copy(), unbounded)
    return pd.DataFrame({
        "customer_id": _take(customers.ids, chosen),
        "phone": customers.take("phone", chosen),
        "planned_call_date": str(sms_day),
        "agent_id": staff.id_of(agent),
    })


__all__ = [
    "CALL_LIST_COLUMNS", "CARRIED_OVER_COLUMNS", "CUSTOMER_READS", "HISTORY_COLUMNS",
    "NOT_LISTED_COLUMNS", "REASON_ORDER", "RULE_CUSTOMER_COLUMNS", "SMS_COLUMNS",
    "CallListResult", "Messages", "build_call_list",
    "call_slots", "customer_history", "listable_obligations", "load_messages", "rule_agents",
    "suggested_windows",
]
