"""Hypothesis strategies for small hostile CRMs, written into a SQLite file of the canonical
schema (include/sql/crm/schema.sql) the way a careless integration writes them.

SQLite is dynamically typed: a value keeps its own storage class wherever the column's type
affinity cannot convert it, so text lands in INTEGER columns, numbers in TIMESTAMP columns and
bytes in VARCHAR columns. Two wrappers say how raw bytes are stored:
- AsText: TEXT storage class holding bytes that need not be UTF-8 (`CAST(? AS TEXT)`): lone
  surrogates, truncated sequences, 0xFF - what a CRM written by a non-UTF-8 client holds;
- Blob: BLOB storage class in a text column (sqlite3 hands it back as bytes).

What the CRM holds is read back after loading (`read_back`): the rows the pipeline is held
to, with the values as the extract's driver sees them.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from revisit.config.schema import (
    CATEGORIES,
    CHANNELS,
    PRIORITIES,
    ROLES,
    TABLES,
    TICKET_STAMPS,
    TICKET_STATUSES,
    TICKET_TYPES,
    TIERS,
    VISIT_KINDS,
    VISIT_METHODS,
    VISIT_OUTCOMES,
)
from revisit.io.db import CRM_SCHEMA, ddl_statements


@dataclass(frozen=True)
class AsText:
    """Bytes stored with the TEXT storage class (need not be valid UTF-8)."""

    data: bytes


@dataclass(frozen=True)
class Blob:
    """Bytes stored with the BLOB storage class."""

    data: bytes


@dataclass
class FuzzCrm:
    """Rows per table (column -> value; a missing column is NULL). loose: the tables have no
    primary keys (NULL and duplicated keys possible, as in a CRM without constraints)."""

    tables: dict[str, list[dict]] = field(default_factory=dict)
    loose: bool = False

    def __repr__(self) -> str:  # what hypothesis prints as the falsifying example
        rows = {n: r for n, r in self.tables.items() if r}
        return f"FuzzCrm(tables={rows!r}, loose={self.loose!r})"


# ================================================================= writing and reading back
_PRIMARY_KEY = re.compile(r",\s*PRIMARY KEY\s*\([^)]*\)", re.IGNORECASE)


def schema_statements(loose: bool) -> list[str]:
    statements = ddl_statements(CRM_SCHEMA, "sqlite")
    if loose:
        statements = [_PRIMARY_KEY.sub("", s).replace(" NOT NULL", "") for s in statements]
    return statements


def _param(value: object) -> tuple[str, object]:
    if isinstance(value, AsText):
        return "CAST(? AS TEXT)", value.data
    if isinstance(value, Blob):
        return "?", value.data
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "?", str(value)  # sqlite3 binds 64-bit integers only: as the digits
    return "?", value


def write_crm(crm: FuzzCrm, path: Path) -> None:
    """The CRM as a SQLite file; a row whose key the (non-loose) table already holds is
    skipped, as the CRM would have refused it (read_back says what the file holds)."""
    conn = sqlite3.connect(path)
    try:
        for statement in schema_statements(crm.loose):
            conn.execute(statement)
        for name, rows in crm.tables.items():
            cols = list(TABLES[name].columns)
            for row in rows:
                params = [_param(row.get(c)) for c in cols]
                conn.execute(f"INSERT OR IGNORE INTO {name} ({', '.join(cols)}) VALUES "
                             f"({', '.join(p for p, _ in params)})", [v for _, v in params])
        conn.commit()
    finally:
        conn.close()


def read_back(path: Path) -> dict[str, list[dict]]:
    """Every row the file holds, values as the extract reads them: text decoded as UTF-8
    (bad bytes as U+FFFD, as extract's lenient reading), BLOBs as Blob, numbers as numbers."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    out: dict[str, list[dict]] = {}
    try:
        for name, table in TABLES.items():
            cols = list(table.columns)
            select = ", ".join(f"typeof({c}), {c}" for c in cols)
            rows = []
            for found in conn.execute(f"SELECT {select} FROM {name}"):
                row = {}
                for i, col in enumerate(cols):
                    kind, value = found[2 * i], found[2 * i + 1]
                    if kind == b"text":
                        value = value.decode("utf-8", errors="replace")
                    elif kind == b"blob":
                        value = Blob(value)
                    row[col] = value
                rows.append(row)
            out[name] = rows
    finally:
        conn.close()
    return out


# ================================================================= strategies
D = dt.date(2026, 11, 20)

# Characters that break things: controls (kept and removed ones), RTL and bidi marks, BOM,
# odd spaces, combining marks, CJK, emoji (incl. ZWJ sequences), the replacement character.
HOSTILE_CHARS = ("\x00\x01\x07\x08\x0b\x1b\x1f\x7f\x85\x9f\t\n\r\u200b\u200d\u200e\u200f\u202a"
                 "\u202e\u2066\u2069\ufeff\u00a0\u3000\u0301\u0130\u0131\u00df\u212a\ufffd"
                 "中文客服\U0001f600\U0001f468\u200d\U0001f469\u05d0\u0627'\";=+-@,|/\\.")
BAD_BYTES = (b"\xed\xa0\x80", b"\xed\xb0\x80A", b"\xe4\xb8\xad\xff", b"\xff\xfe", b"\xc3",
             b"ok\x80", b"\x00\xff\x00")

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
hostile_text = st.text(st.sampled_from(HOSTILE_CHARS), min_size=1, max_size=20)
long_text = st.tuples(st.text(st.sampled_from(HOSTILE_CHARS + "abc"), min_size=1, max_size=4),
                      st.integers(100, 1500)).map(lambda t: (t[0] * t[1])[:3000])
raw_bytes = st.one_of(st.sampled_from(BAD_BYTES), st.binary(max_size=12))
raw = st.one_of(raw_bytes.map(AsText), raw_bytes.map(Blob))
numbers = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.integers(2**63, 2**70), st.floats(),
    st.sampled_from([0, -1, 2, 32767, 32768, 1.5, float("inf"), float("-inf"), float("nan")]),
)
number_text = st.sampled_from(["1e400", "NaN", "inf", "-0", "1,5", "٣", "５", "0x10", " 7 ",
                               "12abc", "99999999999999999999999"])

