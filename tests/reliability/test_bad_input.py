"""Bad input through the real daily stages: a demo CRM (SQLite) corrupted in 40-odd ways runs
extract -> quality gate -> call lists -> SLA. Every bad row is quarantined with a readable
reason naming table, column and offending id or value; the run goes on; nothing else is lost
(every other row reaches the clean data, valid but oddly written values survive normalised into
the call lists and the XLSX). A table failing beyond policy quality.max_failure_share stops the
run before any list, and without a digest.

Decisions on what counts as bad (the rest of the suite holds the pipeline to them):
- "future": the run sees the CRM as of D 00:00. A row stamped after the cut-off does not exist
  yet (not quarantined, not listed); a later stamp on an existing row (resolved_at after the
  cut-off) has not happened yet and is blanked, the status following the remaining stamps.
- phones: spaces, dashes, dots, brackets, full-width digits, +86 / 0086 / 86 and another
  country's +code are formatting: the row is kept and the number written as dialled
  (13812345678, +14155552671). Letters, an extension, too few or too many digits: quarantined.
- names: emoji, mixed scripts and 10 kB texts are data and survive intact. Control characters
  (NUL, BEL) are no content: removed at extract, the row kept. Text that is not valid UTF-8 is
  read with U+FFFD in place of the bad bytes.
- blank text or MySQL's zero date in a timestamp or number column means "no value" (a missing
  required value is then quarantined as missing); a bare number in a timestamp column, an
  impossible date, an unknown zone name or 'inf' as an amount do not parse: quarantined.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from revisit.config.policy import load_policy
from revisit.config.translations import load_translations
from revisit.io.extract import ExtractError, extract_snapshot
from revisit.quality.gate import QualityStop
from tests.crm_fixtures import minimal_rows, sqlite_crm
from tests.e2e.conftest import mail_sink, make_sandbox, smtp_connection
from tests.reliability.conftest import (
    Crm,
    D,
    copy_crm,
    read_csv,
    run_daily,
    with_max_failure_share,
)

__all__ = ["mail_sink"]  # the e2e fixture, used here as is

BASE_CUSTOMER = "C0000001"
CLOSED_YESTERDAY = {  # a valid closed complaint: post_resolution is due on D
    "type": "complaint", "channel": "phone", "priority": "general", "category": "other",
    "order_id": None, "description": "设备无法启动",
    "created_at": "2026-11-16 09:30:00", "first_response_at": "2026-11-16 09:45:00",
    "verified_at": "2026-11-16 10:00:00", "plan_at": "2026-11-16 11:00:00",
    "resolved_at": "2026-11-18 10:00:00", "result_fed_back_at": "2026-11-18 15:00:00",
    "closed_at": "2026-11-19 10:00:00", "status": "closed", "satisfaction": 4,
}


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: the row it is in and what the quarantine must say about it."""

    kind: str
    table: str
    key: str  # row_key in quarantine.csv ('<row' for a row without a usable key)
    check: str
    column: str
    reason: str  # a part of the reason


# Valid but oddly written phones -> the number as dialled.
ODD_PHONES = {
    "CV01": ("138 1234 5678", "13812345678"),
    "CV02": ("+86 138-1234-5679", "13812345679"),
    "CV03": ("(0755) 8888-6666", "075588886666"),
    "CV04": ("１３８１２３４５６８０", "13812345680"),
    "CV05": ("0086 138 1234 5681", "13812345681"),
    "CV06": ("138.1234.5682", "13812345682"),
    "CV07": ("  13812345683\t", "13812345683"),
    "CV08": ("＋８６　１３８－１２３４－５６８４", "13812345684"),
    "CV09": ("+1 (415) 555-2671", "+14155552671"),
    "CV10": ("8613812345685", "13812345685"),
}
EMOJI_NAME = "😀 Ünïcödé 测试 Ltd — مرحبا Ωμέγα"
EMOJI_CONTACT = "Zoë 王 🚀"
LONG_DESCRIPTION = ("客户反馈设备在高温环境下间歇性停机。" * 600)[:10_240]  # 10 kB of text
# Valid customers with odd names (id -> (name as written, name as it must come out)).
ODD_NAMES = {
    "CV20": (EMOJI_NAME, EMOJI_NAME),
    "CV21": ("Null\x00Byte 公司\x07", "NullByte 公司"),
    "CV22": (None, "中\ufffdA 有限公司"),  # written as invalid UTF-8 bytes below
}


