"""The SLA engine: status of every (ticket, metric) as of the run's cut-off, and the digest.

Rules are DESIGN.md "Business rules — SLA"; every number comes from `policy.sla`, every clock
from the BusinessCalendar. Pure functions over DataFrames, vectorised: the only Python loops run
over the handful of (metric, target) pairs of the policy, never over tickets.

Inputs are snapshot frames (naive business-local timestamps, as `extract.apply_cutoff` leaves
them). Stamps at or after the cut-off are treated as not having happened even if the caller did
not cut the frame, because the status is "as of the cut-off" by definition.

Missing data is not a breach: a metric whose achievement stamp is empty is `unknown` when the
ticket's record shows it has moved past that step (STEP_STAMPS order; a later stamp set, or
status closed / resolved); unknown rows are neither met nor breached anywhere downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from revisit.config.policy import Duration, Policy
from revisit.config.schema import PRIORITIES
from revisit.core.phones import mask_phone
from revisit.rules.calendar import NS_PER_MINUTE, BusinessCalendar

STATUS_COLUMNS = (
    "ticket_id", "customer_id", "department_id", "priority", "metric", "started_at", "deadline",
    "achieved_at", "status", "overdue_minutes", "due_today", "target", "elapsed_minutes",
    "paused_minutes", "policy_version",
)
DIGEST_COLUMNS = (  # section: breached (new breaches) | due_today | at_risk (not due today)
    "section", "ticket_id", "customer_name", "phone_masked", "handler_agent_id", "priority",
    "metric", "deadline", "status", "overdue_minutes",
)
MET, BREACHED, AT_RISK, PENDING, UNKNOWN = "met", "breached", "at_risk", "pending", "unknown"
STATUSES = (MET, BREACHED, AT_RISK, PENDING, UNKNOWN)
# DESIGN.md "unknown": a ticket's steps in order, by the stamp that records each. A metric whose
# achievement stamp is empty is unknown once the ticket has moved past that step.
STEP_STAMPS = ("first_response_at", "verified_at", "plan_at", "resolved_at", "result_fed_back_at",
               "closed_at")
_PAST_ALL = len(STEP_STAMPS)  # status closed: every step passed
_PAST_RESOLUTION = STEP_STAMPS.index("resolved_at") + 1  # status resolved: up to resolution
PAUSE_COLUMNS = ("ticket_id", "paused_at", "resumed_at")
WALL_CLOCK_UNITS = ("hours", "days")


# --------------------------------------------------------------------------- helpers
# Internally every instant is naive UTC datetime64[ns]: comparisons and numpy arithmetic are then
# plain, and the calendar gets tz-aware UTC (which it reads unambiguously).


def _utc(values: pd.Series, tz: str) -> pd.Series:
    """Naive business-local (the snapshot convention) or tz-aware -> naive UTC ns.

    A local time that occurs twice (DST ending) is read as its first occurrence and one that
    does not occur (DST starting) is shifted forward: a ticket is never lost to a clock change
    (BusinessCalendar.to_utc_ns would turn the former into NaT)."""
    values = pd.to_datetime(values)
    if values.dt.tz is None:
        values = values.dt.tz_localize(tz, ambiguous=np.ones(len(values), dtype=bool),
                                       nonexistent="shift_forward")
    return values.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")


def _utc_scalar(value: pd.Timestamp, tz: str) -> pd.Timestamp:
    value = pd.Timestamp(value)
    if value.tzinfo is None:
        value = value.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return value.tz_convert("UTC").tz_localize(None).as_unit("ns")


def _aware(values: pd.Series | np.ndarray) -> pd.Series:
    """Naive UTC -> tz-aware UTC, the form handed to the calendar."""
    return pd.Series(values).dt.tz_localize("UTC")


def _aware_scalar(value: pd.Timestamp, tz: object) -> pd.Timestamp:
    """A cut-off comparable with a column of zone `tz` (None: a naive column)."""
    value = pd.Timestamp(value)
    if tz is None:
        return value.tz_localize(None) if value.tzinfo is not None else value
    return value.tz_convert(tz) if value.tzinfo is not None else value.tz_localize(tz)


def _before(values: pd.Series, cutoff: pd.Timestamp) -> pd.Series:
    """Stamps at or after the cut-off have not happened yet as of the cut-off."""
    return values.where(values < cutoff)


def _ns(values: pd.Series) -> np.ndarray:
    """Int64 nanoseconds of instants (UTC) or durations; NaT is numpy's int64 minimum."""
    return values.array.asi8