STAMP_TEXT = [
    "1900-01-01", "1900-01-01 00:00:00", "9999-12-31", "9999-12-31 23:59:59",
    "9999-12-31T23:00-05:00", "9999-12-31T23:59:59+14:00", "0001-01-01", "0001-01-01T00:00+08:00",
    "2026-11-05T02:00Z", "2026-11-19T16:00Z", "2026-11-19T15:59:59Z", "2026-11-19 23:59:59",
    "2026-11-20 00:00:00", "2026-11-20T00:00+08:00", "2026-11-19 10:00:00 UTC",
    "2026-11-19 10:00 CST", "2026-11-19T10:00:00+0530", "yesterday", "2026/11/05", "05/11/2026",
    "0000-00-00", "0000-00-00 00:00:00", "", "   ", "2026-13-45", "2026-02-30", "12345",
    "1990-04-15 02:30:00", "1991-09-15 00:30:00", "2026-11-19 24:00", "2262-04-12",
    "1677-09-21", "2026-11-18T08:00:00.123456789", "１９９０-01-01",
]


def _iso(stamp: dt.datetime, sep: str, offset: str) -> str:
    return stamp.isoformat(sep=sep) + offset


generated_stamps = st.builds(
    _iso,
    st.one_of(st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)),
              st.datetimes(dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 21))),
    st.sampled_from([" ", "T"]),
    st.sampled_from(["", "", "Z", "+08:00", "-05:00", "+14:00", "-12:00", "+0530", " UTC"]),
)
stamps = st.one_of(st.sampled_from(STAMP_TEXT), generated_stamps, numbers, any_text, raw,
                   st.none())
valid_stamps = st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2026, 11, 19, 23, 59, 59)).map(
    lambda s: s.strftime("%Y-%m-%d %H:%M:%S"))
valid_dates = st.dates(dt.date(2020, 1, 1), dt.date(2026, 11, 19)).map(dt.date.isoformat)

# Ids: a small pool per table, so that references resolve and keys collide (also in case
# only); then path-like, long, blank and otherwise hostile ids.
POOLS = {
    "departments": ("D1", "D2", "d1"),
    "agents": ("A1", "A2", "a1", "A3"),
    "customers": ("C1", "C2", "c1"),
    "orders": ("O1", "O2"),
    "tickets": ("T1", "T2", "t1"),
    "visits": ("V1", "V2", "v1"),
}
HOSTILE_IDS = ["../x", "../../x", "../../../../x", "x/../../y", "/etc/passwd", "A\\B", "CON",
               "nul", ".", "..", "", " ", " A1 ", "A1\x00", "A1\t", "A" * 300, "é" * 150,
               "A\u0301", "\u00c1", "İ", "ß", "SS", "\u202eA1", "=HYPERLINK(1)", "NULL", "a|b",
               "<row 1>", "A1\n"]


def ids(table: str) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(POOLS[table]), st.sampled_from(HOSTILE_IDS), any_text,
                     hostile_text, st.integers(-5, 5), raw, st.none())


ENUMS = {("agents", "role"): ROLES, ("customers", "tier"): TIERS,
         ("tickets", "type"): TICKET_TYPES, ("tickets", "channel"): CHANNELS,
         ("tickets", "priority"): PRIORITIES, ("tickets", "category"): CATEGORIES,
         ("tickets", "status"): TICKET_STATUSES, ("visits", "kind"): VISIT_KINDS,
         ("visits", "method"): VISIT_METHODS, ("visits", "outcome"): VISIT_OUTCOMES}