def _corrupt(crm: Crm) -> tuple[list[Bad], dict[str, list[str]]]:
    """Write the bad rows (and the valid odd ones); returns the bad kinds and, per table, the
    keys that must be quarantined only because a row they point at was."""
    bad: list[Bad] = []
    base = crm.row("customers", BASE_CUSTOMER)
    customer = {**base, "tier": "standard", "do_not_call": 0}

    def add_customer(cid: str, what: str, /, check: str, column: str, reason: str, **changes):
        crm.insert("customers", {**customer, "customer_id": cid, **changes})
        bad.append(Bad(what, "customers", cid, check, column, reason))

    add_customer("CX01", "missing name", "required", "name", "customers.name is missing",
                 name=None)
    add_customer("CX02", "empty name", "blank", "name", "customers.name is blank", name="")
    add_customer("CX03", "whitespace-only name", "blank", "name", "customers.name is blank",
                 name=" \t\u3000 ")
    add_customer("CX04", "unknown tier", "enum", "tier",
                 "customers.tier 'gold' is not one of standard, key", tier="gold")
    add_customer("CX05", "flag not 0/1", "boolean", "do_not_call",
                 "customers.do_not_call 2 is not 0 or 1", do_not_call=2)
    add_customer("CX06", "orphan owner agent", "reference", "owner_agent_id",
                 "customers.owner_agent_id A9999 does not exist in agents",
                 owner_agent_id="A9999")
    add_customer("CX07", "orphan department", "reference", "department_id",
                 "customers.department_id D99 does not exist in departments",
                 department_id="D99")
    add_customer("CX08", "unparseable timestamp", "parse_error", "created_at",
                 "customers.created_at: not a datetime (yesterday)", created_at="yesterday")
    add_customer("CX09", "impossible date", "parse_error", "cooperation_start_date",
                 "customers.cooperation_start_date: not a date (2026-02-30)",
                 cooperation_start_date="2026-02-30")
    add_customer("CX10", "phone that is no number", "phone", "phone",
                 "customers.phone is not a plausible phone number (7 to 15 digits",
                 phone="n/a")
    add_customer("CX11", "phone too short", "phone", "phone",
                 "customers.phone is not a plausible phone number", phone="12345")
    add_customer("CX12", "phone with an extension", "phone", "phone",
                 "customers.phone is not a plausible phone number", phone="138 1234 5678 转 12")
    add_customer("CX13", "phone with letters", "phone", "phone",
                 "customers.phone is not a plausible phone number", phone="138-CALL-NOW")
    add_customer("CX14", "updated before created", "timestamp_order", "updated_at",
                 "customers.updated_at 2020-01-01T09:00:00+08:00 is before created_at",
                 updated_at="2020-01-01 09:00:00")
    add_customer("CX15", "missing required flag", "required", "do_not_call",
                 "customers.do_not_call is missing", do_not_call=None)
    add_customer("CX16", "number in a timestamp column", "parse_error", "created_at",
                 "customers.created_at: not a datetime (1700000000)", created_at=1700000000)
    add_customer("CX17", "unknown time zone name", "parse_error", "created_at",
                 "customers.created_at: not a datetime (2024-03-15 10:00 CST)",
                 created_at="2024-03-15 10:00 CST")
    for _ in range(2):  # both copies of a duplicated key go
        crm.insert("customers", {**customer, "customer_id": "CX18"})
    bad.append(Bad("duplicate id", "customers", "CX18", "unique_key", "customer_id",
                   "customers.customer_id CX18 occurs in more than one row"))
    crm.insert("customers", {**customer, "customer_id": None})
    bad.append(Bad("missing id", "customers", "<row", "required", "customer_id",
                   "customers.customer_id is missing"))
    crm.insert("customers", {**customer, "customer_id": "   "})
    bad.append(Bad("whitespace-only id", "customers", "<row", "blank", "customer_id",
                   "customers.customer_id is blank"))

    # Orders: new rows copied from one of the base customer's orders (or a made-up one).
    order = {"order_id": None, "customer_id": BASE_CUSTOMER, "product": "云ERP",
             "product_version": "5.2", "amount": 100.0, "ordered_at": "2025-01-10 10:00:00",
             "delivered_at": "2025-01-12 10:00:00"}

    def add_order(oid: str, what: str, /, check: str, column: str, reason: str, **changes):
        crm.insert("orders", {**order, "order_id": oid, **changes})
        bad.append(Bad(what, "orders", oid, check, column, reason))

    add_order("OX01", "orphan customer", "reference", "customer_id",
              "orders.customer_id C9999999 does not exist in customers", customer_id="C9999999")
    add_order("OX02", "negative amount", "range", "amount", "orders.amount -5.0 is negative",
              amount=-5)
    add_order("OX03", "unparseable amount", "parse_error", "amount",
              "orders.amount: not a money (abc)", amount="abc")
    add_order("OX04", "infinite amount", "parse_error", "amount",
              "orders.amount: not a money (inf)", amount="inf")
    add_order("OX05", "delivered before ordered", "timestamp_order", "delivered_at",
              "orders.delivered_at 2025-01-01T10:00:00+08:00 is before ordered_at",
              delivered_at="2025-01-01 10:00:00")
    add_order("OX06", "missing order time", "required", "ordered_at",
              "orders.ordered_at is missing", ordered_at=None)
    add_order("OX07", "blank order time", "required", "ordered_at",
              "orders.ordered_at is missing", ordered_at="  ")

    # Tickets of the base customer.
    department = customer["department_id"]
    ticket = {**CLOSED_YESTERDAY, "customer_id": BASE_CUSTOMER, "department_id": department,
              "handler_agent_id": customer["owner_agent_id"]}

    def add_ticket(tid: str, what: str, /, check: str, column: str, reason: str, **changes):
        crm.insert("tickets", {**ticket, "ticket_id": tid, **changes})
        bad.append(Bad(what, "tickets", tid, check, column, reason))

    add_ticket("TX01", "unknown priority", "enum", "priority",
               "tickets.priority 'critical' is not one of urgent, important, general",
               priority="critical")
    add_ticket("TX02", "unknown type", "enum", "type", "tickets.type 'praise' is not one of",
               type="praise")
    add_ticket("TX03", "unknown status", "enum", "status", "tickets.status 'open' is not one of",
               status="open")
    add_ticket("TX04", "unknown channel", "enum", "channel", "tickets.channel 'fax' is not one",
               channel="fax")
    add_ticket("TX05", "unknown category", "enum", "category",
               "tickets.category 'misc' is not one of", category="misc")
    add_ticket("TX06", "rating out of range", "range", "satisfaction",
               "tickets.satisfaction 7 is not between 1 and 5", satisfaction=7)
    add_ticket("TX07", "fractional rating", "parse_error", "satisfaction",
               "tickets.satisfaction: not an int (3.5)", satisfaction=3.5)
    add_ticket("TX08", "response before creation", "timestamp_order", "first_response_at",
               "tickets.first_response_at 2026-11-15T09:00:00+08:00 is before created_at",
               first_response_at="2026-11-15 09:00:00")
    add_ticket("TX09", "closed before resolved", "timestamp_order", "closed_at",
               "tickets.closed_at 2026-11-17T10:00:00+08:00 is before resolved_at",
               closed_at="2026-11-17 10:00:00")
    add_ticket("TX10", "orphan order", "reference", "order_id",
               "tickets.order_id O_NONE does not exist in orders", order_id="O_NONE")
    add_ticket("TX11", "orphan handler", "reference", "handler_agent_id",
               "tickets.handler_agent_id A9999 does not exist in agents",
               handler_agent_id="A9999")
    add_ticket("TX12", "orphan department", "reference", "department_id",
               "tickets.department_id D99 does not exist in departments", department_id="D99")
    add_ticket("TX14", "orphan customer", "reference", "customer_id",
               "tickets.customer_id C9999999 does not exist in customers",
               customer_id="C9999999")
    add_ticket("TX13", "unparseable timestamp", "parse_error", "plan_at",
               "tickets.plan_at: not a datetime (2026-11-16 25:00)",
               plan_at="2026-11-16 25:00")

    # Pauses of a valid ticket (TV01 below).
    pause = {"ticket_id": "TV01", "paused_at": "2026-11-16 12:00:00",
             "resumed_at": "2026-11-16 13:00:00"}
    crm.insert("ticket_pauses", {**pause, "ticket_id": "T_NONE"})
    bad.append(Bad("orphan ticket", "ticket_pauses", "T_NONE|2026-11-16T12:00:00",
                   "reference", "ticket_id",
                   "ticket_pauses.ticket_id T_NONE does not exist in tickets"))
    crm.insert("ticket_pauses", {**pause, "paused_at": "2026-11-16 14:00:00",
                                 "resumed_at": "2026-11-16 13:30:00"})
    bad.append(Bad("resumed before paused", "ticket_pauses", "TV01|2026-11-16T14:00:00",
                   "timestamp_order", "resumed_at",
                   "ticket_pauses.resumed_at 2026-11-16T13:30:00+08:00 is before paused_at"))
    for _ in range(2):
        crm.insert("ticket_pauses", {**pause, "paused_at": "2026-11-17 10:00:00",
                                     "resumed_at": "2026-11-17 11:00:00"})
    bad.append(Bad("duplicate compound key", "ticket_pauses", "TV01|2026-11-17T10:00:00",
                   "unique_key", "ticket_id, paused_at",
                   "ticket_pauses key (ticket_id, paused_at) = "
                   "TV01|2026-11-17T10:00:00+08:00 occurs in more than one row"))

    visit = {"customer_id": BASE_CUSTOMER, "agent_id": customer["owner_agent_id"],
             "kind": "periodic", "ticket_id": None, "order_id": None,
             "visited_at": "2026-10-10 10:00:00", "method": "phone", "outcome": "reached",
             "satisfaction": 8, "notes": "ok"}

    def add_visit(vid: str, what: str, /, check: str, column: str, reason: str, **changes):
        crm.insert("visits", {**visit, "visit_id": vid, **changes})
        bad.append(Bad(what, "visits", vid, check, column, reason))

    add_visit("VX01", "unknown visit kind", "enum", "kind",
              "visits.kind 'birthday' is not one of", kind="birthday")
    add_visit("VX02", "unknown outcome", "enum", "outcome",
              "visits.outcome 'maybe' is not one of", outcome="maybe")
    add_visit("VX03", "unknown method", "enum", "method",
              "visits.method 'telepathy' is not one of", method="telepathy")
    add_visit("VX04", "rating out of range", "range", "satisfaction",
              "visits.satisfaction 11 is not between 1 and 10", satisfaction=11)
    add_visit("VX05", "orphan agent", "reference", "agent_id",
              "visits.agent_id A9999 does not exist in agents", agent_id="A9999")
    add_visit("VX06", "orphan ticket", "reference", "ticket_id",
              "visits.ticket_id T_NONE does not exist in tickets", ticket_id="T_NONE")
    add_visit("VX07", "orphan order", "reference", "order_id",
              "visits.order_id O_NONE does not exist in orders", order_id="O_NONE")
    add_visit("VX08", "impossible month", "parse_error", "visited_at",
              "visits.visited_at: not a datetime (2026-13-01 10:00)",
              visited_at="2026-13-01 10:00")
    add_visit("VX09", "missing customer", "required", "customer_id",
              "visits.customer_id is missing", customer_id=None)
    add_visit("VX11", "orphan customer", "reference", "customer_id",
              "visits.customer_id C9999999 does not exist in customers", customer_id="C9999999")
    for _ in range(2):
        crm.insert("visits", {**visit, "visit_id": "VX10"})
    bad.append(Bad("duplicate id", "visits", "VX10", "unique_key", "visit_id",
                   "visits.visit_id VX10 occurs in more than one row"))

    # Children of bad rows: quarantined because their parent was (the clean data stays
    # referentially closed).
    crm.insert("orders", {**order, "order_id": "OX90", "customer_id": "CX04"})
    crm.insert("tickets", {**ticket, "ticket_id": "TX90", "customer_id": "CX04"})
    crm.insert("tickets", {**ticket, "ticket_id": "TX91", "order_id": "OX02"})
    crm.insert("visits", {**visit, "visit_id": "VX90", "customer_id": "CX04"})
    crm.insert("visits", {**visit, "visit_id": "VX91", "ticket_id": "TX01"})
    cascaded = {"orders": ["OX90"], "tickets": ["TX90", "TX91"], "visits": ["VX90", "VX91"]}
    return bad, cascaded


