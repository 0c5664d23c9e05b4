"""Visit obligations: which return visit each customer owes, its window, and where it stands at D.

Why a table of obligations: the call list, the SMS pre-notice and the monthly timeliness KPI all
ask the same question ("which visit was due when, and was it made?"), so it is answered once,
here, for every visit kind of DESIGN.md ("Business rules — visits"), with every number taken from
`policy.visits`.

One row per obligation:
- `welcome`: per customer (their first order; order_id is that order's);
- `early_use`, `stable_use`, `long_term`: per delivered order;
- `post_resolution`: per closed ticket of a type in the rule's `ticket_types`;
- `periodic`, `key_account` (recurring): per eligible customer up to three cycles, see below.

A window is [window_start, window_end] in calendar dates: "N days" is calendar days from the
anchor's date, "N working_days" is `calendar.add_working_days_to_date(date, N)` (the N-th working
day after the date, the date itself not counted; Monday-Friday outside the calendar's years, see
OUTSIDE_CALENDAR); a start or end that falls on a non-working day moves to the next working day
(see `window`).

Matching ("done"): a visit of the same kind with outcome reached, at or after the anchor, of the
same order (early_use / stable_use / long_term) or ticket (post_resolution). `welcome` is matched
on the customer alone: a customer owes exactly one welcome visit, and CRMs often log it without
an order. A customer without a cooperation start date counts from the day their record was
created (customers.created_at).

Recurring kinds repeat every period ("每季度" / "每半年一次", policy 000) until a visit reaches
the customer, also when a cycle is missed:
- Anchor A: the last reached visit (periodic: of any kind; key_account: a key_account one), else
  the cooperation start. Period P = the rule's `start` (90 / 182 days). Cycle k = 1, 2, ... is
  the rule's window (`window`) counted from the base day A + (k - 1) x P: it opens A + k x P
  (moved to the next working day when that is not one) and lasts `length` from that raw start
  (or ends `end` after the base day). P in working_days: cycle k opens on the (k x P)-th working
  day after A. A reached visit moves A, so at D no cycle is ever `done`; anchor_at is A,
  whatever the cycle.
- Rows at D: the current cycle (the latest whose window_start <= D, else cycle 1, upcoming), the
  cycle before it when k >= 2 (missed or unreachable with the default policy; older cycles are
  not rows: only the most recent miss is worth reporting), and the next cycle once its
  window_start is on or before the SMS pre-notice day (the sms_notice.days_ahead-th working day
  after D), so that its first call can be pre-noticed although the current one has started.
  Each row's status follows the same rules as any obligation (overdue for max_overdue_days
  after its window, then missed).
- Attempts: a visit of the kind after A counts toward the cycle that was on the call list (or
  next to be) when it was made. Cycle k's attempts are those made after the last day cycle k-1
  could be on the list (its window_end + max_overdue_days; after A for k = 1) through the last
  day cycle k can (window_end_k + max_overdue_days). So calls made while cycle k was overdue are
  cycle k's (not the next cycle's, which would turn unreachable before it opened), and calls in
  the quiet time between cycles are early calls for the next one.
- The current cycle number is arithmetic on arrays (days since A // P, or working days since A
  // P counted in the calendar), corrected by one where a holiday moved a start past D.
- History (`recurring_history`, for the monthly timeliness KPI): one obligation per anchor
  (cycle 1 from it), closed by the next anchor. The same customers, base days and restarting
  visits as the rows at D (`_recurring_customers`, `_restarts`), so a customer the call list
  owes a visit is in the KPI too.

Everything is vectorised over numpy arrays; Python loops run only over the kinds, the three
cycle rows of a recurring kind and (rarely more than once) the holiday correction of a cycle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revisit.config.policy import Duration, Policy, WindowRule
from revisit.config.schema import TABLES, VISIT_KINDS
from revisit.rules.calendar import BusinessCalendar

ORDER_KINDS = ("early_use", "stable_use", "long_term")  # one obligation per delivered order
TICKET_KINDS = ("post_resolution",)  # one per closed ticket
RECURRING_KINDS = ("periodic", "key_account")  # repeating every period, per customer
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
    "attempts": "int64",  # visits of this obligation (cycle) since the anchor, any outcome
    "failed_attempts": "int64",  # of which no_answer / wrong_number
    "last_attempt_at": "datetime64[us]",
    "done_at": "datetime64[us]",  # first reached visit since the anchor (NaT: not done)
    "overdue_days": "int64",  # D - window_end once past the window (not done), else 0
}

# Working days before the calendar's first year (or past its last) count Monday-Friday: an
# anchor can lie before the calendar (a customer cooperating since 2005 and never reached);
# such a window ended long ago, so a Monday-Friday answer is fair there, failing the run is not.
OUTSIDE_CALENDAR = "weekdays"

RECURRING_HISTORY_COLUMNS: dict[str, str] = {
    "customer_id": "string",
    "kind": "string",
    "anchor_at": "datetime64[us]",  # the cooperation start (else created_at) or a reached visit
    "window_start": "datetime64[s]",
    "window_end": "datetime64[s]",
    "closed_at": "datetime64[us]",  # the next anchor (NaT: none yet)
    "on_time": "bool",  # closed by a reached visit of the kind by window_end
    "superseded": "bool",  # closed first by a reached visit of another kind (periodic only)
}

_NAT_US = np.datetime64("NaT", "us")
_NAT_D = np.datetime64("NaT", "D")


# ================================================================= small typed helpers
def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes of `name` (revisit.config.schema).

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


def _first_day(calendar: BusinessCalendar) -> np.datetime64:
    """The first date the calendar's working-day table covers."""
    return np.datetime64(f"{calendar.years[0]:04d}-01-01", "D")