def _select_pauses(pauses: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Pauses of the rows where `keep` is true, renumbered to positions among those rows."""
    if pauses.empty:
        return pauses
    rows = pauses["row"].to_numpy()
    new_pos = np.cumsum(keep) - 1
    chosen = keep[rows]
    out = pauses[chosen].copy()
    out["row"] = new_pos[rows[chosen]]
    return out


@dataclass(frozen=True)
class _Group:
    """The rows of one (metric, target): positions in tickets plus their events."""

    metric: str
    metric_pos: int
    duration: Duration
    positions: np.ndarray  # positions in the tickets frame
    started: pd.Series  # naive UTC, not null
    achieved: pd.Series  # naive UTC, NaT = not achieved by the cut-off
    passed: np.ndarray  # bool: the ticket's record shows it moved past this metric's step


def _prepare_pauses(pauses: pd.DataFrame | None, tickets: pd.DataFrame, cutoff: pd.Timestamp,
                    tz: str) -> pd.DataFrame:
    """Pauses that exist as of the cut-off, keyed by the ticket's position (`ticket`); an open
    (or later-resumed) one runs to the cut-off; pauses of unknown tickets are dropped."""
    if pauses is None or pauses.empty:
        return pd.DataFrame({"ticket": np.array([], dtype=np.intp),
                             "paused_at": np.array([], dtype="datetime64[ns]"),
                             "resumed_at": np.array([], dtype="datetime64[ns]")})
    ticket = pd.Index(tickets["ticket_id"]).get_indexer(pauses["ticket_id"])
    paused = _utc(pauses["paused_at"], tz)
    resumed = _utc(pauses["resumed_at"], tz)
    keep = (paused < cutoff).to_numpy() & (ticket >= 0)
    resumed = resumed.where(resumed < cutoff, cutoff)  # NaT compares False -> cut-off
    return pd.DataFrame({"ticket": ticket[keep], "paused_at": paused.to_numpy()[keep],
                         "resumed_at": resumed.to_numpy()[keep]})


def _pauses_for(group: _Group, n_tickets: int, pauses: pd.DataFrame,
                cutoff: pd.Timestamp) -> pd.DataFrame:
    """The group's pauses in the calendar's shape (row = position in the group), each ended at
    the metric's achievement: waiting on the customer after a metric is met does not move it."""
    position = np.full(n_tickets, -1, dtype=np.intp)
    position[group.positions] = np.arange(group.positions.size)
    row = position[pauses["ticket"].to_numpy()]
    hit = row >= 0
    row = row[hit]
    upper = group.achieved.fillna(cutoff).to_numpy()[row]
    paused = pauses["paused_at"].to_numpy()[hit]
    resumed = np.minimum(pauses["resumed_at"].to_numpy()[hit], upper)
    useful = paused < upper
    return pd.DataFrame({"row": row[useful], "paused_at": _aware(paused[useful]),
                         "resumed_at": _aware(resumed[useful])})


def _minutes(ns: np.ndarray) -> np.ndarray:
    """Nanoseconds -> whole minutes, half up; never negative (the clocks are monotone, so only
    a stamp before its start could make it so: then 0)."""
    return np.maximum((ns + NS_PER_MINUTE // 2) // NS_PER_MINUTE, 0)


def _evaluate(group: _Group, pauses: pd.DataFrame, calendar: BusinessCalendar,
              cutoff: pd.Timestamp, at_risk_share: float, next_midnight: pd.Timestamp
              ) -> dict[str, np.ndarray | pd.Series]:
    """Deadline, status, overdue minutes and the explanation columns of one group's rows."""
    unit = group.duration.unit
    if unit in WALL_CLOCK_UNITS:
        # DESIGN: paused time is excluded from business-time targets only; a wall-clock target
        # (e.g. urgent plan in 24 hours) runs on regardless of waiting on the customer.
        pauses = pauses.iloc[:0]
    n = len(group.started)
    started = _aware(group.started)
    deadline = calendar.deadline(started, group.duration, pauses)
    deadline_ns = _ns(deadline)
    achieved_ns = _ns(group.achieved)
    cutoff_ns = cutoff.value

    achieved = group.achieved.notna().to_numpy()
    # Missing data is not a breach: an empty stamp of a step the ticket has moved past.
    unknown = ~achieved & group.passed
    late = achieved & (achieved_ns > deadline_ns)
    missed = ~achieved & ~unknown & (deadline_ns < cutoff_ns)
    running = ~achieved & ~unknown & ~missed
    status = np.full(n, PENDING, dtype=object)
    status[achieved & ~late] = MET
    status[late | missed] = BREACHED
    status[unknown] = UNKNOWN

    # Explanation: time on the target's clock from the start to the achievement (or the
    # cut-off), less paused time; the pauses are already ended at the achievement.
    until = _aware(group.achieved.where(achieved, cutoff))
    elapsed_ns = _ns(calendar.elapsed(started, until, unit, pauses))
    paused_ns = np.zeros(n, dtype=np.int64)
    if len(pauses):
        paused_ns = _ns(calendar.elapsed(started, until, unit)) - elapsed_ns

    if running.any():
        # Time used so far is the elapsed time of a running row; the target's whole time is
        # measured the same way up to the deadline.
        sel = _select_pauses(pauses, running)
        used = elapsed_ns[running]
        total = _ns(calendar.elapsed(started[running].reset_index(drop=True),
                                     deadline[running].dt.tz_convert("UTC")
                                     .reset_index(drop=True), unit, sel))
        # Rounded to the nanosecond so that e.g. exactly 80 % is at risk despite 0.8 in binary.
        threshold = np.round(total.astype(np.float64) * at_risk_share).astype(np.int64)
        idx = np.flatnonzero(running)
        status[idx[used >= threshold]] = AT_RISK

    overdue = np.zeros(n, dtype=np.int64)
    breached = late | missed
    if breached.any():
        late_ns = _ns(calendar.elapsed(deadline[breached].dt.tz_convert("UTC"),
                                       until[breached], unit, _select_pauses(pauses, breached)))
        overdue[breached] = _minutes(late_ns)
    open_now = running  # pending or at_risk
    due_today = open_now & (deadline_ns < next_midnight.value)
    return {"deadline": deadline, "status": status, "overdue_minutes": overdue,
            "due_today": due_today, "elapsed_minutes": _minutes(elapsed_ns),
            "paused_minutes": _minutes(paused_ns)}


def _groups(tickets: pd.DataFrame, policy: Policy, calendar: BusinessCalendar,
            cutoff: pd.Timestamp) -> list[_Group]:
    """One group per (metric, distinct target): priorities sharing a target share a call."""
    sla = policy.sla
    priority = tickets["priority"].astype("string")
    stamps: dict[str, pd.Series] = {}  # each stamp column converted once

    def stamp(name: str) -> pd.Series:
        if name not in stamps:
            stamps[name] = _before(_utc(tickets[name], calendar.tz), cutoff)
        return stamps[name]

    furthest = _furthest_step(tickets, stamp, cutoff, calendar.tz)
    groups = []
    for metric_pos, (metric, events) in enumerate(sla.metrics.items()):
        by_target: dict[Duration, list[str]] = {}
        for prio, targets in sla.targets.items():
            if metric in targets:
                by_target.setdefault(targets[metric], []).append(prio)
        for duration, priorities in by_target.items():
            started, achieved = stamp(events.start), stamp(events.achieved)
            chosen = (priority.isin(priorities).fillna(False) & started.notna()).to_numpy(bool)
            positions = np.flatnonzero(chosen)
            if positions.size:
                step = (STEP_STAMPS.index(events.achieved) if events.achieved in STEP_STAMPS
                        else _PAST_ALL)  # a stamp outside the step order is never passed
                groups.append(_Group(
                    metric, metric_pos, duration, positions,
                    started.iloc[positions].reset_index(drop=True),
                    achieved.iloc[positions].reset_index(drop=True),
                    furthest[positions] > step,
                ))
    return groups


def _furthest_step(tickets: pd.DataFrame, stamp, cutoff: pd.Timestamp, tz: str) -> np.ndarray:
    """Per ticket, how many steps of STEP_STAMPS its record shows it has moved past as of the
    cut-off: step i is passed when the result is > i. A stamp of step j set passes every step
    before j; status `closed` passes all, `resolved` all up to resolution. A status whose own
    stamp lies after the cut-off is not believed (the ticket was not closed / resolved yet;
    extract.apply_cutoff makes the same correction)."""
    furthest = np.zeros(len(tickets), dtype=np.int64)
    for j, name in enumerate(STEP_STAMPS):
        if name in tickets:
            furthest = np.where(stamp(name).notna().to_numpy(bool), j, furthest)
    if "status" in tickets:
        status = tickets["status"].astype("string")

        def not_after(name: str) -> np.ndarray:
            if name not in tickets:
                return np.ones(len(tickets), dtype=bool)
            return ~(_utc(tickets[name], tz) >= cutoff).fillna(False).to_numpy(bool)

        closed = (status == "closed").fillna(False).to_numpy(bool) & not_after("closed_at")
        resolved = (status == "resolved").fillna(False).to_numpy(bool) & not_after("resolved_at")
        furthest = np.where(resolved, np.maximum(furthest, _PAST_RESOLUTION), furthest)
        furthest = np.where(closed, _PAST_ALL, furthest)
    return furthest


def _empty_status(tickets: pd.DataFrame, tz: str) -> pd.DataFrame:
    stamp = pd.Series([], dtype=pd.DatetimeTZDtype("ns", tz))
    return pd.DataFrame({
        "ticket_id": tickets["ticket_id"].iloc[:0].reset_index(drop=True),
        "customer_id": tickets["customer_id"].iloc[:0].reset_index(drop=True),
        "department_id": tickets["department_id"].iloc[:0].reset_index(drop=True),
        "priority": tickets["priority"].iloc[:0].reset_index(drop=True),
        "metric": pd.Series([], dtype="str"),
        "started_at": stamp, "deadline": stamp, "achieved_at": stamp,
        "status": pd.Series([], dtype="str"),
        "overdue_minutes": pd.Series([], dtype=np.int64),
        "due_today": pd.Series([], dtype=bool),
        "target": pd.Series([], dtype="str"),
        "elapsed_minutes": pd.Series([], dtype=np.int64),
        "paused_minutes": pd.Series([], dtype=np.int64),
        "policy_version": pd.Series([], dtype="str"),
    })


# --------------------------------------------------------------------------- public API
def sla_status(tickets: pd.DataFrame, pauses: pd.DataFrame | None, policy: Policy,
               calendar: BusinessCalendar, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Every (ticket, metric) whose priority has a target for the metric and whose start event
    happened before the cut-off (D 00:00 local), with its deadline, status and overdue minutes,
    and how it came about: due_today (pending / at_risk with the deadline before D+1 00:00
    local), target (the policy's text), elapsed_minutes and paused_minutes (on the target's
    clock, start to achievement or cut-off), policy_version (Policy.version).

    Columns are exactly STATUS_COLUMNS (the sla_status.csv contract); timestamps are tz-aware
    in the business zone; rows sorted by ticket_id, then metric in the policy's order."""
    cutoff = _utc_scalar(cutoff, calendar.tz)
    # D + 1 day 00:00 local (a calendar day later, whatever the clock does in between).
    local_day = pd.Timestamp(cutoff).tz_localize("UTC").tz_convert(calendar.tz).tz_localize(None)
    next_midnight = _utc_scalar(local_day.normalize() + pd.Timedelta(days=1), calendar.tz)
    if not tickets["ticket_id"].is_unique:
        duplicated = tickets["ticket_id"][tickets["ticket_id"].duplicated()].iloc[0]
        raise ValueError(f"tickets: ticket_id {duplicated!r} occurs more than once")
    groups = _groups(tickets, policy, calendar, cutoff)
    if not groups:
        return _empty_status(tickets, calendar.tz)
    ready = _prepare_pauses(pauses, tickets, cutoff, calendar.tz)

    parts = []
    for group in groups:
        group_pauses = _pauses_for(group, len(tickets), ready, cutoff)
        result = _evaluate(group, group_pauses, calendar, cutoff, policy.sla.at_risk_share,
                           next_midnight)
        parts.append(pd.DataFrame({
            "_pos": group.positions,
            "_metric": np.full(len(group.positions), group.metric_pos),
            "metric": np.full(len(group.positions), group.metric, dtype=object),
            "started_at": _aware(group.started).dt.tz_convert(calendar.tz),
            "deadline": result["deadline"].reset_index(drop=True),
            "achieved_at": _aware(group.achieved).dt.tz_convert(calendar.tz),
            "status": result["status"],
            "overdue_minutes": result["overdue_minutes"],
            "due_today": result["due_today"],
            "target": np.full(len(group.positions), str(group.duration), dtype=object),
            "elapsed_minutes": result["elapsed_minutes"],
            "paused_minutes": result["paused_minutes"],
        }))
    rows = pd.concat(parts, ignore_index=True)
    positions = rows["_pos"].to_numpy()
    out = pd.DataFrame({
        name: tickets[name].iloc[positions].reset_index(drop=True)
        for name in ("ticket_id", "customer_id", "department_id", "priority")
    })
    for name in ("metric", "started_at", "deadline", "achieved_at", "status", "overdue_minutes",
                 "due_today", "target", "elapsed_minutes", "paused_minutes"):
        out[name] = rows[name]
    out["policy_version"] = policy.version
    out["_metric"] = rows["_metric"]
    out = out.sort_values(["ticket_id", "_metric"], kind="stable", ignore_index=True)
    return out.loc[:, list(STATUS_COLUMNS)]


def new_breaches(status: pd.DataFrame, cutoff: pd.Timestamp,
                 previous_cutoff: pd.Timestamp) -> pd.DataFrame:
    """Breached rows that became known in [previous_cutoff, cutoff): those whose deadline
    passed in that window, achieved or not.

    A late achievement's breach was already known at the first cut-off after its deadline
    (it was "not achieved, deadline passed" then), so keying on the deadline reports every
    breach once, in the run right after it happened, instead of again when it is finally met."""
    return status[_new_breach_mask(status, cutoff, previous_cutoff)].reset_index(drop=True)


def _new_breach_mask(status: pd.DataFrame, cutoff: pd.Timestamp,
                     previous_cutoff: pd.Timestamp) -> np.ndarray:
    tz = status["deadline"].dt.tz
    now, before = _aware_scalar(cutoff, tz), _aware_scalar(previous_cutoff, tz)
    deadline = status["deadline"]
    window = (deadline >= before) & (deadline < now)
    return ((status["status"] == BREACHED) & window.fillna(False)).to_numpy(bool)


# What breach_digest reads of the tickets and customers tables.
DIGEST_READS = {"tickets": ("ticket_id", "handler_agent_id"),
                "customers": ("customer_id", "name", "phone")}


def breach_digest(status: pd.DataFrame, tickets: pd.DataFrame, customers: pd.DataFrame,
                  cutoff: pd.Timestamp, previous_cutoff: pd.Timestamp
                  ) -> dict[str, pd.DataFrame]:
    """Per department: the new breaches, the rows due today and the (other) at-risk rows, for
    its head's daily e-mail; each row once, its `section` saying which.

    Sections, in this order: `breached` (new_breaches), `due_today` (pending or at_risk with a
    deadline before D + 1 day 00:00 local: the `due_today` column of the status when it has
    one), `at_risk` (at_risk, not due today). `unknown` and `met` rows are never listed.
    Phones are masked (the e-mail leaves the CRM). Within a section: due_today by deadline
    (then priority); the others most urgent first (priority, then earliest deadline).
    Departments with nothing to report have no key. `tickets` and `customers` need to hold
    only the rows digest_parties names."""
    rows, section = _digest_rows(status, cutoff, previous_cutoff)
    rank = rows["priority"].map({p: i for i, p in enumerate(PRIORITIES)}).fillna(
        len(PRIORITIES)).to_numpy()
    people = customers.drop_duplicates("customer_id").set_index("customer_id")
    handlers = tickets.drop_duplicates("ticket_id").set_index("ticket_id")["handler_agent_id"]
    digest = pd.DataFrame({
        "department_id": rows["department_id"],
        "section": section,
        "ticket_id": rows["ticket_id"],
        "customer_name": rows["customer_id"].map(people["name"]).astype("string"),
        "phone_masked": mask_phone(rows["customer_id"].map(people["phone"])),
        "handler_agent_id": rows["ticket_id"].map(handlers).astype("string"),
        "priority": rows["priority"],
        "metric": rows["metric"],
        "deadline": rows["deadline"],
        "status": rows["status"],
        "overdue_minutes": rows["overdue_minutes"],
        "_section": pd.Series(section).map({"breached": 0, "due_today": 1, "at_risk": 2}),
        # due_today is ordered by deadline first: priority decides only in the other sections
        "_first": np.where(section == "due_today", 0, rank),
        "_priority": rank,
        "_order": np.arange(len(rows)),
    })
    digest = digest.sort_values(
        ["_section", "_first", "deadline", "_priority", "ticket_id", "_order"],
        kind="stable", ignore_index=True)
    return {
        str(department): frame.loc[:, list(DIGEST_COLUMNS)].reset_index(drop=True)
        for department, frame in digest.groupby("department_id", sort=True)
    }


def digest_parties(status: pd.DataFrame, cutoff: pd.Timestamp, previous_cutoff: pd.Timestamp
                   ) -> tuple[list[str], list[str]]:
    """(ticket ids, customer ids) of breach_digest's rows: the only tickets and customers it
    reads, so a task holding every status need not hold every ticket (DESIGN.md scale-out)."""
    rows, _ = _digest_rows(status, cutoff, previous_cutoff)
    return ([str(v) for v in rows["ticket_id"].dropna().unique()],
            [str(v) for v in rows["customer_id"].dropna().unique()])


def digest_candidates(status: pd.DataFrame, cutoff: pd.Timestamp,
                      previous_cutoff: pd.Timestamp) -> pd.DataFrame:
    """The rows of `status` that breach_digest lists, in their order: breach_digest and
    digest_parties over the candidates of each part of a status, put together, give what they
    give over the whole (each row is chosen on its own), so a merge need not hold it."""
    fresh, _due, listed = _digest_masks(status, cutoff, previous_cutoff)
    return status[fresh | listed]


def _digest_rows(status: pd.DataFrame, cutoff: pd.Timestamp, previous_cutoff: pd.Timestamp
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """(the rows breach_digest lists, each one's section), sections in their order."""
    fresh, due, listed = _digest_masks(status, cutoff, previous_cutoff)
    rows = pd.concat([status[fresh], status[listed]], ignore_index=True)
    section = np.concatenate([np.full(int(fresh.sum()), "breached", dtype=object),
                              np.where(due[listed], "due_today", "at_risk").astype(object)])
    return rows, section


def _digest_masks(status: pd.DataFrame, cutoff: pd.Timestamp, previous_cutoff: pd.Timestamp
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `status`: (a new breach, due today, listed as due today or at risk)."""
    running = status["status"].isin([PENDING, AT_RISK]).to_numpy(bool)
    if "due_today" in status:
        due = status["due_today"].fillna(False).astype(bool).to_numpy(bool) & running
    else:  # until sla_status carries due_today: the same definition (DESIGN.md "SLA")
        tz = status["deadline"].dt.tz
        day = pd.Timestamp(cutoff)
        if day.tzinfo is not None:
            day = (day.tz_convert(tz) if tz is not None else day).tz_localize(None)
        tomorrow = _aware_scalar(day + pd.Timedelta(days=1), tz)
        due = (status["deadline"] < tomorrow).fillna(False).to_numpy(bool) & running
    listed = due | (status["status"] == AT_RISK).to_numpy(bool)
    return _new_breach_mask(status, cutoff, previous_cutoff), due, listed


def write_status_csv(status: pd.DataFrame, path: Path) -> Path:
    """An sla_status.csv (DESIGN.md Outputs), written atomically by the project's CSV
    writer."""
    from revisit.io.spreadsheet import write_csv

    return write_csv(status_csv_rows(status), path)


def status_csv_rows(status: pd.DataFrame) -> pd.DataFrame:
    """Status rows as sla_status.csv holds them: STATUS_COLUMNS, due_today as `true` /
    `false` (the hand-off keeps the bool)."""
    as_csv = status.assign(due_today=status["due_today"].map({True: "true", False: "false"}))
    return as_csv.loc[:, list(STATUS_COLUMNS)]


__all__ = [
    "AT_RISK", "BREACHED", "DIGEST_COLUMNS", "DIGEST_READS", "MET", "PENDING", "STATUSES",
    "STATUS_COLUMNS", "STEP_STAMPS", "UNKNOWN",
    "breach_digest", "digest_candidates", "digest_parties", "new_breaches",
    "sla_status", "status_csv_rows", "write_status_csv",
]