VALID_TEXT = {"phone": ("13812345678", "+86 138-1234-5679", "021-5555-6666"),
              "email": ("li.na@example.com",), "head_email": ("wang.fang@example.com",)}


def valid_value(table: str, col: str) -> st.SearchStrategy:
    """A value the gate should accept (for `col` on its own)."""
    t = TABLES[table]
    kind = t.columns[col]
    if col in t.references:
        return st.sampled_from(POOLS[t.references[col]])
    if col in t.key and kind == "id":
        return st.sampled_from(POOLS[table])
    if (table, col) in ENUMS:
        return st.sampled_from(ENUMS[(table, col)])
    if kind == "bool":
        return st.sampled_from([0, 1])
    if kind == "int":
        return st.integers(1, 5)
    if kind == "money":
        return st.floats(0, 1e6, allow_nan=False)
    if kind == "datetime":
        return valid_stamps
    if kind == "date":
        return valid_dates
    if col in VALID_TEXT:
        return st.sampled_from(VALID_TEXT[col])
    return st.sampled_from(["名字", "Name", "王芳"])


def hostile_value(table: str, col: str) -> st.SearchStrategy:
    t = TABLES[table]
    kind = t.columns[col]
    if kind == "id":
        pool = table if col in t.key else t.references.get(col)
        return ids(pool) if pool in POOLS else st.one_of(st.sampled_from(HOSTILE_IDS), any_text)
    if kind in ("datetime", "date"):
        return stamps
    if kind in ("int", "bool", "money"):
        return st.one_of(numbers, number_text, any_text, raw, st.none(),
                         st.sampled_from(STAMP_TEXT))
    enum = ENUMS.get((table, col), ())
    return st.one_of(st.sampled_from([*(e.upper() for e in enum), *(f" {e} " for e in enum),
                                      "unknown"]) if enum else any_text,
                     any_text, hostile_text, long_text, raw, numbers, st.none())


@st.composite
def rows_of(draw, table: str, max_rows: int) -> list[dict]:
    cols = list(TABLES[table].columns)
    rows = []
    # Departments and agents are rarely empty (the run then stops at the gate).
    rare_empty = table in ("departments", "agents")
    count = st.integers(0, 9).map(lambda i: 0 if i == 0 else 1 + i % max_rows) if rare_empty \
        else st.integers(0, max_rows)
    for _ in range(draw(count)):
        messy = draw(st.booleans())
        row = {}
        for col in cols:
            if messy and draw(st.booleans()):
                row[col] = draw(hostile_value(table, col))
            else:
                row[col] = draw(valid_value(table, col))
        if table == "tickets" and not messy:  # a consistent life: stamps in order
            stamps_ = sorted(draw(st.lists(valid_stamps, min_size=len(TICKET_STAMPS),
                                           max_size=len(TICKET_STAMPS))))
            upto = draw(st.integers(1, len(TICKET_STAMPS)))
            for i, name in enumerate(TICKET_STAMPS):
                row[name] = stamps_[i] if i < upto else None
            row["status"] = ("closed" if row["closed_at"] else "resolved" if row["resolved_at"]
                             else "in_progress" if row["first_response_at"] else "pending")
        rows.append(row)
    return rows


MAX_ROWS = {"departments": 3, "agents": 4, "customers": 4, "orders": 3, "tickets": 3,
            "ticket_pauses": 2, "visits": 3}


@st.composite
def crms(draw) -> FuzzCrm:
    return FuzzCrm({name: draw(rows_of(name, n)) for name, n in MAX_ROWS.items()},
                   loose=draw(st.booleans()))