def _add_valid(crm: Crm) -> None:
    """Customers whose data is odd but valid, each with a complaint closed yesterday (so each
    is due a post_resolution call on D), and other valid oddities."""
    base = crm.row("customers", BASE_CUSTOMER)
    customer = {**base, "tier": "standard", "do_not_call": 0}
    ticket = {**CLOSED_YESTERDAY, "department_id": base["department_id"],
              "handler_agent_id": base["owner_agent_id"]}
    valid = {cid: {"phone": phone} for cid, (phone, _) in ODD_PHONES.items()}
    valid |= {cid: {"name": name} for cid, (name, _) in ODD_NAMES.items()}
    valid["CV20"]["contact_name"] = EMOJI_CONTACT
    valid["CV21"]["contact_name"] = "A\x00B"
    valid["CV23"] = {"customer_id": " CV23 "}  # padded id: the same customer once stripped
    for n, (cid, changes) in enumerate(sorted(valid.items()), start=1):
        crm.insert("customers", {**customer, "customer_id": cid, **changes})
        crm.insert("tickets", {**ticket, "ticket_id": f"TV{n:02d}", "customer_id": cid})
    crm.execute("UPDATE customers SET name = CAST(? AS TEXT) WHERE customer_id = 'CV22'",
                (b"\xe4\xb8\xad\xff\x41 \xe6\x9c\x89\xe9\x99\x90\xe5\x85\xac\xe5\x8f\xb8",))
    crm.execute("UPDATE tickets SET description = ? WHERE ticket_id = 'TV01'",
                (LONG_DESCRIPTION,))
    crm.execute("UPDATE tickets SET closed_at = '2026-11-19T02:00:00Z' "  # 10:00 in Shanghai
                "WHERE ticket_id = 'TV02'")
    crm.insert("ticket_pauses", {"ticket_id": "TV01", "paused_at": "2026-11-16 12:00:00",
                                 "resumed_at": "2026-11-16 13:00:00"})
    # "No value" written as blank text or MySQL's zero date: an undelivered order.
    order = {"customer_id": BASE_CUSTOMER, "product": "云ERP", "product_version": "5.2",
             "amount": 100.0, "ordered_at": "2025-01-10 10:00:00"}
    crm.insert("orders", {**order, "order_id": "OV01", "delivered_at": ""})
    crm.insert("orders", {**order, "order_id": "OV02", "delivered_at": "0000-00-00 00:00:00"})
    crm.insert("orders", {**order, "order_id": "OV03", "customer_id": "CV23 "})
    # The future: a ticket resolved after the cut-off is not resolved on D; a visit and a
    # customer stamped after it do not exist yet.
    crm.insert("tickets", {**ticket, "ticket_id": "TV90", "customer_id": BASE_CUSTOMER,
                           "resolved_at": "2026-11-25 10:00:00", "result_fed_back_at": None,
                           "closed_at": None, "status": "resolved", "satisfaction": None})
    crm.insert("visits", {"visit_id": "VV90", "customer_id": "CV01", "agent_id":
                          base["owner_agent_id"], "kind": "post_resolution", "ticket_id": "TV01",
                          "order_id": None, "visited_at": "2026-11-21 10:00:00",
                          "method": "phone", "outcome": "reached", "satisfaction": 9,
                          "notes": "future"})
    crm.insert("customers", {**customer, "customer_id": "CV99",
                             "created_at": "2026-12-01 09:00:00"})


