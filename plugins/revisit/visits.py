"""Visit obligations: which return visit each customer owes, its window, and where it stands at D.

Why a table of obligations: the call list, the SMS pre-notice and the monthly timeliness KPI all
ask the same question ("which visit was due when, and was it made?"), so it is answered once,
here, for every visit kind of DESIGN.md ("Business rules — visits"), with every number taken from
`policy.visits`.

One row per obligation:
- `welcome`: per customer (their first order; order_id is that order's);
- `early_use`, `stable_use`, `long_term`: per delivered order;
- `post_resolution`: per closed ticket of a type in the rule's `ticket_types`;
- `periodic`, `key_account`: per eligible customer, the one currently running (anchored on the
  last reached visit, so it is never `done` at D: a reached visit starts the next one).

A window is [window_start, window_end] in calendar dates: "N days" is calendar days from the
anchor's date, "N working_days" is `calendar.add_working_days_to_date(date, N)` (the N-th working
day after the date, the date itself not counted); a start or end that falls on a non-working day
moves to the next working day (see `window`).

Matching ("done"): a visit of the same kind with outcome reached, at or after the anchor (strictly
after it for the recurring kinds), of the same order (early_use / stable_use / long_term) or
ticket (post_resolution). `welcome` is matched on the customer alone: a customer owes exactly one
welcome visit, and CRMs often log it without an order. A customer without a cooperation start
date counts from the day their record was created (customers.created_at).

Everything is vectorised over numpy arrays; the only Python loop is over the seven kinds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.calendar import BusinessCalendar
from revisit.policy import Duration, Policy, WindowRule
from revisit.schema import TABLES, VISIT_KINDS

ORDER_KINDS = ("early_use", "stable_use", "long_term")  # one obligation per delivered order
TICKET_KINDS = ("post_resolution",)  # one per closed ticket
RECURRING_KINDS = ("periodic", "key_account")  # one running obligation per customer
FAILED_OUTCOMES = ("no_answer", "wrong_number")
REACHED = "reached"

STATUSES = ("done", "upcoming", "due", "overdue", "missed", "unreachable")
OPEN_STATUSES = ("due", "overdue")  # the ones that belong on the call list

OBLIGATION_COLUMNS: dict[str, str] = {
    "customer_id": "string",
    "kind": "string",
    "order_id": "string",
    "ticket_id": "string",
    "anchor_at": "datetime64[us]",  # the event the window counts from
    "window_start": "datetime64[s]",  # a date (midnight)
    "window_end": "datetime64[s]",  # a date (midnight), the last day the visit is on time
    "status": "string",
    "attempts": "int64",  # visits of this obligation since the anchor, any outcome
    "failed_attempts": "int64",  # of which no_answer / wrong_number
    "last_attempt_at": "datetime64[us]",
    "done_at": "datetime64[us]",  # first reached visit since the anchor (NaT: not done)
    "overdue_days": "int64",  # D - window_end for overdue / missed rows, else 0
}

_NAT_US = np.datetime64("NaT", "us")
_NAT_D = np.datetime64("NaT", "D")


# ================================================================= small typed helpers
def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes of `name` (revisit.schema).

    Why: a snapshot may lack an optional table, and empty inputs must still give typed output."""
    dtypes = {"id": "string", "text": "string", "int": "Int64", "bool": "Int8",
              "money": "float64", "datetime": "datetime64[us]", "date": "datetime64[us]"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes[k]) for c, k in TABLES[name].columns.items()})


def table(frames: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """frames[name], or an empty canonical frame when the snapshot has no such table."""
    frame = frames.get(name)
    return empty_table(name) if frame is None else frame


def empty_obligations() -> pd.DataFrame:
    """The obligations table with no rows (its columns and dtypes are the contract)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in OBLIGATION_COLUMNS.items()})


def timestamps(values: pd.Series) -> np.ndarray:
    """Any datetime-like column as naive datetime64[us] (units differ between sources)."""
    return pd.to_datetime(values).to_numpy().astype("datetime64[us]")


def dates(values: pd.Series | np.ndarray) -> np.ndarray:
    """Calendar dates (datetime64[D]) of naive local timestamps."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[D]")
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def as_day(call_date: dt.date) -> np.datetime64:
    """The call date D as datetime64[D]."""
    return np.datetime64(pd.Timestamp(call_date).date(), "D")


def _whole(duration: Duration) -> int:
    if not float(duration.amount).is_integer():
        raise ValueError(f"visit windows are whole days, got {duration}")
    return int(duration.amount)