def working_days_between(calendar: BusinessCalendar, first: np.ndarray,
                         last: np.ndarray) -> np.ndarray:
    """How many working days lie in (first, last] (dates; negative when last < first).

    Before the calendar's first year Monday-Friday count (OUTSIDE_CALENDAR, as in
    calendar.add_working_days_to_date)."""
    first = np.asarray(first, dtype="datetime64[D]")
    last = np.asarray(last, dtype="datetime64[D]")
    table_days = calendar.working_days
    lo = np.maximum(first, _first_day(calendar) - np.timedelta64(1, "D"))
    count = (np.searchsorted(table_days, last, side="right")
             - np.searchsorted(table_days, lo, side="right")).astype(np.int64)
    early = first < lo
    if early.any():
        count[early] += np.busday_count(first[early] + np.timedelta64(1, "D"),
                                        lo[early] + np.timedelta64(1, "D"))
    return count


def offset_days(calendar: BusinessCalendar, days: np.ndarray, duration: Duration) -> np.ndarray:
    """date + duration: calendar days for `days`, the N-th working day for `working_days`."""
    n = _whole(duration)
    if duration.unit == "days":
        return np.asarray(days, dtype="datetime64[D]") + np.timedelta64(n, "D")
    if duration.unit == "working_days":
        return calendar.add_working_days_to_date(np.asarray(days, dtype="datetime64[D]"), n,
                                                 outside=OUTSIDE_CALENDAR)
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
    return (calendar.add_working_days_to_date(start, 0, outside=OUTSIDE_CALENDAR),
            calendar.add_working_days_to_date(end, 0, outside=OUTSIDE_CALENDAR))


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
        # The extract already dropped later rows: no copy of millions of visits when none is.
        visits = visits.reset_index(drop=True) if keep.all() else \
            visits[keep].reset_index(drop=True)
        kind = positions(visits["kind"], pa.array(VISIT_KINDS))
        return cls(
            customer_ids=ids, customers=customers, orders=orders, tickets=tickets, visits=visits,
            order_customer=positions(orders["customer_id"], ids),
            ticket_customer=positions(tickets["customer_id"], ids),
            visit_customer=positions(visits["customer_id"], ids),
            visit_kind=kind, visit_at=visit_at[keep],
        )


def _anchors(snap: _Snapshot, policy: Policy, cutoff: np.datetime64) -> dict[str, np.ndarray]:
    """Every one-off obligation's kind, customer, order / ticket row, match reference and
    anchor (the recurring kinds are built by _recurring)."""
    kinds = policy.visits.kinds
    out = _Anchors()

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

    return out.arrays()


# ================================================================= recurring kinds
RECURRING_TIERS = {"periodic": "standard", "key_account": "key"}  # kind -> the tier owing it