@pytest.fixture(scope="module")
def dirty(demo_crm_file, tmp_path_factory, policy, calendar):
    folder = tmp_path_factory.mktemp("dirty")
    crm = Crm(copy_crm(demo_crm_file, folder))
    bad, cascaded = _corrupt(crm)
    _add_valid(crm)
    crm.close()
    out = run_daily(folder / "crm.sqlite", folder / "output", policy, calendar)
    return bad, cascaded, out


def test_the_run_goes_on_under_the_default_policy(dirty):
    bad, _, out = dirty
    assert len({(b.table, b.kind) for b in bad}) >= 30
    assert out.stopped is None, out.stopped
    assert out.lists["rows"] > 0 and out.sla["rows"] > 0
    summary = out.summary.set_index("table")
    assert (summary["passed"] == "True").all(), summary


def test_every_bad_row_is_quarantined_with_a_readable_reason(dirty):
    bad, _, out = dirty
    q = out.quarantine
    missing = []
    for b in bad:
        rows = q[(q["table"] == b.table) & q["row_key"].str.startswith(b.key)
                 & (q["check"] == b.check) & (q["column"] == b.column)]
        if rows.empty or not rows["reason"].str.contains(b.reason, regex=False).any():
            missing.append(f"{b.table} {b.kind}: {b.check} on {b.column} ~ {b.reason!r}")
    assert not missing, "\n".join(missing) + "\n" + q.to_string()
    # Readable: every reason names its table and column, none shows a raw null.
    for row in q.itertuples():
        assert row.reason.startswith((f"{row.table}.", f"{row.table} ")), row.reason
        assert row.column.split(", ")[0] in row.reason, row.reason
        assert not re.search(r"\b(nan|NaT|<NA>|None)\b", row.reason), row.reason


