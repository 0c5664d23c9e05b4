"""The canonical CRM model of DESIGN.md as data: columns, types, keys, enums, references.

Extract, the quality gate and the demo generator all read this one description, so a column
added to the contract is added here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import pyarrow as pa

from revisit.config.paths import SQL_DIR

Kind = Literal["id", "text", "int", "bool", "money", "datetime", "date"]

ARROW_TYPES: dict[Kind, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "int": pa.int64(),
    "bool": pa.int8(),
    "money": pa.float64(),
    "datetime": pa.timestamp("us"),
    "date": pa.date32(),
}


def a_kind(kind: str) -> str:
    """The kind with its article, as messages about a value name it: 'a datetime', 'an int'."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Kind]
    key: tuple[str, ...]
    required: tuple[str, ...]
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # column -> table it points at
    stamp: str | None = None  # the timestamp that says when the row came to exist

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.columns.items()])

    def columns_of(self, *kinds: Kind) -> list[str]:
        return [name for name, kind in self.columns.items() if kind in kinds]


TICKET_TYPES = ("complaint", "consultation", "suggestion", "requirement", "repair", "other")
CHANNELS = ("phone", "email", "visit", "survey", "online", "third_party")
PRIORITIES = ("urgent", "important", "general")
CATEGORIES = ("product_function", "quality_failure", "service_process", "staff_attitude", "other")
TICKET_STATUSES = ("pending", "in_progress", "resolved", "closed")
VISIT_METHODS = ("phone", "email", "onsite", "survey", "sms", "im")
VISIT_OUTCOMES = ("reached", "no_answer", "refused", "rescheduled", "wrong_number")
VISIT_KINDS = (
    "welcome", "early_use", "stable_use", "long_term", "post_resolution", "periodic", "key_account",
    "new_product", "major_complaint", "product_upgrade",
)
TIERS = ("standard", "key")
ROLES = ("agent", "supervisor")

# Ticket timestamps in the order a ticket's life goes through them.
TICKET_STAMPS = (
    "created_at", "first_response_at", "verified_at", "plan_at", "resolved_at",
    "result_fed_back_at", "closed_at",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "departments",
            {"department_id": "id", "name": "text", "head_name": "text", "head_email": "text"},
            key=("department_id",),
            required=("department_id", "name"),
        ),
        Table(
            "agents",
            {"agent_id": "id", "name": "text", "email": "text", "department_id": "id",
             "role": "text", "active": "bool", "daily_capacity": "int"},
            key=("agent_id",),
            required=("agent_id", "name", "department_id", "role", "active"),
            enums={"role": ROLES},
            references={"department_id": "departments"},
        ),
        Table(
            "customers",
            {"customer_id": "id", "name": "text", "industry": "text", "contact_name": "text",
             "contact_title": "text", "phone": "text", "email": "text", "source": "text",
             "tier": "text", "owner_agent_id": "id", "department_id": "id",
             "cooperation_start_date": "date", "do_not_call": "bool", "created_at": "datetime",
             "updated_at": "datetime"},
            key=("customer_id",),
            required=("customer_id", "name", "tier", "owner_agent_id", "department_id",
                      "do_not_call", "created_at"),
            enums={"tier": TIERS},
            references={"owner_agent_id": "agents", "department_id": "departments"},
            stamp="created_at",
        ),
        Table(
            "orders",
            {"order_id": "id", "customer_id": "id", "product": "text", "product_version": "text",
             "amount": "money", "ordered_at": "datetime", "delivered_at": "datetime"},
            key=("order_id",),
            required=("order_id", "customer_id", "ordered_at"),
            references={"customer_id": "customers"},
            stamp="ordered_at",
        ),
        Table(
            "tickets",
            {"ticket_id": "id", "customer_id": "id", "order_id": "id", "department_id": "id",
             "handler_agent_id": "id", "type": "text", "channel": "text", "priority": "text",
             "category": "text", "description": "text",
             **dict.fromkeys(TICKET_STAMPS, "datetime"),
             "status": "text", "satisfaction": "int"},
            key=("ticket_id",),
            required=("ticket_id", "customer_id", "department_id", "type", "priority",
                      "created_at", "status"),
            enums={"type": TICKET_TYPES, "channel": CHANNELS, "priority": PRIORITIES,
                   "category": CATEGORIES, "status": TICKET_STATUSES},
            references={"customer_id": "customers", "order_id": "orders",
                        "department_id": "departments", "handler_agent_id": "agents"},
            stamp="created_at",
        ),
        Table(
            "ticket_pauses",
            {"ticket_id": "id", "paused_at": "datetime", "resumed_at": "datetime"},
            key=("ticket_id", "paused_at"),
            required=("ticket_id", "paused_at"),
            references={"ticket_id": "tickets"},
            stamp="paused_at",
        ),
        Table(
            "visits",
            {"visit_id": "id", "customer_id": "id", "agent_id": "id", "kind": "text",
             "ticket_id": "id", "order_id": "id", "visited_at": "datetime", "method": "text",
             "outcome": "text", "satisfaction": "int", "notes": "text"},
            key=("visit_id",),
            required=("visit_id", "customer_id", "agent_id", "kind", "visited_at", "outcome"),
            enums={"kind": VISIT_KINDS, "method": VISIT_METHODS, "outcome": VISIT_OUTCOMES},
            references={"customer_id": "customers", "agent_id": "agents",
                        "ticket_id": "tickets", "order_id": "orders"},
            stamp="visited_at",
        ),
    )
}