def _recurring_customers(snap: _Snapshot, policy: Policy, call_day: np.datetime64
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """kind -> (customer positions, base day as datetime64[us]; NaT: none) of the customers
    owing that recurring kind at D: of its tier and, where the rule says, cooperating at least
    min_cooperation_days. The base day is the cooperation start, else the day the customer
    record was created (customers.created_at).

    Why one function: the daily list and the monthly KPI must owe the same visits to the same
    customers (they once disagreed on customers without a cooperation start)."""
    customers = snap.customers
    coop = timestamps(customers["cooperation_start_date"]).astype("datetime64[D]")
    coop = np.where(np.isnat(coop), timestamps(customers["created_at"]).astype("datetime64[D]"),
                    coop)
    coop_days = np.where(np.isnat(coop), -1,
                         (call_day - coop).astype("timedelta64[D]").astype(np.int64))
    tier = customers["tier"].astype("string").fillna("")
    out = {}
    for kind, wanted in RECURRING_TIERS.items():
        rule = policy.visits.kinds[kind]
        eligible = (tier == wanted).to_numpy(dtype=bool)
        if rule.min_cooperation_days is not None:
            eligible &= ~np.isnat(coop) & (coop_days >= rule.min_cooperation_days)
        who = np.flatnonzero(eligible)
        out[kind] = (who, coop[who].astype("datetime64[us]"))
    return out


def _restarts(snap: _Snapshot) -> dict[str, np.ndarray]:
    """kind -> which snapshot visits restart its clock (bool per visit): reached visits of a
    known customer; for periodic of any kind, for key_account only key_account ones.

    Why a mask and not the anchor: the call list needs the last restart, the KPI all of them."""
    reached = (snap.visit_customer >= 0) & _in(snap.visits["outcome"], (REACHED,))
    return {"periodic": reached,
            "key_account": reached & (snap.visit_kind == VISIT_KINDS.index("key_account"))}


def _recurring_anchors(snap: _Snapshot, policy: Policy,
                       call_day: np.datetime64) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """kind -> (customer positions, anchor timestamps) of the customers owing that recurring
    kind: the last visit that restarted its clock (`_restarts`), else the base day
    (`_recurring_customers`). Customers with neither owe nothing yet."""
    restarts = _restarts(snap)
    never = np.iinfo(np.int64).min  # = NaT as int64
    out = {}
    for kind, (who, base) in _recurring_customers(snap, policy, call_day).items():
        restart = restarts[kind]
        last = np.full(len(snap.customer_ids), never)
        np.maximum.at(last, snap.visit_customer[restart], snap.visit_at[restart].astype(np.int64))
        last_at = last[who].view("datetime64[us]")
        anchor = np.where(np.isnat(last_at), base, last_at)
        keep = ~np.isnat(anchor)
        out[kind] = (who[keep], anchor[keep])
    return out


def _period(rule: WindowRule) -> int:
    period = _whole(rule.start)
    if period <= 0:
        raise ValueError(f"a recurring visit needs a positive period (start), got {rule.start}")
    return period


def cycle_window(calendar: BusinessCalendar, anchor_day: np.ndarray, cycle: np.ndarray,
                 rule: WindowRule) -> tuple[np.ndarray, np.ndarray]:
    """[start, end] of cycle k (>= 1) of a recurring rule: the rule's window (see `window`)
    counted from the cycle's base day anchor + (k - 1) x period, period = rule.start. So cycle
    k opens k periods after the anchor (moved to a working day like any window start) and
    lasts rule.length (or ends rule.end after its base day)."""
    period = _period(rule)
    day = np.asarray(anchor_day, dtype="datetime64[D]")
    steps = (np.asarray(cycle, dtype=np.int64) - 1) * period
    if rule.start.unit == "days":
        base = day + steps.astype("timedelta64[D]")
    else:  # working_days: the (k - 1) x period-th working day after the anchor
        base = np.where(steps == 0, day, calendar.add_working_days_to_date(
            day, np.maximum(steps, 0), outside=OUTSIDE_CALENDAR))
    return window(calendar, base, rule)


def current_cycle(calendar: BusinessCalendar, anchor_day: np.ndarray, rule: WindowRule,
                  day: np.datetime64) -> np.ndarray:
    """The latest cycle whose window_start <= day, else 1 (the first one, upcoming).

    Estimated by arithmetic on the period (calendar days, or working days counted in the
    calendar), then corrected where a start moved past `day` by a holiday (or where the
    Monday-Friday fallback before the calendar's first year disagrees by a cycle)."""
    period = _period(rule)
    first = np.asarray(anchor_day, dtype="datetime64[D]")
    if rule.start.unit == "days":
        elapsed = (day - first).astype("timedelta64[D]").astype(np.int64)
    else:
        elapsed = working_days_between(calendar, first, np.full(first.shape, day))
    cycle = np.maximum(elapsed // period, 1)
    while True:  # a start rolled past `day`: one cycle back
        start, _ = cycle_window(calendar, first, cycle, rule)
        back = (cycle > 1) & (start > day)
        if not back.any():
            break
        cycle = cycle - back
    # In calendar days the estimate is never short: raw start k + 1 > day. Counted working days
    # can be, by a cycle, where the Monday-Friday fallback (before the calendar) disagrees.
    while rule.start.unit != "days":  # the estimate fell short: one cycle on
        start, _ = cycle_window(calendar, first, cycle + 1, rule)
        on = start <= day
        if not on.any():
            break
        cycle = cycle + on
    return cycle


@dataclass(frozen=True)
class _Cycle:
    """One candidate row per customer of a recurring kind (cycle k + j around the current k)."""

    start: np.ndarray  # window_start, datetime64[D]
    end: np.ndarray  # window_end, datetime64[D]
    since: np.ndarray  # [since, until): stamps of the visits that are this cycle's attempts
    until: np.ndarray
    emit: np.ndarray  # bool: the customer has this row at D


def _cycles(calendar: BusinessCalendar, policy: Policy, kind: str, anchor: np.ndarray,
            call_day: np.datetime64, sms_day: np.datetime64) -> dict[int, _Cycle]:
    """The previous (j = -1), current (0) and next (1) cycle of each customer at D.

    Why spans: a visit counts toward the cycle that was (or was next to be) on the call list
    when it was made: cycle k's span is from the day after cycle k-1 left the list (its
    window_end + max_overdue_days; the anchor itself for k = 1) through the day cycle k leaves
    it. Calls while cycle k was overdue are cycle k's; calls made when nothing was listed are
    early calls for the next cycle. The next cycle is a row only once it opens by the SMS
    pre-notice day (so its first call can be pre-noticed)."""
    rule = policy.visits.kinds[kind]
    listed_after = np.timedelta64(policy.visits.max_overdue_days + 1, "D")
    first = anchor.astype("datetime64[D]")
    cycle = current_cycle(calendar, first, rule, call_day)
    windows = {j: cycle_window(calendar, first, np.maximum(cycle + j, 1), rule)
               for j in (-2, -1, 0, 1)}
    until = {j: (end + listed_after).astype("datetime64[us]") for j, (_, end) in windows.items()}
    emit = {-1: cycle >= 2, 0: np.ones(len(anchor), dtype=bool),
            1: (windows[0][0] <= call_day) & (windows[1][0] <= sms_day)}
    return {j: _Cycle(start=windows[j][0], end=windows[j][1], until=until[j], emit=emit[j],
                      since=np.where(cycle + j >= 2, until[j - 1],
                                     anchor + np.timedelta64(1, "us")))
            for j in (-1, 0, 1)}


def _visits_of(snap: _Snapshot, kind: str, who: np.ndarray,
               failed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The visits of `kind` by the customers `who`: (index into who, stamp, failed outcome).

    Why all outcomes: every call of the kind is an attempt of some cycle (see `_cycles`)."""
    slot = np.full(len(snap.customer_ids), -1, dtype=np.int64)
    slot[who] = np.arange(len(who))
    rows = np.flatnonzero((snap.visit_kind == VISIT_KINDS.index(kind))
                          & (snap.visit_customer >= 0))
    owner = slot[snap.visit_customer[rows]]
    rows, owner = rows[owner >= 0], owner[owner >= 0]
    return owner, snap.visit_at[rows], failed[rows]


def _cycle_rows(kind: str, who: np.ndarray, anchor: np.ndarray, cycle: _Cycle,
                visits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """The emitted rows of one cycle, with their attempts: the customer's visits in its span.

    Why here and not in _match_visits: a recurring row has no order or ticket to match; its
    visits are told apart by when they were made. Never done (a reached visit moves A)."""
    owner, at, failed = visits
    m = len(who)
    hit = cycle.emit[owner] & (at >= cycle.since[owner]) & (at < cycle.until[owner])
    attempts = np.bincount(owner[hit], minlength=m).astype(np.int64)
    last = np.full(m, np.iinfo(np.int64).min)
    np.maximum.at(last, owner[hit], at[hit].astype(np.int64))
    keep = np.flatnonzero(cycle.emit)
    none = np.full(len(keep), -1, dtype=np.int64)
    return {
        "kind": np.full(len(keep), VISIT_KINDS.index(kind), dtype=np.int64),
        "customer": who[keep].astype(np.int64), "order": none, "ticket": none, "ref": none,
        "at": anchor[keep], "start": cycle.start[keep], "end": cycle.end[keep],
        "attempts": attempts[keep],
        "failed_attempts": np.bincount(owner[hit & failed], minlength=m).astype(np.int64)[keep],
        "last_attempt_at": np.where(attempts > 0, last, _NAT_US.astype(np.int64))
        .view("datetime64[us]")[keep],
        "done_at": np.full(len(keep), _NAT_US),
    }


_RECURRING_ROW_DTYPES = {
    "kind": "int64", "customer": "int64", "order": "int64", "ticket": "int64", "ref": "int64",
    "at": "datetime64[us]", "start": "datetime64[D]", "end": "datetime64[D]",
    "attempts": "int64", "failed_attempts": "int64", "last_attempt_at": "datetime64[us]",
    "done_at": "datetime64[us]",
}


def _recurring(snap: _Snapshot, policy: Policy, calendar: BusinessCalendar,
               call_day: np.datetime64) -> dict[str, np.ndarray]:
    """The rows of the recurring kinds at D, as parallel arrays (the names of _Anchors plus
    start, end and the _match_visits columns): per customer the current cycle, the one before
    it (if any) and the next one when it opens by the SMS pre-notice day.

    Why apart from the one-off kinds: a recurring obligation repeats every period from its
    anchor until a visit reaches the customer, so its rows are cycles, not events."""
    sms_day = calendar.add_working_days_to_date(np.array([call_day]),
                                                policy.sms_notice.days_ahead,
                                                outside=OUTSIDE_CALENDAR)[0]
    failed = _in(snap.visits["outcome"], FAILED_OUTCOMES)
    parts = []
    for kind, (who, anchor) in _recurring_anchors(snap, policy, call_day).items():
        cycles = _cycles(calendar, policy, kind, anchor, call_day, sms_day)
        visits = _visits_of(snap, kind, who, failed)
        parts.extend(_cycle_rows(kind, who, anchor, cycles[j], visits) for j in (-1, 0, 1))
    return {name: np.concatenate([part[name] for part in parts]) if parts
            else np.zeros(0, dtype=dtype) for name, dtype in _RECURRING_ROW_DTYPES.items()}


def _next(values: np.ndarray, fill: object) -> np.ndarray:
    """values shifted up by one (the next row's value), `fill` for the last row."""
    return np.concatenate([values[1:], np.full(min(len(values), 1), fill, dtype=values.dtype)])


def _anchor_chain(snap: _Snapshot, calendar: BusinessCalendar, kind: str, rule: WindowRule,
                  customers: tuple[np.ndarray, np.ndarray], restart: np.ndarray) -> pd.DataFrame:
    """One recurring kind's obligations, one per anchor: each customer's base day (unless a
    restarting visit came at or before it), then every restarting visit, in time order. Each
    anchor's window is its cycle 1; the next anchor closes it: on time when that is a visit of
    the kind on or before window_end, superseded when another kind's visit came first.

    Why per anchor: a reached visit is what starts a new obligation, on the list and here."""
    who, base = customers
    slot = np.full(len(snap.customer_ids), -1, dtype=np.int64)
    slot[who] = np.arange(len(who))
    rows = np.flatnonzero(restart)
    rows = rows[slot[snap.visit_customer[rows]] >= 0]
    first = np.full(len(snap.customer_ids), np.iinfo(np.int64).max)
    np.minimum.at(first, snap.visit_customer[rows], snap.visit_at[rows].astype(np.int64))
    with_base = ~np.isnat(base) & ~(first[who] <= base.astype(np.int64))
    customer = np.concatenate([who[with_base], snap.visit_customer[rows]])
    at = np.concatenate([base[with_base], snap.visit_at[rows]]).astype("datetime64[us]")
    code = np.concatenate([np.full(with_base.sum(), -2), snap.visit_kind[rows]])
    order = np.lexsort((np.arange(len(customer)), at, customer))  # ties: the CRM's row order
    customer, at, code = customer[order], at[order], code[order]
    has_next = _next(customer, -1) == customer
    next_at = np.where(has_next, _next(at, _NAT_US), _NAT_US)
    start, end = cycle_window(calendar, at.astype("datetime64[D]"),
                              np.ones(len(at), dtype=np.int64), rule)
    closed = has_next & (next_at.astype("datetime64[D]") <= end)
    same = _next(code, -2) == VISIT_KINDS.index(kind)
    return pd.DataFrame({
        "customer_id": _take(snap.customer_ids, customer), "kind": kind, "anchor_at": at,
        "window_start": start.astype("datetime64[s]"), "window_end": end.astype("datetime64[s]"),
        "closed_at": next_at, "on_time": closed & same, "superseded": closed & ~same,
    })


# ================================================================= matching visits
def _visit_refs(snap: _Snapshot) -> np.ndarray:
    """Per snapshot visit, the row of the order (order kinds) or ticket (ticket kinds) it is
    about, -1 for none: what it must match besides kind and customer."""
    visits = snap.visits
    ref = np.full(len(visits), -1, dtype=np.int64)
    for kinds, column, universe in ((ORDER_KINDS, "order_id", snap.orders["order_id"]),
                                    (TICKET_KINDS, "ticket_id", snap.tickets["ticket_id"])):
        codes = [VISIT_KINDS.index(k) for k in kinds]
        rows = np.flatnonzero(np.isin(snap.visit_kind, codes))
        if len(rows):
            ref[rows] = positions(visits[column].iloc[rows], universe)
    return ref


def _visit_owners(anchors: dict[str, np.ndarray],
                  snap: _Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """(obligation row, visit row) of every visit made for a one-off obligation, at or after
    its anchor.

    Why integer keys: (kind, customer, ref) identifies an obligation, so each visit belongs to
    at most one; a sorted-key lookup is linear in the visits."""
    n = len(anchors["kind"])
    kind = snap.visit_kind
    ref = _visit_refs(snap)
    span = max(len(snap.orders), len(snap.tickets)) + 1
    n_customers = max(len(snap.customer_ids), 1)

    def key(k: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (k * n_customers + c) * span + (r + 1)

    o_key = key(anchors["kind"], anchors["customer"], anchors["ref"])
    v_rows = np.flatnonzero((kind >= 0) & (snap.visit_customer >= 0))
    v_key = key(kind[v_rows], snap.visit_customer[v_rows], ref[v_rows])
    order = np.argsort(o_key, kind="stable")
    sorted_keys = o_key[order]
    pos = np.searchsorted(sorted_keys, v_key)
    pos_ok = pos < n
    hit = pos_ok & (sorted_keys[np.minimum(pos, max(n - 1, 0))] == v_key) if n else pos_ok
    row = order[pos[hit]] if n else np.zeros(0, dtype=np.int64)
    v_rows = v_rows[hit]
    since = snap.visit_at[v_rows] >= anchors["at"][row]
    return row[since], v_rows[since]


def _match_visits(anchors: dict[str, np.ndarray], snap: _Snapshot) -> dict[str, np.ndarray]:
    """Per one-off obligation: attempts, failed attempts, last attempt and first reached visit
    at or after its anchor.

    Why np.*.at aggregations over the (obligation, visit) pairs of `_visit_owners`: one pass
    over the visits, no join of frames."""
    n = len(anchors["kind"])
    row, v_rows = _visit_owners(anchors, snap)
    outcome = snap.visits["outcome"].astype("string").iloc[v_rows]
    at_i = snap.visit_at[v_rows].astype(np.int64)
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
    window); missed. overdue_days = D - window_end in calendar days once the window has passed,
    whatever the status (an unreachable obligation too), except done (0); else 0."""
    rules = policy.visits
    late = (call_day - window_end.astype("datetime64[D]")).astype(np.int64)
    status = np.select(
        [done, failed_attempts >= rules.max_failed_attempts,
         window_start.astype("datetime64[D]") > call_day, late <= 0,
         late <= rules.max_overdue_days],
        ["done", "unreachable", "upcoming", "due", "overdue"],
        default="missed",
    )
    overdue = np.where(status == "done", 0, np.maximum(late, 0))
    return status, overdue.astype(np.int64)


def visit_obligations(frames: dict[str, pd.DataFrame], policy: Policy,
                      calendar: BusinessCalendar, call_date: dt.date) -> pd.DataFrame:
    """Every visit obligation of every customer, with its window and status at call date D.

    Why one table: the call list (due / overdue), its not-listed report (missed / unreachable),
    the SMS pre-notice (upcoming) and the monthly timeliness KPI (done_at vs window_end; past
    recurring windows from `recurring_history`) all read it. `frames` is a snapshot
    (revisit.io.extract.read_snapshot); anything stamped at or after D 00:00 is ignored, so a
    later snapshot gives the same answer. Columns: OBLIGATION_COLUMNS, sorted by customer_id,
    window_start, kind."""
    call_day = as_day(call_date)
    cutoff = call_day.astype("datetime64[us]")
    snap = _Snapshot.of(frames, cutoff)
    once = _anchors(snap, policy, cutoff)
    n = len(once["kind"])
    start = np.empty(n, dtype="datetime64[D]")
    end = np.empty(n, dtype="datetime64[D]")
    for name, rule in policy.visits.kinds.items():
        mask = once["kind"] == VISIT_KINDS.index(name)
        if mask.any():
            start[mask], end[mask] = window(calendar, once["at"][mask], rule)
    matched = _match_visits(once, snap)
    recurring = _recurring(snap, policy, calendar, call_day)
    anchors = {name: np.concatenate([values, recurring[name]]) for name, values in once.items()}
    matched = {name: np.concatenate([values, recurring[name]])
               for name, values in matched.items()}
    start = np.concatenate([start, recurring["start"]])
    end = np.concatenate([end, recurring["end"]])
    if len(start) == 0:
        return empty_obligations()
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


def recurring_history(frames: dict[str, pd.DataFrame], policy: Policy,
                      calendar: BusinessCalendar, call_date: dt.date) -> pd.DataFrame:
    """Every obligation of the recurring kinds before call date D, one per anchor (see
    `_anchor_chain`): columns RECURRING_HISTORY_COLUMNS (closed_at: the next anchor, NaT while
    none); periodic rows first, then key_account, each by customer_id and anchor_at.

    Why: the monthly timeliness KPI counts past windows, which the call list at D does not
    show; both come from the same customers, base days and restarting visits
    (`_recurring_customers`, `_restarts`), so they cannot disagree on who owes what."""
    call_day = as_day(call_date)
    snap = _Snapshot.of(frames, call_day.astype("datetime64[us]"))
    restarts = _restarts(snap)
    parts = [_anchor_chain(snap, calendar, kind, policy.visits.kinds[kind], customers,
                           restarts[kind])
             for kind, customers in _recurring_customers(snap, policy, call_day).items()]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.reindex(columns=list(RECURRING_HISTORY_COLUMNS)).astype(RECURRING_HISTORY_COLUMNS)


__all__ = [
    "OBLIGATION_COLUMNS", "OPEN_STATUSES", "ORDER_KINDS", "OUTSIDE_CALENDAR",
    "RECURRING_HISTORY_COLUMNS", "RECURRING_KINDS", "RECURRING_TIERS", "STATUSES",
    "TICKET_KINDS", "arrow_strings", "current_cycle", "cycle_window", "dates",
    "empty_obligations", "empty_table", "obligation_status", "offset_days", "positions",
    "recurring_history", "table", "timestamps", "visit_obligations", "window",
    "working_days_between",
]