def test_both_copies_of_a_duplicated_key_are_quarantined(dirty):
    _, _, out = dirty
    q = out.quarantine
    assert len(q[(q["row_key"] == "CX18") & (q["check"] == "unique_key")]) == 2
    assert len(q[(q["row_key"] == "VX10") & (q["check"] == "unique_key")]) == 2


def test_children_of_a_quarantined_row_go_with_it_and_say_why(dirty):
    _, cascaded, out = dirty
    q = out.quarantine
    for table, keys in cascaded.items():
        for key in keys:
            rows = q[(q["table"] == table) & (q["row_key"] == key)]
            assert "parent_quarantined" in set(rows["check"]), (table, key)
            assert rows["reason"].str.contains("points at a quarantined row of").any()


def test_nothing_else_is_lost(dirty):
    """Each table: clean rows = snapshot rows minus exactly the bad rows and their children."""
    bad, cascaded, out = dirty
    q = out.quarantine
    summary = out.summary.set_index("table")
    for table in ("customers", "orders", "tickets", "ticket_pauses", "visits"):
        snap, clean = out.snapshot(table), out.clean(table)
        removed = q.loc[q["table"] == table, "row_key"]
        expected = {b.key for b in bad if b.table == table} | set(cascaded.get(table, []))
        assert set(removed) - expected <= {k for k in removed if k.startswith("<row")}, table
        assert {k for k in expected if not k.startswith("<")} <= set(removed), table
        duplicated = sum(1 for b in bad if b.table == table and b.check == "unique_key")
        removed_rows = removed.nunique() + duplicated  # each duplicate counted in both copies
        assert len(clean) == len(snap) - removed_rows, table
        assert int(summary.loc[table, "clean_rows"]) == len(clean)
        assert int(summary.loc[table, "rows"]) == len(snap) == out.counts[table]
    for table in ("departments", "agents"):
        assert len(out.clean(table)) == len(out.snapshot(table)), table
    # Every demo row (not written by this test) is clean.
    demo = out.snapshot("customers")["customer_id"].str.match(r"^C\d{7}$")
    assert set(out.snapshot("customers").loc[demo, "customer_id"]) <= \
        set(out.clean("customers")["customer_id"])


