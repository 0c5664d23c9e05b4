"""Visit obligations: which return visit each customer owes, its window, and where it stands at D.

Why a table of obligations: the call list, the SMS pre-notice and the monthly timeliness KPI all
ask the same question ("which visit was due when, and was it made?"), so it is answered once,
here, for every visit kind of DESIGN.md ("Business rules — visits"), with every number taken from
`policy.visits`.

One row per obligation:
- `welcome`: per customer (their first order; order_id is that order's);
- `early_use`, `stable_use`, `long_term`: per delivered order;
- `post_resolution`: per closed ticket of a type in the rule's `ticket_types`;
- `periodic`, `key_account` (recurring): per eligible customer up to three cycles, see below;
- special circumstances (policy 000 特殊情况回访: "当客户购买公司新产品或服务、公司推出重大
  产品升级或服务改进、客户有重大投诉或反馈等情况时，及时进行特殊情况回访"):
  `new_product` per order of a product the customer had not ordered before (not the first order,
  which is `welcome`; an order without a product is not: a CRM that leaves the product empty
  would otherwise owe one on every repeat order); `major_complaint` per ticket
  of the rule's `ticket_types` and `priorities` created before the cut-off, from created_at;
  `product_upgrade` per (customer, event of `visits.events`) where the customer has an order of
  the event's product delivered before the event's date (and before the cut-off), anchored at
  the date (00:00); order_id is the latest such order, for the agent's note.
A kind whose rule says `enabled: false` owes nothing (its visits still restart `periodic`).

A window is [window_start, window_end] in calendar dates: "N days" is calendar days from the
anchor's date, "N working_days" is `calendar.add_working_days_to_date(date, N)` (the N-th working
day after the date, the date itself not counted; Monday-Friday outside the calendar's years, see
OUTSIDE_CALENDAR); a start or end that falls on a non-working day moves to the next working day
(see `window`).

Matching ("done"): a visit of the same kind with outcome reached, at or after the anchor, of the
same order (early_use / stable_use / long_term / new_product) or ticket (post_resolution /
major_complaint). `welcome` is matched on the customer alone: a customer owes exactly one
welcome visit, and CRMs often log it without an order. `product_upgrade` visits carry no event
id: a visit counts for the customer's product_upgrade obligation with the latest event date on
or before the visit's day, of the visit's product when it names an order (`_event_refs`), so
one visit per (customer, event), made at or after the event's date. A customer without a
cooperation start date counts from the day their record was created (customers.created_at).

Refusals (`visits.after_refusal`; policy 004: "尊重客户的意见和选择"): with `end` (shipped) a
visit with outcome refused ends the obligation (or the recurring cycle it counts toward) as
status `refused`: not listed again, reported in not_listed, counted as done for timeliness
(`on_time`, from refused_at); with `retry` it is one more attempt (not a failed one), as a
rescheduled call is. A reached visit still wins (done).

Early visits (`visits.early_tolerance_days`; policy 004: "不得擅自提前或推迟回访时间"): a reached
visit after the anchor but before window_start completes the obligation (done), but it is on
time only when at most early_tolerance_days (0 shipped) days before window_start: `on_time`,
the one rule the monthly timeliness KPI and `recurring_history` use.

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

from revisit.config.policy import Duration, Policy, WindowRule
from revisit.config.schema import TABLES, VISIT_KINDS
from revisit.core.ids import arrow_strings, positions
from revisit.rules.calendar import BusinessCalendar

ORDER_KINDS = ("early_use", "stable_use", "long_term")  # one obligation per delivered order
TICKET_KINDS = ("post_resolution",)  # one per closed ticket
RECURRING_KINDS = ("periodic", "key_account")  # repeating every period, per customer
SPECIAL_KINDS = ("new_product", "major_complaint", "product_upgrade")  # 000 特殊情况回访
ORDER_MATCHED = (*ORDER_KINDS, "new_product")  # a visit must name the obligation's order
TICKET_MATCHED = (*TICKET_KINDS, "major_complaint")  # ... its ticket
FAILED_OUTCOMES = ("no_answer", "wrong_number")
REACHED = "reached"
REFUSED = "refused"

STATUSES = ("done", "refused", "upcoming", "due", "overdue", "missed", "unreachable")
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
    "refused_at": "datetime64[us]",  # first refused visit since the anchor (NaT: none)
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
    "on_time": "bool",  # closed by a reached visit of the kind (or refused) on time: `on_time`
    "superseded": "bool",  # closed first by a reached visit of another kind (periodic only)
}

_NAT_US = np.datetime64("NaT", "us")
_NAT_D = np.datetime64("NaT", "D")
_SHIFT = np.int64(2**34)  # customer * _SHIFT + epoch seconds: one sortable key per stamp


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
            ticket: np.ndarray | None = None, ref: np.ndarray | None = None) -> None:
        n = len(customer)
        none = np.full(n, -1, dtype=np.int64)
        order = none if order is None else order
        ticket = none if ticket is None else ticket
        if ref is None:
            ref = order if kind in ORDER_MATCHED else ticket if kind in TICKET_MATCHED else none
        self.kind.append(np.full(n, VISIT_KINDS.index(kind), dtype=np.int64))
        self.customer.append(customer.astype(np.int64))
        self.order.append(order.astype(np.int64))
        self.ticket.append(ticket.astype(np.int64))
        self.ref.append(ref.astype(np.int64))
        self.at.append(np.asarray(at).astype("datetime64[us]"))

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
    anchor (the recurring kinds are built by _recurring); kinds switched off owe nothing."""
    out = _Anchors()
    _order_anchors(snap, policy, cutoff, out)
    _ticket_anchors(snap, policy, cutoff, out)
    _upgrade_anchors(snap, policy, cutoff, out)
    return out.arrays()