# ================================================================= hand-written hostile CRMs
def base_tables() -> dict[str, list[dict]]:
    """A small consistent CRM: a department, a supervisor and an agent, a customer with an
    order, a complaint closed yesterday (post-resolution visit due), a pause and a visit."""
    return {
        "departments": [{"department_id": "D1", "name": "华东客服部", "head_name": "王芳",
                         "head_email": "wang.fang@example.com"}],
        "agents": [
            {"agent_id": "A1", "name": "李娜", "email": "li.na@example.com",
             "department_id": "D1", "role": "supervisor", "active": 1},
            {"agent_id": "A2", "name": "张伟", "email": "zhang.wei@example.com",
             "department_id": "D1", "role": "agent", "active": 1, "daily_capacity": 40},
        ],
        "customers": [
            {"customer_id": "C1", "name": "上海恒信科技有限公司", "phone": "13812345678",
             "tier": "standard", "owner_agent_id": "A2", "department_id": "D1",
             "cooperation_start_date": "2026-10-20", "do_not_call": 0,
             "created_at": "2026-10-20 10:00:00"},
        ],
        "orders": [{"order_id": "O1", "customer_id": "C1", "product": "X", "amount": 10.5,
                    "ordered_at": "2026-10-20 11:00:00", "delivered_at": "2026-10-25 11:00:00"}],
        "tickets": [
            {"ticket_id": "T1", "customer_id": "C1", "order_id": "O1", "department_id": "D1",
             "handler_agent_id": "A2", "type": "complaint", "channel": "phone",
             "priority": "general", "category": "other", "description": "设备无法启动",
             "created_at": "2026-11-16 09:30:00", "first_response_at": "2026-11-16 09:45:00",
             "verified_at": "2026-11-16 10:00:00", "plan_at": "2026-11-16 11:00:00",
             "resolved_at": "2026-11-18 10:00:00", "result_fed_back_at": "2026-11-18 15:00:00",
             "closed_at": "2026-11-19 10:00:00", "status": "closed", "satisfaction": 4},
        ],
        "ticket_pauses": [{"ticket_id": "T1", "paused_at": "2026-11-17 10:00:00",
                           "resumed_at": "2026-11-17 12:00:00"}],
        "visits": [{"visit_id": "V1", "customer_id": "C1", "agent_id": "A2", "kind": "welcome",
                    "visited_at": "2026-10-22 10:00:00", "method": "phone",
                    "outcome": "reached", "satisfaction": 9}],
    }


def hostile(loose: bool = False, **changes: list[dict] | dict) -> FuzzCrm:
    """base_tables with rows added (table=[rows]) or the first row updated (table={...})."""
    tables = base_tables()
    for name, change in changes.items():
        if isinstance(change, dict):
            tables[name][0] = {**tables[name][0], **change}
        else:
            tables[name] = tables[name] + change
    return FuzzCrm(tables, loose)


def agent(agent_id: object, **extra) -> dict:
    return {"agent_id": agent_id, "name": "某", "email": "x@example.com", "department_id": "D1",
            "role": "agent", "active": 1, **extra}


def customer(customer_id: object, owner: object = "A2", **extra) -> dict:
    return {"customer_id": customer_id, "name": "客户", "tier": "key", "owner_agent_id": owner,
            "department_id": "D1", "do_not_call": 0, "created_at": "2026-11-18 10:00:00",
            "cooperation_start_date": "2026-11-18", **extra}


HOSTILE_EXAMPLES = {
    "year 9999": hostile(
        customers=[customer("C9", created_at="9999-12-31 23:59:59"),
                   customer("C8", created_at="9999-12-31T23:00-05:00")],
        tickets={"closed_at": "9999-12-31 23:59:59"},
        visits=[{"visit_id": "V9", "customer_id": "C1", "agent_id": "A2", "kind": "periodic",
                 "visited_at": "9999-12-31", "outcome": "reached"}]),
    "1900-01-01": hostile(
        customers=[customer("C9", created_at="1900-01-01 00:00:00",
                            cooperation_start_date="1900-01-01")],
        tickets=[{**base_tables()["tickets"][0], "ticket_id": "T9",
                  "created_at": "1900-01-01", "first_response_at": "1900-01-01 00:05:00"}]),
    "case-only id collision": hostile(agents=[agent("a2")], customers=[customer("c1")]),
    "300-byte agent id": hostile(agents=[agent("A" * 300)],
                                 customers=[customer("C9", owner="A" * 300)]),
    "path-like ids": hostile(agents=[agent("../x"), agent("../../../../x")],
                             customers=[customer("C8", owner="../x"),
                                        customer("C9", owner="../../../../x")]),
    "invalid UTF-8 in TEXT": hostile(customers={"name": AsText(b"\xe4\xb8\xad\xffA")},
                                     agents=[agent(AsText(b"A\xed\xa0\x80"))]),
    "BLOB in a text column": hostile(agents=[agent("A9", name=Blob(b"\xff\x00name"))]),
    "BLOB id": hostile(customers=[customer(Blob(b"C9"))]),
    "offset stamp": hostile(customers=[customer("C9", created_at="2026-11-05T02:00Z")],
                            visits={"visited_at": "2026-11-19T16:00Z"}),
    "NULL and duplicate keys": hostile(loose=True, agents=[agent(None), agent("A2")],
                                       departments=[{"department_id": "D1", "name": "again"}]),
    "text in numbers": hostile(agents={"active": "yes", "daily_capacity": "1e400"},
                               orders={"amount": "inf"}, tickets={"satisfaction": 2**70}),
    "bool beyond int8": hostile(customers={"do_not_call": 128}, agents={"active": -129}),
    "bare CR in a quarantined value": hostile(customers={"phone": "138\r12345678x"}),
}

__all__ = ["HOSTILE_EXAMPLES", "AsText", "Blob", "FuzzCrm", "crms", "read_back", "write_crm"]