def test_oddly_written_phones_are_kept_normalised_on_the_call_list(dirty):
    _, _, out = dirty
    lists = out.call_lists().set_index("customer_id")
    for cid, (_, dialled) in ODD_PHONES.items():
        assert cid in lists.index, f"{cid} was lost"
        assert lists.loc[cid, "phone"] == dialled, (cid, lists.loc[cid, "phone"])
        assert "post_resolution" in lists.loc[cid, "reasons"]
    assert "CV23" in lists.index  # the padded id is the same customer


def test_odd_names_survive_intact_into_csv_and_xlsx(dirty):
    _, _, out = dirty
    lists = out.call_lists().set_index("customer_id")
    for cid, (_, shown) in ODD_NAMES.items():
        assert lists.loc[cid, "customer_name"] == shown, cid
    assert lists.loc["CV20", "contact_name"] == EMOJI_CONTACT
    assert lists.loc["CV21", "contact_name"] == "AB"
    agent = lists.loc["CV20", "agent_id"]
    sheet = load_workbook(out.parts.call_lists / f"{agent}.xlsx").active
    names = load_translations(load_policy().report.locale)["call_list"]["sheet"]["columns"]
    header = [c.value.replace("\n", "") for c in sheet[1]]  # a narrow header may wrap
    column = {code: header.index(shown) for code, shown in names.items()}
    by_id = {row[column["customer_id"]]: row for row in sheet.iter_rows(min_row=2,
                                                                        values_only=True)}
    assert by_id["CV20"][column["customer_name"]] == EMOJI_NAME
    assert by_id["CV20"][column["contact_name"]] == EMOJI_CONTACT
    agent21 = lists.loc["CV21", "agent_id"]
    sheet = load_workbook(out.parts.call_lists / f"{agent21}.xlsx").active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert "NullByte 公司" in values
    assert not any("_x00" in v or "\x00" in v for v in values)  # no escaped control chars


def test_a_10kb_description_and_an_offset_timestamp_are_valid(dirty):
    _, _, out = dirty
    tickets = out.clean("tickets").set_index("ticket_id")
    assert tickets.loc["TV01", "description"] == LONG_DESCRIPTION
    assert tickets.loc["TV02", "closed_at"] == pd.Timestamp("2026-11-19 10:00")
    sla = read_csv(out.parts.sla / "sla_status.csv")
    assert {"TV01", "TV02"} <= set(sla["ticket_id"])
    assert not set(sla["ticket_id"]) & {b.key for b in dirty[0] if b.table == "tickets"}


def test_blank_and_zero_dates_mean_no_value(dirty):
    _, _, out = dirty
    orders = out.clean("orders").set_index("order_id")
    assert orders.loc[["OV01", "OV02"], "delivered_at"].isna().all()
    assert orders.loc["OV03", "customer_id"] == "CV23"


def test_future_stamps_have_not_happened_yet(dirty):
    _, _, out = dirty
    q = out.quarantine
    assert not q["row_key"].isin(["TV90", "VV90", "CV99"]).any()
    tickets = out.clean("tickets").set_index("ticket_id")
    assert pd.isna(tickets.loc["TV90", "resolved_at"])  # resolved after the cut-off: blanked
    assert tickets.loc["TV90", "status"] == "in_progress"
    assert "VV90" not in set(out.snapshot("visits")["visit_id"])
    assert "CV99" not in set(out.snapshot("customers")["customer_id"])
    sla = read_csv(out.parts.sla / "sla_status.csv")
    resolution = sla[(sla["ticket_id"] == "TV90") & (sla["metric"] == "resolution")]
    assert resolution["achieved_at"].tolist() == [""]
    # The reached visit dated after the cut-off has not happened: CV01 is still to be called.
    assert "CV01" in set(out.call_lists()["customer_id"])


def test_no_bad_row_reaches_a_call_list_or_the_sla(dirty):
    bad, cascaded, out = dirty
    lists = out.call_lists()
    bad_customers = {b.key for b in bad if b.table == "customers"}
    assert not bad_customers & set(lists["customer_id"])
    sla = read_csv(out.parts.sla / "sla_status.csv")
    bad_tickets = {b.key for b in bad if b.table == "tickets"} | set(cascaded["tickets"])
    assert not bad_tickets & set(sla["ticket_id"])


def test_the_readable_summary_names_checks_but_no_personal_data(dirty):
    _, _, out = dirty
    for name in ("summary.md", "summary.html"):
        text = (out.parts.quality / name).read_text(encoding="utf-8")
        for check in ("parse_error", "unique_key", "reference", "parent_quarantined", "enum",
                      "timestamp_order", "phone", "blank", "required", "range"):
            assert check in text, (name, check)
        for personal in ("138 1234 5678 转 12", "138-CALL-NOW", "yesterday", "n/a"):
            assert personal not in text, (name, personal)