def working_days_after(calendar: BusinessCalendar, days: np.ndarray, n: int) -> np.ndarray:
    """The n-th working day after each date (n = 0: the date if working, else the next one).

    Why not just the calendar: an anchor can lie before the calendar's first year (a customer
    cooperating since 2005 and never reached); such a window ended long ago, so Monday-Friday
    arithmetic (np.busday_offset) is a fair answer there instead of failing the whole run."""
    days = np.asarray(days, dtype="datetime64[D]")
    out = np.full(days.shape, _NAT_D)
    table_days = calendar.working_days
    margin = np.timedelta64(3 * n + 31, "D")
    known = ~np.isnat(days)
    inside = known & (days >= table_days[0]) & (days <= table_days[-1] - margin)
    if inside.any():
        out[inside] = calendar.add_working_days_to_date(days[inside], n)
    outside = known & ~inside
    if outside.any():
        roll = "forward" if n == 0 else "backward"
        out[outside] = np.busday_offset(days[outside], n, roll=roll)
    return out


def offset_days(calendar: BusinessCalendar, days: np.ndarray, duration: Duration) -> np.ndarray:
    """date + duration: calendar days for `days`, the N-th working day for `working_days`."""
    n = _whole(duration)
    if duration.unit == "days":
        return np.asarray(days, dtype="datetime64[D]") + np.timedelta64(n, "D")
    if duration.unit == "working_days":
        return working_days_after(calendar, days, n)
    raise ValueError(f"visit windows are whole days, not {duration.unit}")


def window(calendar: BusinessCalendar, anchor: np.ndarray,
           rule: WindowRule) -> tuple[np.ndarray, np.ndarray]:
    """[start, end] dates of the windows anchored at `anchor` (timestamps or dates).

    Raw dates first, literally as DESIGN.md words them: start = anchor date + rule.start;
    end = anchor date + rule.end, or raw start + rule.length ("that + 5 working days").
    Then both move forward to the next working day when they fall on a non-working day: no
    one calls on a holiday, so a window opening on one is first callable the next working day,
    and a window closing on one stays on time until the next working day (the usual rule for
    deadlines, e.g. 民法典 art. 203). Working-day rules land on working days already, so only
    calendar-day rules ("N days") move. Without this a window lying inside a holiday (early_use
    [Oct 1, Oct 7]) would turn overdue before it had a single working day."""
    day = dates(anchor)
    start = offset_days(calendar, day, rule.start)
    if rule.end is not None:
        end = offset_days(calendar, day, rule.end)
    else:
        assert rule.length is not None  # guaranteed by WindowRule
        end = offset_days(calendar, start, rule.length)
    return working_days_after(calendar, start, 0), working_days_after(calendar, end, 0)


