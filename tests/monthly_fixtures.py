"""A hand-built CRM snapshot for the monthly tests (KPIs, report, e-mail).

Calendar facts used (CN 2026): 1-7 Oct are holidays, Sat 10 Oct and Sun 20 Sep are working
days, 25 Sep (Mid-Autumn) is a holiday; business hours 09:00-18:00. The expected KPIs of
October 2026 are worked out by hand in tests/unit/test_kpis.py.
"""

from __future__ import annotations

import pandas as pd

from revisit.config.schema import TABLES


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    """Rows as a snapshot frame: canonical columns and types."""
    kinds = TABLES[name].columns
    out = pd.DataFrame(rows, columns=list(kinds))
    for column, kind in kinds.items():
        if kind in ("datetime", "date"):
            out[column] = pd.to_datetime(out[column]).astype("datetime64[us]")
        elif kind in ("int", "bool"):
            out[column] = pd.to_numeric(out[column]).astype("Int64")
        elif kind == "money":
            out[column] = pd.to_numeric(out[column]).astype(float)
        else:
            out[column] = out[column].astype("string")
    return out


def customer(cid, dept, owner, coop, dnc=0, tier="standard", phone="13812345678", created=None):
    """A customer row; its record was created at `created` (default: the cooperation start)."""
    created = coop if created is None else created
    return {"customer_id": cid, "name": f"客户{cid}", "industry": "制造业", "contact_name": "陈明",
            "contact_title": "经理", "phone": phone, "email": f"{cid}@example.com",
            "source": "展会", "tier": tier, "owner_agent_id": owner, "department_id": dept,
            "cooperation_start_date": coop, "do_not_call": dnc, "created_at": created,
            "updated_at": created}


def visit(vid, cid, agent, kind, at, order=None, sat=None, outcome="reached", ticket=None):
    return {"visit_id": vid, "customer_id": cid, "agent_id": agent, "kind": kind,
            "ticket_id": ticket, "order_id": order, "visited_at": at, "method": "phone",
            "outcome": outcome, "satisfaction": sat, "notes": ""}


def ticket(tid, cid, dept, handler, type_, priority, category, created, first=None,
           verified=None, plan=None, resolved=None, fed_back=None, closed=None, sat=None):
    status = "closed" if closed else "resolved" if resolved else "in_progress"
    return {"ticket_id": tid, "customer_id": cid, "order_id": None, "department_id": dept,
            "handler_agent_id": handler, "type": type_, "channel": "phone",
            "priority": priority, "category": category, "description": "…",
            "created_at": created, "first_response_at": first, "verified_at": verified,
            "plan_at": plan, "resolved_at": resolved, "result_fed_back_at": fed_back,
            "closed_at": closed, "status": status, "satisfaction": sat}