def test_replaced_text_is_counted_in_the_readable_summary(dirty):
    """Invalid UTF-8 (CV22) and control characters (CV21) are read, never silently: the
    summary counts them per table and column, naming the rows by id only."""
    _, _, out = dirty
    md = (out.parts.quality / "summary.md").read_text(encoding="utf-8")
    assert "| customers | name | bytes that are not UTF-8 read as U+FFFD | 1 | `CV22` |" in md
    assert "| customers | name | control characters removed | 1 | `CV21` |" in md
    assert "| customers | contact_name | control characters removed | 1 | `CV21` |" in md
    assert "NullByte" not in md and EMOJI_CONTACT not in md


# ----------------------------------------------------------------- reference tables, stop
@pytest.fixture(scope="module")
def bad_reference_tables(demo_crm_file, tmp_path_factory):
    """Departments and agents are small: a handful of bad rows is a large share of them."""
    folder = tmp_path_factory.mktemp("bad_reference")
    crm = Crm(copy_crm(demo_crm_file, folder))
    dept = crm.row("departments", "D01")
    agent = crm.row("agents", "A0002")
    bad = []
    for _ in range(2):
        crm.insert("departments", {**dept, "department_id": "DX1"})
    bad.append(Bad("duplicate id", "departments", "DX1", "unique_key", "department_id",
                   "departments.department_id DX1 occurs in more than one row"))
    crm.insert("departments", {**dept, "department_id": "DX2", "name": ""})
    bad.append(Bad("empty name", "departments", "DX2", "blank", "name",
                   "departments.name is blank"))
    crm.insert("departments", {**dept, "department_id": "DX3", "name": None})
    bad.append(Bad("missing name", "departments", "DX3", "required", "name",
                   "departments.name is missing"))
    for aid, kind, check, column, reason, changes in (
        ("AX1", "unknown role", "enum", "role",
         "agents.role 'manager' is not one of agent, supervisor", {"role": "manager"}),
        ("AX2", "flag as a word", "parse_error", "active", "agents.active: not a bool (yes)",
         {"active": "yes"}),
        ("AX3", "negative capacity", "range", "daily_capacity",
         "agents.daily_capacity -1 is negative", {"daily_capacity": -1}),
        ("AX4", "orphan department", "reference", "department_id",
         "agents.department_id D99 does not exist in departments", {"department_id": "D99"}),
        ("AX5", "whitespace-only name", "blank", "name", "agents.name is blank",
         {"name": "   "}),
        ("AX6", "flag not 0/1", "boolean", "active", "agents.active 2 is not 0 or 1",
         {"active": 2}),
    ):
        crm.insert("agents", {**agent, "agent_id": aid, **changes})
        bad.append(Bad(kind, "agents", aid, check, column, reason))
    crm.close()
    return folder / "crm.sqlite", bad


def test_a_table_failing_beyond_the_policy_stops_the_run_before_any_list(
        bad_reference_tables, tmp_path, policy, calendar):
    crm, bad = bad_reference_tables
    out = run_daily(crm, tmp_path / "output", policy, calendar)
    assert isinstance(out.stopped, QualityStop)
    message = str(out.stopped)
    assert "departments: 4 of 10 rows failed (40.0%)" in message, message
    assert "policy quality.max_failure_share" in message
    assert not out.parts.clean.exists()
    assert not out.parts.call_lists.exists() and not out.parts.sla.exists()
    # No digest: the digest task reads sla/D, which the stop never let exist.
    from revisit.delivery.digest import read_digests

    assert read_digests(out.parts.sla) == {}
    # The quarantine still says what was wrong with each row.
    q = out.quarantine
    for b in bad:
        rows = q[(q["table"] == b.table) & (q["row_key"] == b.key) & (q["check"] == b.check)]
        assert rows["reason"].str.contains(b.reason, regex=False).any(), b
    summary_md = (out.parts.quality / "summary.md").read_text(encoding="utf-8")
    assert "departments" in summary_md and "max_failure_share" in summary_md


def test_with_a_looser_policy_the_same_rows_are_quarantined_and_the_run_goes_on(
        bad_reference_tables, tmp_path, policy, calendar):
    crm, bad = bad_reference_tables
    out = run_daily(crm, tmp_path / "output", with_max_failure_share(policy, 0.5), calendar)
    assert out.stopped is None
    q = out.quarantine
    assert {(b.table, b.key) for b in bad} <= set(zip(q["table"], q["row_key"], strict=True))
    assert set(q["table"]) == {"departments", "agents"}  # nothing pointed at the bad rows
    assert len(out.clean("agents")) == len(out.snapshot("agents")) - 6
    lists = out.call_lists()
    assert len(lists) > 0 and not set(lists["agent_id"]) & {"AX1", "AX2", "AX3", "AX4"}