# ================================================================= codes (ints, not strings)
def arrow_strings(values: pd.Series | pa.Array) -> pa.Array:
    """A text column as one pyarrow large_string array (nulls kept)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values.astype("string"), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.large_string())


def positions(values: pd.Series | pa.Array, universe: pd.Series | pa.Array) -> np.ndarray:
    """Position of each value in `universe` (-1: null or absent), as int64.

    Why: every join here is on string ids; hashing them once into positions (pyarrow's
    index_in) and then working on integers is what keeps 10^6-row snapshots fast."""
    found = pc.index_in(arrow_strings(values), value_set=arrow_strings(universe))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _take(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """values at positions `rows` (-1 gives NA) as a 'string' Series."""
    array = values.astype("string").array
    return pd.Series(array.take(rows, allow_fill=True), dtype="string")


def _in(values: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    return values.isin(allowed).fillna(False).to_numpy(dtype=bool)


# ================================================================= anchors per kind
@dataclass
class _Anchors:
    """Obligations before windows and matching, as parallel integer arrays."""

    kind: list[np.ndarray] = field(default_factory=list)  # code into VISIT_KINDS
    customer: list[np.ndarray] = field(default_factory=list)  # position in sorted customer ids
    order: list[np.ndarray] = field(default_factory=list)  # row in orders, -1 = none
    ticket: list[np.ndarray] = field(default_factory=list)  # row in tickets, -1 = none
    ref: list[np.ndarray] = field(default_factory=list)  # what a visit must match (-1: none)
    at: list[np.ndarray] = field(default_factory=list)  # anchor, datetime64[us]

    def add(self, kind: str, customer: np.ndarray, at: np.ndarray, order: np.ndarray | None = None,
            ticket: np.ndarray | None = None) -> None:
        n = len(customer)
        none = np.full(n, -1, dtype=np.int64)
        order = none if order is None else order
        ticket = none if ticket is None else ticket
        self.kind.append(np.full(n, VISIT_KINDS.index(kind), dtype=np.int64))
        self.customer.append(customer.astype(np.int64))
        self.order.append(order.astype(np.int64))
        self.ticket.append(ticket.astype(np.int64))
        self.ref.append(order if kind in ORDER_KINDS else ticket if kind in TICKET_KINDS
                        else none)
        self.at.append(at.astype("datetime64[us]"))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(getattr(self, name)) if getattr(self, name)
                else np.zeros(0, dtype="datetime64[us]" if name == "at" else np.int64)
                for name in ("kind", "customer", "order", "ticket", "ref", "at")}


@dataclass(frozen=True)
class _Snapshot:
    """The tables the rules read, cut off at D and coded to integer positions."""

    customer_ids: pd.Series  # sorted: position order = customer_id order
    customers: pd.DataFrame
    orders: pd.DataFrame
    tickets: pd.DataFrame
    visits: pd.DataFrame
    order_customer: np.ndarray
    ticket_customer: np.ndarray
    visit_customer: np.ndarray
    visit_kind: np.ndarray  # code into VISIT_KINDS, -1 unknown
    visit_at: np.ndarray

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame], cutoff: np.datetime64) -> _Snapshot:
        customers = table(frames, "customers")
        customers = customers[~(timestamps(customers["created_at"]) >= cutoff)
                              & customers["customer_id"].notna().to_numpy(dtype=bool)]
        customers = customers.drop_duplicates("customer_id")
        order = np.argsort(arrow_strings(customers["customer_id"]).to_numpy(
            zero_copy_only=False), kind="stable")
        customers = customers.iloc[order].reset_index(drop=True)
        ids = customers["customer_id"].astype("string")
        orders = table(frames, "orders")
        orders = orders[timestamps(orders["ordered_at"]) < cutoff].reset_index(drop=True)
        tickets = table(frames, "tickets").reset_index(drop=True)
        visits = table(frames, "visits")
        visit_at = timestamps(visits["visited_at"])
        keep = visit_at < cutoff
        visits = visits[keep].reset_index(drop=True)
        kind = positions(visits["kind"], pa.array(VISIT_KINDS))
        return cls(
            customer_ids=ids, customers=customers, orders=orders, tickets=tickets, visits=visits,
            order_customer=positions(orders["customer_id"], ids),
            ticket_customer=positions(tickets["customer_id"], ids),
            visit_customer=positions(visits["customer_id"], ids),
            visit_kind=kind, visit_at=visit_at[keep],
        )


def _anchors(snap: _Snapshot, policy: Policy, cutoff: np.datetime64,
             call_day: np.datetime64) -> dict[str, np.ndarray]:
    """Every obligation's kind, customer, order / ticket row, match reference and anchor."""
    kinds = policy.visits.kinds
    out = _Anchors()
    n_customers = len(snap.customer_ids)

    # Orders (placed before the cut-off) of known customers: the first one per customer, and
    # every delivered one. Ties of ordered_at go to the smaller order_id.
    orders = snap.orders
    known = snap.order_customer >= 0
    ordered_at = timestamps(orders["ordered_at"])
    if known.any():
        rows = np.flatnonzero(known)
        id_rank = np.argsort(np.argsort(arrow_strings(orders["order_id"]).to_numpy(
            zero_copy_only=False)[rows], kind="stable"), kind="stable")
        by = rows[np.lexsort((id_rank, ordered_at[rows], snap.order_customer[rows]))]
        cust = snap.order_customer[by]
        first = by[np.r_[True, cust[1:] != cust[:-1]]]
        out.add("welcome", snap.order_customer[first], ordered_at[first], order=first)
    delivered_at = timestamps(orders["delivered_at"])
    delivered = np.flatnonzero(known & (delivered_at < cutoff))  # NaT compares False
    for kind in ORDER_KINDS:
        out.add(kind, snap.order_customer[delivered], delivered_at[delivered], order=delivered)

    # Closed tickets of the rule's types.
    tickets = snap.tickets
    closed_at = timestamps(tickets["closed_at"])
    closed = (snap.ticket_customer >= 0) & (closed_at < cutoff)
    types = kinds["post_resolution"].ticket_types
    if types is not None:
        closed &= _in(tickets["type"], tuple(types))
    rows = np.flatnonzero(closed)
    out.add("post_resolution", snap.ticket_customer[rows], closed_at[rows], ticket=rows)

    # Recurring: anchored on the last reached visit (periodic: any kind; key_account: its own),
    # else on the cooperation start.
    reached = (snap.visit_customer >= 0) & _in(snap.visits["outcome"], (REACHED,))
    never = np.iinfo(np.int64).min
    last_any = np.full(n_customers, never)
    np.maximum.at(last_any, snap.visit_customer[reached],
                  snap.visit_at[reached].astype(np.int64))
    last_key = np.full(n_customers, never)
    is_key = reached & (snap.visit_kind == VISIT_KINDS.index("key_account"))
    np.maximum.at(last_key, snap.visit_customer[is_key], snap.visit_at[is_key].astype(np.int64))
    customers = snap.customers
    # Cooperation start, else (not recorded) the day the customer record was created.
    coop = timestamps(customers["cooperation_start_date"]).astype("datetime64[D]")
    coop = np.where(np.isnat(coop), timestamps(customers["created_at"]).astype("datetime64[D]"),
                    coop)
    coop_days = np.where(np.isnat(coop), -1,
                         (call_day - coop).astype("timedelta64[D]").astype(np.int64))
    tier = customers["tier"].astype("string").fillna("")
    for kind, wanted, last in (("periodic", "standard", last_any),
                               ("key_account", "key", last_key)):
        rule = kinds[kind]
        eligible = (tier == wanted).to_numpy(dtype=bool)
        if rule.min_cooperation_days is not None:
            eligible &= ~np.isnat(coop) & (coop_days >= rule.min_cooperation_days)
        who = np.flatnonzero(eligible)
        last_at = np.where(last[who] == never, _NAT_US.astype(np.int64), last[who]).view(
            "datetime64[us]")
        anchor = np.where(np.isnat(last_at), coop[who].astype("datetime64[us]"), last_at)
        keep = ~np.isnat(anchor)
        out.add(kind, who[keep], anchor[keep])
    return out.arrays()