def _on(policy: Policy, kind: str) -> bool:
    return policy.visits.kinds[kind].enabled


def _order_anchors(snap: _Snapshot, policy: Policy, cutoff: np.datetime64,
                   out: _Anchors) -> None:
    """welcome (each customer's first order), new_product (each later order of a product the
    customer had not ordered before) and the delivered-order kinds. Orders were placed before
    the cut-off (_Snapshot), of known customers; ties of ordered_at go to the smaller order_id.
    000: "当客户购买公司新产品或服务 … 及时进行特殊情况回访" (new_product)."""
    orders = snap.orders
    known = snap.order_customer >= 0
    ordered_at = timestamps(orders["ordered_at"])
    if known.any():
        rows = np.flatnonzero(known)
        id_rank = np.argsort(np.argsort(arrow_strings(orders["order_id"]).to_numpy(
            zero_copy_only=False)[rows], kind="stable"), kind="stable")
        by = rows[np.lexsort((id_rank, ordered_at[rows], snap.order_customer[rows]))]
        cust = snap.order_customer[by]
        is_first = np.r_[True, cust[1:] != cust[:-1]]
        if _on(policy, "welcome"):
            out.add("welcome", cust[is_first], ordered_at[by[is_first]], order=by[is_first])
        product, _ = pd.factorize(orders["product"].astype("string").iloc[by])
        pair = cust * (int(product.max(initial=-1)) + 2) + (product + 1)
        first_of_pair = np.zeros(len(by), dtype=bool)
        first_of_pair[np.unique(pair, return_index=True)[1]] = True
        new = np.flatnonzero(first_of_pair & (product >= 0) & ~is_first)
        if _on(policy, "new_product"):
            out.add("new_product", cust[new], ordered_at[by[new]], order=by[new])
    delivered_at = timestamps(orders["delivered_at"])
    delivered = np.flatnonzero(known & (delivered_at < cutoff))  # NaT compares False
    for kind in ORDER_KINDS:
        if _on(policy, kind):
            out.add(kind, snap.order_customer[delivered], delivered_at[delivered],
                    order=delivered)


def _ticket_anchors(snap: _Snapshot, policy: Policy, cutoff: np.datetime64,
                    out: _Anchors) -> None:
    """post_resolution (tickets of its types closed before the cut-off, from closed_at) and
    major_complaint (tickets of its types and priorities created before the cut-off, from
    created_at, whatever happens to them after: a care call while it is handled).
    000: "客户有重大投诉或反馈等情况时，及时进行特殊情况回访" (major_complaint)."""
    tickets, kinds = snap.tickets, policy.visits.kinds
    for kind, stamp in (("post_resolution", "closed_at"), ("major_complaint", "created_at")):
        rule = kinds[kind]
        if not rule.enabled:
            continue
        at = timestamps(tickets[stamp])
        keep = (snap.ticket_customer >= 0) & (at < cutoff)
        if rule.ticket_types is not None:
            keep &= _in(tickets["type"], tuple(rule.ticket_types))
        if rule.priorities is not None:
            keep &= _in(tickets["priority"], tuple(rule.priorities))
        rows = np.flatnonzero(keep)
        out.add(kind, snap.ticket_customer[rows], at[rows], ticket=rows)