# ----------------------------------------------------------------- empty tables, missing column
def test_empty_optional_tables_pass_and_an_empty_departments_table_stops(tmp_path, policy,
                                                                         calendar):
    rows = minimal_rows()  # no orders, tickets, pauses or visits at all
    crm = Path(sqlite_crm(tmp_path, rows).removeprefix("sqlite:///"))
    out = run_daily(crm, tmp_path / "output", policy, calendar)
    assert out.stopped is None
    summary = out.summary.set_index("table")
    for table in ("orders", "tickets", "ticket_pauses", "visits"):
        assert summary.loc[table, "rows"] == "0" and summary.loc[table, "passed"] == "True"
    assert out.lists is not None and out.sla["rows"] == 0
    assert (out.parts.call_lists / "sms_notice.csv").exists()

    with sqlite3.connect(crm) as conn:
        conn.execute("DELETE FROM departments")
    out = run_daily(crm, tmp_path / "output2", policy, calendar)
    assert isinstance(out.stopped, QualityStop)
    assert "departments: no usable rows (the table is empty)" in str(out.stopped)
    assert not out.parts.call_lists.exists()


def test_a_missing_column_fails_the_extract_naming_table_and_column(tmp_path):
    crm = Path(sqlite_crm(tmp_path, minimal_rows()).removeprefix("sqlite:///"))
    with sqlite3.connect(crm) as conn:
        conn.execute("ALTER TABLE customers DROP COLUMN contact_title")
    with pytest.raises(ExtractError) as error:
        extract_snapshot(f"sqlite:///{crm}", D, tmp_path / "snap", business_tz="Asia/Shanghai")
    assert "customers" in str(error.value) and "contact_title" in str(error.value)
    assert not (tmp_path / "snap").exists()  # no half snapshot


def test_a_result_set_without_a_column_names_table_and_column(tmp_path, monkeypatch):
    """An adapter query (include/sql/extract/) that forgets a canonical column."""
    import revisit.io.extract as extract

    sql = tmp_path / "sql"
    sql.mkdir()
    for path in extract.EXTRACT_SQL_DIR.glob("*.sql"):
        (sql / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    query = (sql / "agents.sql").read_text(encoding="utf-8")
    (sql / "agents.sql").write_text(query.replace("daily_capacity", "NULL AS capacity"),
                                    encoding="utf-8")
    monkeypatch.setattr(extract, "EXTRACT_SQL_DIR", sql)
    crm = sqlite_crm(tmp_path, minimal_rows())
    with pytest.raises(ExtractError, match=r"table agents: .*no column daily_capacity"):
        extract_snapshot(crm, D, tmp_path / "snap", business_tz="Asia/Shanghai")


def test_a_dag_run_stopped_by_the_gate_writes_no_list_and_sends_no_digest(tmp_path_factory,
                                                                        mail_sink):
    """The same through Airflow: the gate fails without retries, every later task (lists, SLA,
    digest e-mail, publish) is upstream_failed, and the SMTP server receives nothing."""
    box = make_sandbox(tmp_path_factory.mktemp("stop_dag"), customers=300,
                       as_of=D.isoformat(), entry_errors=0.0)
    box.env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mail_sink.host, mail_sink.port)
    with sqlite3.connect(box.crm) as conn:  # a tenth of the tickets get an unknown priority
        conn.execute("UPDATE tickets SET priority = 'critical' "
                     "WHERE CAST(substr(ticket_id, 2) AS INTEGER) % 10 = 0")
    run = box.dags_test("revisit_daily", D.isoformat())
    assert run.state == "failed", run.log[-3000:]
    with sqlite3.connect(Path(box.env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        states = dict(conn.execute("SELECT task_id, state FROM task_instance "
                                   "WHERE dag_id = 'revisit_daily'"))
        tries = dict(conn.execute("SELECT task_id, try_number FROM task_instance "
                                  "WHERE dag_id = 'revisit_daily'"))
    assert states["extract"] == "success" and states["quality_gate"] == "failed"
    assert tries["quality_gate"] == 1  # a stop is not retried: the data will not change
    for task in ("call_lists", "agent_mail", "sla", "sla_digest", "publish"):
        assert states[task] == "upstream_failed", (task, states)
    # no list, no digest: the only message is the data team's quality-stop alert
    assert [m["To"] for m in mail_sink.messages()] == ["data-team@revisit.example.com"]
    assert not (box.output / "call_lists" / D.isoformat()).exists()
    assert not (box.output / "sla" / D.isoformat()).exists()
    summary = (box.output / "quality" / D.isoformat() / "summary.md").read_text("utf-8")
    assert "STOPPED" in summary and "tickets" in summary and "critical" in summary
