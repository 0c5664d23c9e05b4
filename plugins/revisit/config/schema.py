"""The canonical CRM model of DESIGN.md as data: columns, types, keys, enums, references.

Extract, the quality gate and the demo generator all read this one description, so a column
added to the contract is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

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