# ================================================================= matching visits
def _match_visits(anchors: dict[str, np.ndarray], snap: _Snapshot) -> dict[str, np.ndarray]:
    """Per obligation: attempts, failed attempts, last attempt and first reached visit since
    its anchor (strictly after it for recurring kinds, whose anchor is itself a reached visit).

    Why integer keys: (kind, customer, ref) identifies an obligation, so each visit belongs to
    at most one; a sorted-key lookup plus np.*.at aggregations is linear in the visits."""
    n = len(anchors["kind"])
    visits = snap.visits
    kind = snap.visit_kind
    ref = np.full(len(visits), -1, dtype=np.int64)
    for kinds, column, universe in ((ORDER_KINDS, "order_id", snap.orders["order_id"]),
                                    (TICKET_KINDS, "ticket_id", snap.tickets["ticket_id"])):
        codes = [VISIT_KINDS.index(k) for k in kinds]
        rows = np.flatnonzero(np.isin(kind, codes))
        if len(rows):
            ref[rows] = positions(visits[column].iloc[rows], universe)
    span = max(len(snap.orders), len(snap.tickets)) + 1
    n_customers = max(len(snap.customer_ids), 1)

    def key(k: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (k * n_customers + c) * span + (r + 1)

    o_key = key(anchors["kind"], anchors["customer"], anchors["ref"])
    usable = (kind >= 0) & (snap.visit_customer >= 0)
    v_rows = np.flatnonzero(usable)
    v_key = key(kind[v_rows], snap.visit_customer[v_rows], ref[v_rows])
    order = np.argsort(o_key, kind="stable")
    sorted_keys = o_key[order]
    pos = np.searchsorted(sorted_keys, v_key)
    pos_ok = pos < n
    hit = pos_ok & (sorted_keys[np.minimum(pos, max(n - 1, 0))] == v_key) if n else pos_ok
    row = order[pos[hit]] if n else np.zeros(0, dtype=np.int64)
    v_rows = v_rows[hit]
    at = snap.visit_at[v_rows]
    anchor = anchors["at"][row]
    strict = np.isin(anchors["kind"][row], [VISIT_KINDS.index(k) for k in RECURRING_KINDS])
    since = np.where(strict, at > anchor, at >= anchor)
    row, v_rows, at = row[since], v_rows[since], at[since]
    outcome = visits["outcome"].astype("string").iloc[v_rows]
    at_i = at.astype(np.int64)
    never = np.iinfo(np.int64).max
    attempts = np.bincount(row, minlength=n).astype(np.int64)
    failed = np.bincount(row, weights=_in(outcome, FAILED_OUTCOMES), minlength=n).astype(np.int64)
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, row, at_i)
    done = np.full(n, never)
    ok = _in(outcome, (REACHED,))
    np.minimum.at(done, row[ok], at_i[ok])
    nat = _NAT_US.astype(np.int64)
    return {
        "attempts": attempts,
        "failed_attempts": failed,
        "last_attempt_at": np.where(attempts > 0, last, nat).view("datetime64[us]"),
        "done_at": np.where(done < never, done, nat).view("datetime64[us]"),
    }