def _upgrade_anchors(snap: _Snapshot, policy: Policy, cutoff: np.datetime64,
                     out: _Anchors) -> None:
    """product_upgrade: per event of `visits.events` (ref = its position there), each customer
    with an order of the event's product delivered before the event's date and before the
    cut-off, anchored at the date 00:00; order = that customer's latest such order.
    000: "公司推出重大产品升级或服务改进 … 及时进行特殊情况回访"."""
    if not _on(policy, "product_upgrade") or not policy.visits.events:
        return
    orders = snap.orders
    delivered_at = timestamps(orders["delivered_at"])
    product = orders["product"].astype("string")
    known = snap.order_customer >= 0
    for index, event in enumerate(policy.visits.events):
        day = np.datetime64(event.date, "D").astype("datetime64[us]")
        of = (product == event.product).fillna(False).to_numpy(dtype=bool)
        rows = np.flatnonzero(known & of & (delivered_at < min(day, cutoff)))
        rows = rows[np.lexsort((delivered_at[rows], snap.order_customer[rows]))]
        cust = snap.order_customer[rows]
        last = rows[np.r_[cust[1:] != cust[:-1], True]] if len(rows) else rows
        out.add("product_upgrade", snap.order_customer[last], np.full(len(last), day),
                order=last, ref=np.full(len(last), index, dtype=np.int64))


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
        if not rule.enabled:
            continue
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


def _visits_of(snap: _Snapshot, kind: str, who: np.ndarray, failed: np.ndarray,
               refused: np.ndarray) -> tuple[np.ndarray, ...]:
    """The visits of `kind` by the customers `who`: (index into who, stamp, failed outcome,
    refused outcome).

    Why all outcomes: every call of the kind is an attempt of some cycle (see `_cycles`)."""
    slot = np.full(len(snap.customer_ids), -1, dtype=np.int64)
    slot[who] = np.arange(len(who))
    rows = np.flatnonzero((snap.visit_kind == VISIT_KINDS.index(kind))
                          & (snap.visit_customer >= 0))
    owner = slot[snap.visit_customer[rows]]
    rows, owner = rows[owner >= 0], owner[owner >= 0]
    return owner, snap.visit_at[rows], failed[rows], refused[rows]


def _cycle_rows(kind: str, who: np.ndarray, anchor: np.ndarray, cycle: _Cycle,
                visits: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The emitted rows of one cycle, with their attempts: the customer's visits in its span.

    Why here and not in _match_visits: a recurring row has no order or ticket to match; its
    visits are told apart by when they were made. Never done (a reached visit moves A); a
    refused call in the span is the cycle's refused_at (a refusal ends that cycle only)."""
    owner, at, failed, refused = visits
    m = len(who)
    hit = cycle.emit[owner] & (at >= cycle.since[owner]) & (at < cycle.until[owner])
    attempts = np.bincount(owner[hit], minlength=m).astype(np.int64)
    last = np.full(m, np.iinfo(np.int64).min)
    np.maximum.at(last, owner[hit], at[hit].astype(np.int64))
    first_no = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first_no, owner[hit & refused], at[hit & refused].astype(np.int64))
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
        "refused_at": np.where(first_no < np.iinfo(np.int64).max, first_no,
                               _NAT_US.astype(np.int64)).view("datetime64[us]")[keep],
    }