# ================================================================= what later stages need of ids
# An id that names output files (call_lists/D/<agent_id>.xlsx, sla/D/digest_<department_id>.csv,
# reports/M/<department_id>.pdf) is at most this many bytes in UTF-8. A file name may have
# 255 bytes (ext4, XFS, APFS, NTFS); the longest name Revisit writes around an id is the
# atomic-write temp file `.digest_<id>.csv.<pid>.<8 random>.tmp` (id + 36 bytes), and an
# object-storage key holds the whole path. 64 bytes leaves that room with a margin and holds
# 16 characters of any script (the results columns below hold 16).
FILE_NAME_BYTES = 64

# A spreadsheet cell holds at most 32,767 characters (Excel's limit; the XLSX writer would cut a
# longer value silently while the CSV kept it whole): the free CRM texts the agent's XLSX shows
# (its ids and phones are held far shorter by their own checks).
SPREADSHEET_CELL_CHARS = 32_767
IN_SPREADSHEET: tuple[tuple[str, str], ...] = (("customers", "name"),
                                               ("customers", "contact_name"))

# The results database's DDL: the one place its column widths are written. The quality gate
# reads them (results_column_widths) so that it never admits an id the results tables would
# reject on a server database (PostgreSQL, MySQL enforce VARCHAR(n) in characters).
RESULTS_DDL = SQL_DIR / "results" / "schema.sql"
# Where a CRM value is stored in the results database: (table, column) -> results columns.
# agents.agent_id also keys the agent's call-list e-mail in mail_delivery.department_id.
STORED_IN_RESULTS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("departments", "department_id"): (("sla_status", "department_id"),
                                       ("mail_delivery", "department_id"),
                                       ("kpis", "department_id"),
                                       ("agent_kpis", "department_id")),
    ("agents", "agent_id"): (("call_list", "agent_id"), ("mail_delivery", "department_id"),
                             ("agent_kpis", "agent_id")),
    ("customers", "customer_id"): (("call_list", "customer_id"), ("sla_status", "customer_id")),
    ("orders", "order_id"): (("call_list", "order_id"),),
    ("tickets", "ticket_id"): (("sla_status", "ticket_id"), ("call_list", "ticket_id")),
}

_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_VARCHAR = re.compile(r"^\s*(\w+)\s+VARCHAR\s*\(\s*(\d+)\s*\)", re.IGNORECASE)


@cache
def results_column_widths(path: Path = RESULTS_DDL) -> dict[tuple[str, str], int]:
    """Every VARCHAR(n) column of the results DDL: (table, column) -> n characters."""
    widths: dict[tuple[str, str], int] = {}
    table = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("--", 1)[0]
        if found := _CREATE.match(line):
            table = found.group(1).lower()
        elif table and (found := _VARCHAR.match(line)):
            widths[(table, found.group(1).lower())] = int(found.group(2))
    return widths


def stored_widths(path: Path = RESULTS_DDL) -> dict[tuple[str, str], tuple[int, str]]:
    """CRM columns stored in the results database: (table, column) -> (the narrowest width
    they are stored in, 'results_table.column' of that width)."""
    widths = results_column_widths(path)
    out = {}
    for source, targets in STORED_IN_RESULTS.items():
        missing = [f"{t}.{c}" for t, c in targets if (t, c) not in widths]
        if missing:
            raise ValueError(f"{path}: no VARCHAR column {', '.join(missing)} (where "
                             f"{source[0]}.{source[1]} is stored)")
        t, c = min(targets, key=widths.__getitem__)  # the first of the narrowest
        out[source] = (widths[(t, c)], f"{t}.{c}")
    return out


def row_key_width(path: Path = RESULTS_DDL) -> int:
    """The width of quality_issues.row_key: a quarantined row's key as the results hold it."""
    return results_column_widths(path)[("quality_issues", "row_key")]


def reason_width(path: Path = RESULTS_DDL) -> int:
    """The width of quality_issues.reason."""
    return results_column_widths(path)[("quality_issues", "reason")]