def hand_built_frames() -> dict[str, pd.DataFrame]:
    return {
        "departments": frame("departments", [
            {"department_id": "D1", "name": "华东", "head_name": "王芳",
             "head_email": "d1@example.com"},
            {"department_id": "D2", "name": "华南", "head_name": "李强",
             "head_email": "d2@example.com"},
        ]),
        "agents": frame("agents", [
            {"agent_id": "A1", "name": "张伟", "email": "a1@example.com", "department_id": "D1",
             "role": "agent", "active": 1, "daily_capacity": None},
            {"agent_id": "A2", "name": "刘洋", "email": "a2@example.com", "department_id": "D2",
             "role": "agent", "active": 1, "daily_capacity": None},
        ]),
        "customers": frame("customers", [
            customer("C1", "D1", "A1", "2026-09-20"),  # 42 days at 1 Nov: no periodic visit
            customer("C2", "D2", "A2", "2026-09-20"),
            customer("C3", "D1", "A1", "2026-09-20", dnc=1),
            customer("C4", "D1", "A1", "2026-04-01"),  # periodic
            customer("C5", "D2", "A2", "2026-04-01"),  # periodic, superseded in June
        ]),
        "orders": frame("orders", [
            # early_use [27 Sep, 5 Oct]; stable_use [20 Oct, 27 Oct] (5 working days)
            {"order_id": "O1", "customer_id": "C1", "product": "P", "product_version": "1",
             "amount": 1.0, "ordered_at": "2026-09-01 10:00", "delivered_at": "2026-09-20 10:00"},
            # early_use [2 Oct, 10 Oct]; stable_use [25 Oct, 30 Oct]
            {"order_id": "O2", "customer_id": "C2", "product": "P", "product_version": "1",
             "amount": 1.0, "ordered_at": "2026-08-01 10:00", "delivered_at": "2026-09-25 10:00"},
            {"order_id": "O3", "customer_id": "C3", "product": "P", "product_version": "1",
             "amount": 1.0, "ordered_at": "2026-09-01 10:00", "delivered_at": "2026-09-20 10:00"},
        ]),
        "visits": frame("visits", [
            visit("V1", "C1", "A1", "early_use", "2026-10-03 10:00", "O1", sat=8),  # on time
            visit("V2", "C1", "A1", "stable_use", "2026-10-30 10:00", "O1", sat=6),  # late
            visit("V3", "C2", "A2", "early_use", "2026-10-09 10:00", "O2", sat=9),  # on time
            visit("V4", "C2", "A2", "stable_use", "2026-10-28 10:00", "O2"),  # on time
            # C4: coop anchor window [30 Jun, 14 Jul] met by V5; next [1 Oct, 20 Oct] never met
            visit("V5", "C4", "A1", "periodic", "2026-07-03 10:00", sat=7),
            # C5: another kind reached before the window ended restarts the clock:
            # window [30 Aug, 11 Sep] never met
            visit("V6", "C5", "A2", "early_use", "2026-06-01 10:00"),
            # post_resolution of T3 (closed 21 Oct): window [22 Oct, 26 Oct], met on 23 Oct;
            # T1's (closed 15 Oct, window [16 Oct, 20 Oct]) is never made
            visit("V7", "C2", "A2", "post_resolution", "2026-10-23 10:00", ticket="T3"),
        ]),
        "tickets": frame("tickets", [
            # all met: first_response 12 Oct 18:00, verification 13 Oct 18:00, resolution
            # 19 Oct 18:00, result_feedback 15 Oct 18:00; handling 48 h
            ticket("T1", "C1", "D1", "A1", "complaint", "general", "product_function",
                   "2026-10-12 10:00", first="2026-10-12 11:00", verified="2026-10-12 15:00",
                   resolved="2026-10-14 10:00", fed_back="2026-10-14 16:00",
                   closed="2026-10-15 10:00", sat=4),
            # resolution due 20 Oct 18:00, never: breached, 8 working days x 9 h = 4320 min
            ticket("T2", "C1", "D1", "A1", "consultation", "general", "product_function",
                   "2026-10-13 09:00", first="2026-10-13 10:00", verified="2026-10-13 12:00"),
            # first_response due 11:00, at 12:00: breached 60 min; plan, verification,
            # result_feedback met; handling 24 h
            ticket("T3", "C2", "D2", "A2", "repair", "urgent", "quality_failure",
                   "2026-10-20 09:00", first="2026-10-20 12:00", verified="2026-10-20 17:00",
                   plan="2026-10-20 20:00", resolved="2026-10-21 09:00",
                   fed_back="2026-10-21 10:00", closed="2026-10-21 12:00", sat=5),
            # raised in September; only result_feedback (due 13 Oct 18:00, met) falls in
            # October; resolved in October after 28 days = 672 h
            ticket("T4", "C2", "D2", "A2", "consultation", "general", "other",
                   "2026-09-14 09:00", first="2026-09-14 10:00", verified="2026-09-14 11:00",
                   resolved="2026-10-12 09:00", fed_back="2026-10-12 10:00",
                   closed="2026-10-12 11:00", sat=3),
        ]),
        "ticket_pauses": frame("ticket_pauses", []),
    }


def write_snapshot(folder, frames: dict[str, pd.DataFrame] | None = None,
                   manifest: dict | None = None):
    """`frames` (default: hand_built_frames()) as a stored snapshot in `folder`, as the
    extract writes one (a table per Parquet file; `manifest`: its snapshot.json)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (hand_built_frames() if frames is None else frames).items():
        rows.to_parquet(folder / f"{name}.parquet", index=False)
    if manifest is not None:
        (folder / "snapshot.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