# ================================================================= public API
def obligation_status(window_start: np.ndarray, window_end: np.ndarray, done: np.ndarray,
                      failed_attempts: np.ndarray, call_day: np.datetime64,
                      policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(status, overdue_days) at D, by the precedence of DESIGN.md: done; unreachable (enough
    failed attempts, not done); upcoming; due; overdue (up to max_overdue_days after the
    window); missed."""
    rules = policy.visits
    late = (call_day - window_end.astype("datetime64[D]")).astype(np.int64)
    status = np.select(
        [done, failed_attempts >= rules.max_failed_attempts,
         window_start.astype("datetime64[D]") > call_day, late <= 0,
         late <= rules.max_overdue_days],
        ["done", "unreachable", "upcoming", "due", "overdue"],
        default="missed",
    )
    overdue = np.where(np.isin(status, ("overdue", "missed")), np.maximum(late, 0), 0)
    return status, overdue.astype(np.int64)


def visit_obligations(frames: dict[str, pd.DataFrame], policy: Policy,
                      calendar: BusinessCalendar, call_date: dt.date) -> pd.DataFrame:
    """Every visit obligation of every customer, with its window and status at call date D.

    Why one table: the call list (due / overdue), its not-listed report (missed / unreachable),
    the SMS pre-notice (upcoming) and the monthly timeliness KPI (done_at vs window_end) all read
    it. `frames` is a snapshot (revisit.extract.read_snapshot); anything stamped at or after
    D 00:00 is ignored, so a later snapshot gives the same answer. Columns: OBLIGATION_COLUMNS,
    sorted by customer_id, window_start, kind."""
    call_day = as_day(call_date)
    cutoff = call_day.astype("datetime64[us]")
    snap = _Snapshot.of(frames, cutoff)
    anchors = _anchors(snap, policy, cutoff, call_day)
    n = len(anchors["kind"])
    if n == 0:
        return empty_obligations()
    start = np.empty(n, dtype="datetime64[D]")
    end = np.empty(n, dtype="datetime64[D]")
    for name, rule in policy.visits.kinds.items():
        mask = anchors["kind"] == VISIT_KINDS.index(name)
        if mask.any():
            start[mask], end[mask] = window(calendar, anchors["at"][mask], rule)
    matched = _match_visits(anchors, snap)
    status, overdue = obligation_status(start, end, ~np.isnat(matched["done_at"]),
                                        matched["failed_attempts"], call_day, policy)
    order = np.lexsort((anchors["kind"], start, anchors["customer"]))
    kinds = pd.Categorical.from_codes(anchors["kind"][order], categories=list(VISIT_KINDS))
    out = pd.DataFrame({
        "customer_id": _take(snap.customer_ids, anchors["customer"][order]),
        "kind": pd.Series(kinds).astype("string"),
        "order_id": _take(snap.orders["order_id"], anchors["order"][order]),
        "ticket_id": _take(snap.tickets["ticket_id"], anchors["ticket"][order]),
        "anchor_at": anchors["at"][order],
        "window_start": start[order].astype("datetime64[s]"),
        "window_end": end[order].astype("datetime64[s]"),
        "status": pd.Series(pd.Categorical(status[order], categories=list(STATUSES)))
        .astype("string"),
        **{name: values[order] for name, values in matched.items()},
        "overdue_days": overdue[order],
    })
    return out.astype(OBLIGATION_COLUMNS)


__all__ = [
    "OBLIGATION_COLUMNS", "OPEN_STATUSES", "ORDER_KINDS", "RECURRING_KINDS", "STATUSES",
    "TICKET_KINDS", "arrow_strings", "dates", "empty_obligations", "empty_table",
    "obligation_status", "offset_days", "positions", "table", "timestamps", "visit_obligations",
    "window", "working_days_after",
]