_RECURRING_ROW_DTYPES = {
    "kind": "int64", "customer": "int64", "order": "int64", "ticket": "int64", "ref": "int64",
    "at": "datetime64[us]", "start": "datetime64[D]", "end": "datetime64[D]",
    "attempts": "int64", "failed_attempts": "int64", "last_attempt_at": "datetime64[us]",
    "done_at": "datetime64[us]", "refused_at": "datetime64[us]",
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
    refused = _in(snap.visits["outcome"], (REFUSED,))
    parts = []
    for kind, (who, anchor) in _recurring_anchors(snap, policy, call_day).items():
        cycles = _cycles(calendar, policy, kind, anchor, call_day, sms_day)
        visits = _visits_of(snap, kind, who, failed, refused)
        parts.extend(_cycle_rows(kind, who, anchor, cycles[j], visits) for j in (-1, 0, 1))
    return {name: np.concatenate([part[name] for part in parts]) if parts
            else np.zeros(0, dtype=dtype) for name, dtype in _RECURRING_ROW_DTYPES.items()}


def _next(values: np.ndarray, fill: object) -> np.ndarray:
    """values shifted up by one (the next row's value), `fill` for the last row."""
    return np.concatenate([values[1:], np.full(min(len(values), 1), fill, dtype=values.dtype)])


def _first_after(customer: np.ndarray, at: np.ndarray, v_customer: np.ndarray,
                 v_at: np.ndarray) -> np.ndarray:
    """Per (customer, at): the earliest v_at of the same customer later than `at`, to the
    second (NaT: none). Keys customer * _SHIFT + epoch seconds (stamps before 1970 clip)."""
    def key(c: np.ndarray, t: np.ndarray) -> np.ndarray:
        seconds = t.astype("datetime64[s]").astype(np.int64)
        return c.astype(np.int64) * _SHIFT + np.clip(seconds, 0, _SHIFT - 1)
    keys = np.sort(key(v_customer, v_at))
    pos = np.searchsorted(keys, key(customer, at), side="right")
    found = keys[np.minimum(pos, max(len(keys) - 1, 0))] if len(keys) else np.zeros(len(pos),
                                                                                   np.int64)
    same = (pos < len(keys)) & (found // _SHIFT == customer)
    return np.where(same, (found % _SHIFT).astype("datetime64[s]").astype("datetime64[us]"),
                    _NAT_US)


def _anchor_chain(snap: _Snapshot, policy: Policy, calendar: BusinessCalendar, kind: str,
                  customers: tuple[np.ndarray, np.ndarray], restart: np.ndarray) -> pd.DataFrame:
    """One recurring kind's obligations, one per anchor: each customer's base day (unless a
    restarting visit came at or before it), then every restarting visit, in time order. Each
    anchor's window is its cycle 1; the next anchor closes it: on time when that is a visit of
    the kind on time (`on_time_days`), superseded when another kind's visit came first. With
    after_refusal `end` a refused visit of the kind before the next anchor answers it too
    (unless that anchor is a reached visit of the kind, which wins as in `on_time`): on time
    when the refusal is, never superseded.

    Why per anchor: a reached visit is what starts a new obligation, on the list and here."""
    rule = policy.visits.kinds[kind]
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
    no = (snap.visit_kind == VISIT_KINDS.index(kind)) & (snap.visit_customer >= 0) \
        & _in(snap.visits["outcome"], (REFUSED,))
    refused = _first_after(customer, at, snap.visit_customer[no], snap.visit_at[no])
    refused = np.where((policy.visits.after_refusal == "end") & ~(refused >= next_at),
                       refused, _NAT_US)  # a refusal after the next anchor is not this one's
    reached = has_next & same  # a reached visit of the kind wins over a refusal, as in on_time
    answered = ~np.isnat(refused) & ~reached
    return pd.DataFrame({
        "customer_id": _take(snap.customer_ids, customer), "kind": kind, "anchor_at": at,
        "window_start": start.astype("datetime64[s]"), "window_end": end.astype("datetime64[s]"),
        "closed_at": next_at,
        "on_time": np.where(reached, on_time_days(next_at, start, end, policy),
                            answered & on_time_days(refused, start, end, policy)),
        "superseded": closed & ~same & ~answered,
    })


# ================================================================= matching visits
def _visit_refs(snap: _Snapshot, anchors: dict[str, np.ndarray]) -> np.ndarray:
    """Per snapshot visit, what it must match besides kind and customer: the row of the order
    (ORDER_MATCHED) or ticket (TICKET_MATCHED) it is about, the event of a product_upgrade
    visit (`_event_refs`), -1 for none."""
    visits = snap.visits
    ref = np.full(len(visits), -1, dtype=np.int64)
    for kinds, column, universe in ((ORDER_MATCHED, "order_id", snap.orders["order_id"]),
                                    (TICKET_MATCHED, "ticket_id", snap.tickets["ticket_id"])):
        codes = [VISIT_KINDS.index(k) for k in kinds]
        rows = np.flatnonzero(np.isin(snap.visit_kind, codes))
        if len(rows):
            ref[rows] = positions(visits[column].iloc[rows], universe)
    rows = np.flatnonzero((snap.visit_kind == VISIT_KINDS.index("product_upgrade"))
                          & (snap.visit_customer >= 0))
    ref[rows] = _event_refs(anchors, snap, rows)
    return ref


def _event_refs(anchors: dict[str, np.ndarray], snap: _Snapshot,
                rows: np.ndarray) -> np.ndarray:
    """The event (ref) each product_upgrade visit (`rows` of the snapshot's visits) is for:
    of the customer's product_upgrade obligations, the one with the latest event date on or
    before the visit's day — among the events of the visit's product when the visit names an
    order (its product), else among all of them (-1: none).

    Why: a CRM logs an upgrade call without naming the event. A call about an order's product
    is about that product's upgrade (two announced upgrades of different products stay
    apart); without an order, the most recent announcement before the call is the best guess."""
    mine = np.flatnonzero(anchors["kind"] == VISIT_KINDS.index("product_upgrade"))
    products = snap.orders["product"].astype("string")
    a_product = _take(products, anchors["order"][mine])
    v_order = positions(snap.visits["order_id"].iloc[rows], snap.orders["order_id"])
    v_product = _take(products, v_order)
    codes, _ = pd.factorize(pd.concat([a_product, v_product], ignore_index=True))
    a_code, v_code = codes[:len(mine)], codes[len(mine):]
    a_day = anchors["at"][mine].astype("datetime64[D]")
    v_day = snap.visit_at[rows].astype("datetime64[D]")
    v_customer = snap.visit_customer[rows]
    refs = anchors["ref"][mine]
    out = np.full(len(rows), -1, dtype=np.int64)
    named = v_code >= 0
    width = int(codes.max(initial=-1)) + 2
    out[named] = _latest_on_or_before(anchors["customer"][mine] * width + a_code + 1, a_day,
                                      refs, v_customer[named] * width + v_code[named] + 1,
                                      v_day[named])
    out[~named] = _latest_on_or_before(anchors["customer"][mine], a_day, refs,
                                       v_customer[~named], v_day[~named])
    return out


_DAY_SHIFT = np.int64(2**20)  # group * _DAY_SHIFT + days since 1970: one sortable key per day


def _latest_on_or_before(group: np.ndarray, day: np.ndarray, ref: np.ndarray,
                         v_group: np.ndarray, v_day: np.ndarray) -> np.ndarray:
    """Per (v_group, v_day): the ref of the same group's latest `day` on or before v_day
    (-1: none). Days clip to [1970, 4840]: a visit before 1970 finds no event."""
    def key(g: np.ndarray, d: np.ndarray) -> np.ndarray:
        days = np.clip(d.astype(np.int64), 0, _DAY_SHIFT - 1)
        return g.astype(np.int64) * _DAY_SHIFT + days

    if not len(group) or not len(v_group):
        return np.full(len(v_group), -1, dtype=np.int64)
    order = np.argsort(key(group, day), kind="stable")
    keys = key(group, day)[order]
    pos = np.searchsorted(keys, key(v_group, v_day), side="right") - 1
    found = (pos >= 0) & (keys[np.maximum(pos, 0)] // _DAY_SHIFT == v_group)
    return np.where(found, ref[order][np.maximum(pos, 0)], -1)


def _visit_owners(anchors: dict[str, np.ndarray],
                  snap: _Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """(obligation row, visit row) of every visit made for a one-off obligation, at or after
    its anchor.

    Why integer keys: (kind, customer, ref) identifies an obligation, so each visit belongs to
    at most one; a sorted-key lookup is linear in the visits."""
    n = len(anchors["kind"])
    kind = snap.visit_kind
    ref = _visit_refs(snap, anchors)
    span = max(len(snap.orders), len(snap.tickets), int(anchors["ref"].max(initial=0)) + 1) + 1
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
    first = {}
    for name, wanted in (("done_at", REACHED), ("refused_at", REFUSED)):
        first[name] = np.full(n, never)
        ok = _in(outcome, (wanted,))
        np.minimum.at(first[name], row[ok], at_i[ok])
    nat = _NAT_US.astype(np.int64)
    return {
        "attempts": attempts,
        "failed_attempts": failed,
        "last_attempt_at": np.where(attempts > 0, last, nat).view("datetime64[us]"),
        **{name: np.where(value < never, value, nat).view("datetime64[us]")
           for name, value in first.items()},
    }


# ================================================================= public API
def obligation_status(window_start: np.ndarray, window_end: np.ndarray, done: np.ndarray,
                      failed_attempts: np.ndarray, call_day: np.datetime64,
                      policy: Policy, refused: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(status, overdue_days) at D, by the precedence of DESIGN.md: done; refused (a refused
    visit, when visits.after_refusal is `end`); unreachable (enough failed attempts, not done);
    upcoming; due; overdue (up to max_overdue_days after the window); missed. overdue_days =
    D - window_end in calendar days once the window has passed, whatever the status (an
    unreachable or refused obligation too), except done (0); else 0.

    004: "尊重客户的意见和选择": a customer who declined the visit is not called for it again."""
    rules = policy.visits
    refused = np.zeros(len(done), dtype=bool) if refused is None else refused
    refused = refused & (rules.after_refusal == "end")
    late = (call_day - window_end.astype("datetime64[D]")).astype(np.int64)
    status = np.select(
        [done, refused, failed_attempts >= rules.max_failed_attempts,
         window_start.astype("datetime64[D]") > call_day, late <= 0,
         late <= rules.max_overdue_days],
        ["done", "refused", "unreachable", "upcoming", "due", "overdue"],
        default="missed",
    )
    overdue = np.where(status == "done", 0, np.maximum(late, 0))
    return status, overdue.astype(np.int64)


def on_time_days(day: np.ndarray, window_start: np.ndarray, window_end: np.ndarray,
                 policy: Policy) -> np.ndarray:
    """Whether a visit made on `day` (dates or timestamps; NaT: none) is on time for the window:
    from early_tolerance_days before window_start through window_end.

    004: "不得擅自提前或推迟回访时间": too early is not on time, as too late is not; with
    early_tolerance_days = 0 (shipped) a visit before the window completes the obligation
    (done) but does not count as on time."""
    tolerance = np.timedelta64(policy.visits.early_tolerance_days, "D")
    day = np.asarray(day).astype("datetime64[D]")
    first = np.asarray(window_start).astype("datetime64[D]") - tolerance
    return ~np.isnat(day) & (day >= first) & (day <= np.asarray(window_end).astype(
        "datetime64[D]"))


def on_time(obligations: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Per obligation (OBLIGATION_COLUMNS): answered on time (`on_time_days`) by its first
    reached visit (done_at) or, when its status is refused, by the refusal (refused_at), which
    counts as done for timeliness (004: "尊重客户的意见和选择")."""
    refused = obligations["status"].astype("string").eq(REFUSED).fillna(False).to_numpy(bool)
    when = np.where(refused, timestamps(obligations["refused_at"]),
                    timestamps(obligations["done_at"]))
    return on_time_days(when, dates(obligations["window_start"]),
                        dates(obligations["window_end"]), policy)


def merge_obligations(shards: list[pd.DataFrame]) -> pd.DataFrame:
    """The obligations of several shards (each visit_obligations over a disjoint set of
    customers) as visit_obligations over all of them gives them: a customer's rows stay in
    their shard's order (customer_id, window_start, kind), the customers in id order."""
    if not shards:
        return empty_obligations()
    rows = pd.concat(shards, ignore_index=True)
    order = np.argsort(arrow_strings(rows["customer_id"]).to_numpy(zero_copy_only=False),
                       kind="stable")
    return rows.iloc[order].reset_index(drop=True).astype(OBLIGATION_COLUMNS)


def visit_obligations(frames: dict[str, pd.DataFrame], policy: Policy,
                      calendar: BusinessCalendar, call_date: dt.date) -> pd.DataFrame:
    """Every visit obligation of every customer, with its window and status at call date D.

    Why one table: the call list (due / overdue), its not-listed report (missed / unreachable),
    the SMS pre-notice (upcoming) and the monthly timeliness KPI (`on_time`; past
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
                                        matched["failed_attempts"], call_day, policy,
                                        refused=~np.isnat(matched["refused_at"]))
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
    parts = [_anchor_chain(snap, policy, calendar, kind, customers, restarts[kind])
             for kind, customers in _recurring_customers(snap, policy, call_day).items()]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.reindex(columns=list(RECURRING_HISTORY_COLUMNS)).astype(RECURRING_HISTORY_COLUMNS)


__all__ = [
    "OBLIGATION_COLUMNS", "OPEN_STATUSES", "ORDER_KINDS", "ORDER_MATCHED", "OUTSIDE_CALENDAR",
    "RECURRING_HISTORY_COLUMNS", "RECURRING_KINDS", "RECURRING_TIERS",
    "SPECIAL_KINDS", "STATUSES", "TICKET_KINDS", "TICKET_MATCHED", "arrow_strings",
    "current_cycle", "cycle_window", "dates", "empty_obligations", "empty_table",
    "obligation_status", "offset_days", "on_time", "on_time_days", "positions",
    "recurring_history", "table", "timestamps", "visit_obligations", "window",
    "working_days_between",
]
