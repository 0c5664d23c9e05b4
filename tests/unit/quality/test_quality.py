"""Quality gate: GX suites from the repo, quarantine with a reason per row, cascade, stop rule."""

from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest

from revisit.config.schema import TABLES
from revisit.core.phones import dial_phone, normalise_phone
from revisit.io.extract import PARSE_ERRORS, _typed, extract_snapshot, read_snapshot
from revisit.quality.gate import QualityError, QualityResult, QualityStop, run_quality_gate
from revisit.quality.quarantine import QUARANTINE_COLUMNS
from revisit.quality.suites import STAMP_ORDER, build_suites, load_suites
from revisit.quality.summary import write_quality_outputs
from tests.crm_fixtures import minimal_rows, sqlite_crm

TZ = "Asia/Shanghai"
D = dt.date(2026, 10, 16)


# ----------------------------------------------------------------- hand-built CRMs
def crm_rows() -> dict[str, list[dict]]:
    """minimal_rows() plus one order, one closed ticket with a pause, and one visit."""
    rows = minimal_rows()
    rows["orders"] = [{"order_id": "O1", "customer_id": "C0000001", "product": "云ERP",
                       "product_version": "5.2", "amount": 12000.0,
                       "ordered_at": "2026-09-01 10:00:00", "delivered_at": "2026-09-05 10:00:00"}]
    rows["tickets"] = [{
        "ticket_id": "T1", "customer_id": "C0000001", "order_id": "O1", "department_id": "D01",
        "handler_agent_id": "A002", "type": "complaint", "channel": "phone",
        "priority": "urgent", "category": "quality_failure", "description": "设备无法启动",
        "created_at": "2026-10-01 10:00:00", "first_response_at": "2026-10-01 11:00:00",
        "verified_at": "2026-10-01 12:00:00", "plan_at": "2026-10-01 13:00:00",
        "resolved_at": "2026-10-02 10:00:00", "result_fed_back_at": "2026-10-02 15:00:00",
        "closed_at": "2026-10-03 10:00:00", "status": "closed", "satisfaction": 4,
    }]
    rows["ticket_pauses"] = [{"ticket_id": "T1", "paused_at": "2026-10-01 14:00:00",
                              "resumed_at": "2026-10-01 16:00:00"}]
    rows["visits"] = [{"visit_id": "V1", "customer_id": "C0000001", "agent_id": "A002",
                       "kind": "post_resolution", "ticket_id": "T1", "order_id": "O1",
                       "visited_at": "2026-10-05 10:00:00", "method": "phone",
                       "outcome": "reached", "satisfaction": 9, "notes": "客户对处理结果满意"}]
    return rows


def frames_of(rows: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """Frames typed exactly as a snapshot holds them (extract's parsing, `_parse_errors`)."""
    return {name: _typed(table, pd.DataFrame(rows.get(name, []), columns=list(table.columns)),
                         TZ, TZ)
            for name, table in TABLES.items()}


def add_copy(rows: dict[str, list[dict]], table: str, **changes) -> dict:
    """Append a copy of the table's first row with `changes` (a new key among them)."""
    row = {**copy.deepcopy(rows[table][0]), **changes}
    rows[table].append(row)
    return row


def with_threshold(policy, share: float):
    return policy.model_copy(
        update={"quality": policy.quality.model_copy(update={"max_failure_share": share})})


def quarantined_keys(result: QualityResult, table: str) -> set[str]:
    q = result.quarantine
    return set(q.loc[q["table"] == table, "row_key"])


def only_row(result: QualityResult, table: str, key: str) -> pd.DataFrame:
    """The quarantine rows, after checking they are all about that one row of that table."""
    q = result.quarantine
    assert set(q["table"]) == {table}, q.to_string()
    assert set(q["row_key"]) == {key}, q.to_string()
    assert key not in set(result.clean[table][TABLES[table].key[0]].astype(str))
    return q


# ----------------------------------------------------------------- a valid CRM
def test_valid_crm_passes_with_nothing_quarantined(policy):
    frames = frames_of(crm_rows())
    result = run_quality_gate(frames, policy)
    assert not result.stopped and result.stop_reason == ""
    assert result.quarantine.empty
    assert list(result.quarantine.columns)[:5] == ["table", "row_key", "check", "column",
                                                   "reason"]
    for name, frame in frames.items():
        clean = result.clean[name]
        assert list(clean.columns) == [c for c in frame.columns if c != PARSE_ERRORS]
        assert len(clean) == len(frame)
    assert result.summary["passed"].all()
    assert (result.checks["failed_rows"] == 0).all()


def test_gate_does_not_hash_whole_tables_for_a_gx_batch_fingerprint(policy, monkeypatch):
    """GX would hash every batch for a marker nobody reads (a third of its time)."""
    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(_frame):
        raise AssertionError("GX hashed a batch")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    result = run_quality_gate(frames_of(crm_rows()), policy)
    assert not result.stopped and result.quarantine.empty


def test_valid_crm_read_back_from_a_parquet_snapshot_passes(tmp_path, policy):
    url = sqlite_crm(tmp_path, crm_rows())
    extract_snapshot(url, D, tmp_path / "snap", business_tz=TZ, source_tz=TZ)
    result = run_quality_gate(read_snapshot(tmp_path / "snap"), policy)
    assert not result.stopped and result.quarantine.empty
    assert len(result.clean["tickets"]) == 1 and len(result.clean["visits"]) == 1


def test_demo_crm_passes_with_nothing_quarantined(policy):
    from tooling.demo_crm import generate_frames

    result = run_quality_gate(generate_frames(customers=300), policy)
    assert not result.stopped
    assert result.quarantine.empty, result.quarantine.head(10).to_string()


# ----------------------------------------------------------------- one check at a time
# Every bad row below is a copy of a valid row with one thing wrong and a key of its own, and
# nothing points at it. They all go into one CRM checked once (GX costs ~1 s a run); each case
# then proves its row got exactly the expected quarantine row, and the batch test proves no
# other row was touched.
BAD_VALUES = [
    pytest.param("customers", {"name": None}, "required", "name",
                 ["customers.name is missing"], id="missing-required-name"),
    pytest.param("tickets", {"customer_id": None}, "required", "customer_id",
                 ["tickets.customer_id is missing"], id="missing-required-id"),
    pytest.param("visits", {"visited_at": None}, "required", "visited_at",
                 ["visits.visited_at is missing"], id="missing-required-timestamp"),
    pytest.param("agents", {"name": "   "}, "blank", "name",
                 ["agents.name is blank"], id="blank-required-text"),
    pytest.param("tickets", {"priority": "asap"}, "enum", "priority",
                 ["tickets.priority 'asap' is not one of urgent, important, general"],
                 id="enum-priority"),
    pytest.param("tickets", {"status": "done"}, "enum", "status",
                 ["tickets.status 'done'", "pending, in_progress, resolved, closed"],
                 id="enum-status"),
    pytest.param("tickets", {"channel": "fax"}, "enum", "channel",
                 ["tickets.channel 'fax' is not one of phone, email"], id="enum-channel"),
    pytest.param("customers", {"tier": "vip"}, "enum", "tier",
                 ["customers.tier 'vip' is not one of standard, key"], id="enum-tier"),
    pytest.param("agents", {"role": "boss"}, "enum", "role",
                 ["agents.role 'boss' is not one of agent, supervisor"], id="enum-role"),
    pytest.param("visits", {"outcome": "maybe"}, "enum", "outcome",
                 ["visits.outcome 'maybe' is not one of reached"], id="enum-outcome"),
    pytest.param("visits", {"kind": "courtesy"}, "enum", "kind",
                 ["visits.kind 'courtesy' is not one of welcome"], id="enum-visit-kind"),
    pytest.param("customers", {"do_not_call": 2}, "boolean", "do_not_call",
                 ["customers.do_not_call 2 is not 0 or 1"], id="flag-not-0-or-1"),
    pytest.param("customers", {"phone": "12345"}, "phone", "phone",
                 ["customers.phone is not a plausible phone number", "7 to 15 digits"],
                 id="phone-too-short"),
    pytest.param("customers", {"phone": "138-1234-567x"}, "phone", "phone",
                 ["customers.phone is not a plausible phone number"], id="phone-with-letter"),
    pytest.param("customers", {"phone": "1381234567812345"}, "phone", "phone",
                 ["customers.phone is not a plausible phone number"], id="phone-too-long"),
    pytest.param("tickets", {"satisfaction": 6}, "range", "satisfaction",
                 ["tickets.satisfaction 6 is not between 1 and 5"], id="ticket-satisfaction-6"),
    pytest.param("tickets", {"satisfaction": 0}, "range", "satisfaction",
                 ["tickets.satisfaction 0 is not between 1 and 5"], id="ticket-satisfaction-0"),
    pytest.param("visits", {"satisfaction": 11}, "range", "satisfaction",
                 ["visits.satisfaction 11 is not between 1 and 10"], id="visit-satisfaction-11"),
    pytest.param("orders", {"amount": -5.0}, "range", "amount",
                 ["orders.amount -5.0 is negative"], id="negative-amount"),
    pytest.param("agents", {"daily_capacity": -1}, "range", "daily_capacity",
                 ["agents.daily_capacity -1 is negative"], id="negative-capacity"),
    pytest.param("customers", {"created_at": "2026-13-45 10:00"}, "parse_error", "created_at",
                 ["customers.created_at: not a datetime (2026-13-45 10:00)"],
                 id="unparseable-required-timestamp"),
    pytest.param("orders", {"delivered_at": "soon"}, "parse_error", "delivered_at",
                 ["orders.delivered_at: not a datetime (soon)"], id="unparseable-timestamp"),
    pytest.param("tickets", {"satisfaction": "good"}, "parse_error", "satisfaction",
                 ["tickets.satisfaction: not an int (good)"], id="unparseable-number"),
    pytest.param("customers", {"do_not_call": "yes"}, "parse_error", "do_not_call",
                 ["customers.do_not_call: not a bool (yes)"], id="unparseable-flag"),
    # what a later stage needs: the SLA counts on the calendar's years only
    pytest.param("tickets", {"created_at": "1900-01-01 09:00:00"}, "calendar_years",
                 "created_at", ["tickets.created_at 1900-01-01T09:00:00+08:05:43 is outside "
                                "the years the business calendar covers (2015–2040)"],
                 id="ticket-stamp-before-the-calendar"),
    pytest.param("ticket_pauses", {"resumed_at": "2041-01-02 10:00:00"}, "calendar_years",
                 "resumed_at", ["ticket_pauses.resumed_at 2041-01-02T10:00:00+08:00 is "
                                "outside the years the business calendar covers (2015–2040)"],
                 id="pause-stamp-after-the-calendar"),
    pytest.param("tickets", {"closed_at": "2040-12-05 10:00:00"}, "calendar_years",
                 "closed_at", ["tickets.closed_at 2040-12-05T10:00:00+08:00 is in the "
                               "business calendar's last month (2040-12)"],
                 id="ticket-stamp-in-the-calendars-last-month"),
    # one rule for local time (Shanghai kept summer time 1986-1991), stamps no zone can hold
    pytest.param("visits", {"visited_at": "1990-04-15 02:30:00"}, "local_time", "visited_at",
                 ["visits.visited_at: does not exist (DST spring-forward) in Asia/Shanghai "
                  "(1990-04-15 02:30:00)"], id="skipped-local-time"),
    pytest.param("visits", {"visited_at": "1990-09-16 01:30:00"}, "local_time", "visited_at",
                 ["visits.visited_at: ambiguous local time (DST fall-back) in Asia/Shanghai "
                  "(1990-09-16 01:30:00)"], id="ambiguous-local-time"),
    pytest.param("visits", {"visited_at": "0001-01-01 00:00:00"}, "timestamp_range",
                 "visited_at", ["visits.visited_at: outside the years 1 to 9999 in UTC or in "
                                "Asia/Shanghai (0001-01-01 00:00:00)"],
                 id="stamp-before-year-1-in-utc"),
]
REFERENCES = [
    pytest.param(t.name, col, parent, id=f"{t.name}.{col}->{parent}")
    for t in TABLES.values() for col, parent in t.references.items()
]
ORDERINGS = [
    pytest.param(t, later, earlier, id=f"{t}.{later}<{earlier}")
    for t, pairs in STAMP_ORDER.items() for later, earlier in pairs
]
PAUSE = "2026-10-01 14:00:00"  # the valid pause's paused_at


def _bad_copy(rows: dict[str, list[dict]], table: str, tag: str, changes: dict) -> str:
    """Add a copy of the table's first row with `changes` and a key of its own; its row_key."""
    if table == "ticket_pauses":  # key (ticket_id, paused_at): a new paused_at makes it new
        changes = {"paused_at": f"2026-10-02 {10 + int(tag[1:]) % 8:02d}:{tag[1:]:0>2}:00",
                   "resumed_at": "2026-10-02 23:00:00", **changes}
        row = add_copy(rows, table, **changes)
        return f"{row['ticket_id']}|{pd.Timestamp(row['paused_at']).isoformat()}"
    key = TABLES[table].key[0]
    add_copy(rows, table, **{key: tag, **changes})
    return tag


def _ordering_changes(table: str, later: str, earlier: str) -> tuple[dict, str, str]:
    """Put `later` 30 minutes before `earlier`; the two values as the reason shows them."""
    base = crm_rows()[table][0]
    changes: dict = {}
    if table == "ticket_pauses":
        base = {**base, "paused_at": "2026-10-02 09:00:00"}
        changes["paused_at"] = base["paused_at"]
    start = pd.Timestamp(base[earlier])
    changes[later] = str(start - pd.Timedelta(minutes=30))
    return (changes, (start - pd.Timedelta(minutes=30)).isoformat() + "+08:00",
            start.isoformat() + "+08:00")


@pytest.fixture(scope="module")
def batch(policy) -> tuple[QualityResult, dict[str, tuple[str, str]]]:
    """One CRM holding every bad row of BAD_VALUES, REFERENCES and ORDERINGS, checked once.
    Returns the result and, per case id, the (table, row_key) of its bad row."""
    rows = crm_rows()
    where: dict[str, tuple[str, str]] = {}
    for n, case in enumerate(BAD_VALUES):
        table, changes = case.values[:2]
        where[case.id] = (table, _bad_copy(rows, table, f"B{n}", dict(changes)))
    for n, case in enumerate(REFERENCES):
        table, column, _ = case.values
        where[case.id] = (table, _bad_copy(rows, table, f"R{n}", {column: f"X{n}"}))
    for n, case in enumerate(ORDERINGS):
        table, later, earlier = case.values
        changes = _ordering_changes(table, later, earlier)[0]
        if table == "ticket_pauses":
            row = add_copy(rows, table, **changes)
            where[case.id] = (table, f"T1|{pd.Timestamp(row['paused_at']).isoformat()}")
        else:
            where[case.id] = (table, _bad_copy(rows, table, f"S{n}", changes))
    return run_quality_gate(frames_of(rows), policy), where


def rows_of(result: QualityResult, table: str, key: str) -> pd.DataFrame:
    q = result.quarantine
    mine = q[(q["table"] == table) & (q["row_key"] == key)]
    assert len(mine), f"{table} {key} was not quarantined"
    return mine


def test_batch_quarantines_the_bad_rows_and_nothing_else(batch):
    result, where = batch
    q = result.quarantine
    assert set(zip(q["table"], q["row_key"], strict=True)) == set(where.values())
    for table in TABLES:
        bad = sum(1 for t, _ in where.values() if t == table)
        assert len(result.clean[table]) == len(crm_rows()[table]), table
        assert result.summary.set_index("table").loc[table, "failed_rows"] == bad


@pytest.mark.parametrize(("table", "changes", "check", "column", "fragments"), BAD_VALUES)
def test_each_check_quarantines_exactly_the_bad_row_with_a_readable_reason(
        batch, request, table, changes, check, column, fragments):
    result, where = batch
    mine = rows_of(result, *where[request.node.callspec.id])
    # one row: an unparseable required value, say, is not reported as missing too
    assert mine[["check", "column"]].values.tolist() == [[check, column]]
    reason = mine.iloc[0]["reason"]
    for fragment in fragments:
        assert fragment in reason, reason


@pytest.mark.parametrize(("table", "column", "parent"), REFERENCES)
def test_orphan_reference_quarantines_the_row_naming_the_missing_id(batch, request, table,
                                                                      column, parent):
    result, where = batch
    case = request.node.callspec.id
    mine = rows_of(result, *where[case])
    assert mine[["check", "column"]].values.tolist() == [["reference", column]]
    n = [c.id for c in REFERENCES].index(case)
    assert mine.iloc[0]["reason"] == f"{table}.{column} X{n} does not exist in {parent}"


@pytest.mark.parametrize(("table", "later", "earlier"), ORDERINGS)
def test_timestamps_out_of_order_quarantine_the_row(batch, request, table, later, earlier):
    result, where = batch
    mine = rows_of(result, *where[request.node.callspec.id])
    assert set(mine["check"]) == {"timestamp_order"}
    _, shown_later, shown_earlier = _ordering_changes(table, later, earlier)
    # result_fed_back_at and closed_at moved before created_at are also before resolved_at
    assert (f"{table}.{later} {shown_later} is before {earlier} {shown_earlier}"
            in mine["reason"].tolist()), mine["reason"].tolist()


def test_valid_phone_formats_pass(policy):
    rows = crm_rows()
    for i, phone in enumerate(["+86 138-1234-5678", "0086 13812345678", "(021) 6234 5678",
                               "０２１－６２３４５６７８", "021.6234.5678", None, ""]):
        add_copy(rows, "customers", customer_id=f"C9{i}", phone=phone)
    result = run_quality_gate(frames_of(rows), policy)
    assert result.quarantine.empty, result.quarantine.to_string()


def test_normalise_phone_keeps_digits_only():
    got = normalise_phone(pd.Series(["+86 138-1234-5678", "（021）6234 5678", " ", None]))
    assert got.tolist()[:2] == ["13812345678", "02162345678"]
    assert got.isna().tolist()[2:] == [True, True]


def test_duplicate_key_quarantines_every_row_sharing_it(policy):
    rows = crm_rows()
    add_copy(rows, "visits", notes="second copy")
    add_copy(rows, "ticket_pauses", resumed_at="2026-10-01 17:00:00")
    result = run_quality_gate(frames_of(rows), policy)
    q = result.quarantine
    assert set(q["table"]) == {"visits", "ticket_pauses"}
    visits = q[q["table"] == "visits"]
    assert visits["row_key"].tolist() == ["V1", "V1"]
    assert set(visits["check"]) == {"unique_key"}
    assert visits.iloc[0]["reason"] == "visits.visit_id V1 occurs in more than one row"
    pauses = q[q["table"] == "ticket_pauses"]
    assert pauses["row_key"].tolist() == ["T1|2026-10-01T14:00:00"] * 2
    assert pauses.iloc[0]["reason"] == ("ticket_pauses key (ticket_id, paused_at) = "
                                        "T1|2026-10-01T14:00:00+08:00 occurs in more than one row")
    assert result.clean["visits"].empty and result.clean["ticket_pauses"].empty


def test_checks_in_small_chunks_decide_exactly_as_one_pass(policy, monkeypatch):
    """Large tables are validated in chunks; every bad-row kind (duplicates across chunks too)
    must come out the same as when the whole table is one batch."""
    import revisit.quality.validation as validation

    rows = crm_rows()
    for n, case in enumerate(BAD_VALUES):
        table, changes = case.values[:2]
        _bad_copy(rows, table, f"B{n}", dict(changes))
    add_copy(rows, "visits", notes="second copy")  # the duplicate lands in a later chunk
    add_copy(rows, "ticket_pauses", resumed_at="2026-10-01 17:00:00")
    whole = run_quality_gate(frames_of(rows), policy)
    monkeypatch.setattr(validation, "GX_CHUNK_ROWS", 2)
    chunked = run_quality_gate(frames_of(rows), policy)
    assert len(whole.quarantine) > len(BAD_VALUES)
    pd.testing.assert_frame_equal(chunked.quarantine, whole.quarantine)
    pd.testing.assert_frame_equal(chunked.checks, whole.checks)
    for name, frame in whole.clean.items():
        pd.testing.assert_frame_equal(chunked.clean[name], frame)


def test_row_without_a_key_is_named_by_its_position(policy):
    rows = crm_rows()
    add_copy(rows, "customers", customer_id=None)
    result = run_quality_gate(frames_of(rows), policy)
    q = only_row(result, "customers", "<row 2>")
    assert q[["check", "column"]].values.tolist() == [["required", "customer_id"]]


# ----------------------------------------------------------------- cascade and counts
def cascading_rows() -> dict[str, list[dict]]:
    """C2 has a bad phone; its order, ticket, pause and visit are otherwise fine."""
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C2", phone="not a phone")
    add_copy(rows, "orders", order_id="O2", customer_id="C2")
    add_copy(rows, "tickets", ticket_id="T2", customer_id="C2", order_id="O2")
    add_copy(rows, "ticket_pauses", ticket_id="T2")
    add_copy(rows, "visits", visit_id="V2", customer_id="C2", ticket_id="T2", order_id="O1")
    return rows


def test_rows_pointing_at_a_quarantined_row_are_quarantined_too(policy):
    result = run_quality_gate(frames_of(cascading_rows()), policy)
    q = result.quarantine
    got = {(r.table, r.row_key, r.check, r.column) for r in q.itertuples()}
    assert got == {
        ("customers", "C2", "phone", "phone"),
        ("orders", "O2", "parent_quarantined", "customer_id"),
        ("tickets", "T2", "parent_quarantined", "customer_id"),
        ("tickets", "T2", "parent_quarantined", "order_id"),
        ("ticket_pauses", "T2|2026-10-01T14:00:00", "parent_quarantined", "ticket_id"),
        ("visits", "V2", "parent_quarantined", "customer_id"),
        ("visits", "V2", "parent_quarantined", "ticket_id"),
    }
    reason = q.loc[(q["table"] == "tickets") & (q["column"] == "customer_id"), "reason"].iloc[0]
    assert reason == "tickets.customer_id C2 points at a quarantined row of customers"
    summary = result.summary.set_index("table")
    assert summary.loc["customers", "cascaded_rows"] == 0
    assert summary.loc["visits", "cascaded_rows"] == 1
    # the clean frames are referentially closed
    clean = result.clean
    for name, table in TABLES.items():
        for col, parent in table.references.items():
            values = clean[name][col].dropna()
            assert values.isin(clean[parent][TABLES[parent].key[0]]).all(), (name, col)


def test_clean_and_quarantined_rows_add_up_to_the_input(policy):
    rows = cascading_rows()
    add_copy(rows, "tickets", ticket_id="T3", satisfaction=9)
    add_copy(rows, "visits", visit_id="V3", outcome="maybe", satisfaction=0)
    add_copy(rows, "agents", agent_id="A003", role="boss")
    frames = frames_of(rows)
    result = run_quality_gate(frames, policy)
    q = result.quarantine
    for name, frame in frames.items():
        quarantined = q.loc[q["table"] == name, "row_key"].nunique()
        assert len(result.clean[name]) + quarantined == len(frame), name
    s = result.summary.set_index("table")
    assert (s["clean_rows"] + s["failed_rows"] == s["rows"]).all()
    assert q.loc[q["row_key"] == "V3", "check"].tolist() == ["enum", "range"]


# ----------------------------------------------------------------- stop rule
def many_customers(bad: int, total: int = 20) -> dict[str, list[dict]]:
    rows = minimal_rows()
    for i in range(2, total + 1):
        add_copy(rows, "customers", customer_id=f"C{i:02d}",
                 tier="vip" if i > total - bad else "standard")
    return rows


def test_failure_share_at_the_threshold_does_not_stop(policy):
    assert policy.quality.max_failure_share == 0.05
    result = run_quality_gate(frames_of(many_customers(bad=1)), policy)
    assert not result.stopped and result.stop_reason == ""
    result.raise_if_stopped()
    assert len(result.clean["customers"]) == 19


def test_failure_share_above_the_threshold_stops_naming_the_table(policy):
    result = run_quality_gate(frames_of(many_customers(bad=2)), policy)
    assert result.stopped
    assert result.stop_reason.startswith("customers: 2 of 20 rows failed (10.0%)")
    assert "quality.max_failure_share" in result.stop_reason
    assert result.summary.set_index("table").loc["customers", "passed"] is False or \
        not result.summary.set_index("table").loc["customers", "passed"]
    with pytest.raises(QualityStop, match="customers: 2 of 20"):
        result.raise_if_stopped()
    # the threshold comes from the policy
    assert not run_quality_gate(frames_of(many_customers(bad=2)),
                                with_threshold(policy, 0.10)).stopped


def test_cascaded_rows_count_toward_a_tables_failure_share(policy):
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C2", tier="vip")
    for i in range(2, 5):
        add_copy(rows, "orders", order_id=f"O{i}", customer_id="C2")
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 0.5))
    assert result.stopped
    assert result.stop_reason == (
        "orders: 3 of 4 rows failed (75.0%, 3 of them because a row they point at was "
        "quarantined), more than the limit of 50.0% (policy quality.max_failure_share)")


def test_empty_tickets_table_passes(policy):
    rows = crm_rows()
    rows["tickets"], rows["ticket_pauses"] = [], []
    rows["visits"][0]["ticket_id"] = None
    frames = frames_of(rows)
    result = run_quality_gate(frames, policy)
    assert not result.stopped and result.quarantine.empty
    assert result.clean["tickets"].empty
    assert list(result.clean["tickets"].columns) == list(TABLES["tickets"].columns)
    del frames["ticket_pauses"]  # the optional table may be absent altogether
    assert run_quality_gate(frames, policy).clean["ticket_pauses"].empty


def test_empty_customers_table_passes_as_a_date_before_any_customer(policy):
    rows = crm_rows()
    for name in ("customers", "orders", "tickets", "ticket_pauses", "visits"):
        rows[name] = []
    result = run_quality_gate(frames_of(rows), policy)
    assert not result.stopped
    assert result.clean["customers"].empty


def test_malformed_head_or_agent_email_keeps_the_department_on_the_lists(policy):
    rows = crm_rows()
    rows["departments"][0]["head_email"] = "nobody"
    rows["agents"][0]["email"] = "li.na at example"
    result = run_quality_gate(frames_of(rows), policy)
    assert result.quarantine.empty and not result.stopped
    assert len(result.clean["customers"]) == len(rows["customers"])


def test_empty_agents_table_stops(policy):
    rows = crm_rows()
    rows["agents"] = []
    result = run_quality_gate(frames_of(rows), policy)
    assert result.stopped
    assert "agents: no usable rows (the table is empty)" in result.stop_reason


# ----------------------------------------------------------------- bad input
def test_missing_column_raises_naming_table_and_column(policy):
    frames = frames_of(crm_rows())
    frames["customers"] = frames["customers"].drop(columns=["phone"])
    with pytest.raises(QualityError, match="table customers has no column phone"):
        run_quality_gate(frames, policy)


def test_invalid_expectation_is_named_by_its_place_in_the_suite(policy):
    suites = copy.deepcopy(load_suites())
    visits = suites["visits"]["expectations"]
    visits.append({"type": "expect_no_such_thing", "kwargs": {"column": "visit_id"},
                   "meta": {"check": "x", "column": "visit_id", "reason": "x"}})
    with pytest.raises(QualityError, match=rf"suite visits: expectation {len(visits) - 1} "
                                           r"\(expect_no_such_thing\) is invalid"):
        run_quality_gate(frames_of(crm_rows()), policy, suites=suites)


def test_missing_table_raises_naming_it(policy):
    frames = frames_of(crm_rows())
    del frames["orders"]
    with pytest.raises(QualityError, match="no frame for table orders"):
        run_quality_gate(frames, policy)


def test_untyped_timestamps_raise_naming_table_and_column(policy):
    frames = frames_of(crm_rows())
    frames["tickets"] = frames["tickets"].assign(closed_at="2026-10-03 10:00:00")
    with pytest.raises(QualityError, match="table tickets column closed_at holds"):
        run_quality_gate(frames, policy)


# ----------------------------------------------------------------- suites as data
def test_suites_on_disk_match_the_generated_ones():
    assert load_suites() == build_suites(), (
        "include/config/expectations/ drifted from revisit.config.schema: "
        "run `python -m revisit.quality.gate` and review the diff")


def test_gate_runs_the_suites_it_is_given(policy):
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C2", phone="12")
    suites = load_suites()
    assert run_quality_gate(frames_of(rows), policy, suites=suites).quarantine["check"].tolist() \
        == ["phone"]
    suites["customers"] = {**suites["customers"], "expectations": [
        e for e in suites["customers"]["expectations"] if e["meta"]["check"] != "phone"]}
    assert run_quality_gate(frames_of(rows), policy, suites=suites).quarantine.empty


def test_broken_suite_raises_naming_the_table(policy, tmp_path):
    suites = load_suites()
    suites["orders"]["expectations"].append(
        {"type": "expect_no_such_thing", "kwargs": {"column": "amount"},
         "meta": {"check": "x", "column": "amount", "reason": "x"}})
    with pytest.raises(QualityError, match="expectation suite orders"):
        run_quality_gate(frames_of(crm_rows()), policy, suites=suites)


# ----------------------------------------------------------------- outputs
PERSONAL = ["秘密客户有限公司", "赵秘密", "13900001111x", "secret@example.com", "王秘密",
            "wang.secret-at-example", "1990-99-99"]


def test_outputs_are_written_and_the_summary_shows_no_personal_data(policy, tmp_path):
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C2", name="秘密客户有限公司", contact_name="赵秘密",
             phone="13900001111x", email="secret@example.com")
    add_copy(rows, "customers", customer_id="C3", name=None, contact_name="赵秘密",
             cooperation_start_date="1990-99-99")
    add_copy(rows, "agents", agent_id="A003", name="王秘密", email="wang.secret-at-example",
             role="boss")
    result = run_quality_gate(frames_of(rows), policy)
    folder = tmp_path / "quality" / D.isoformat()
    folder.mkdir(parents=True)
    (folder / "stale.txt").write_text("from an earlier attempt")
    paths = write_quality_outputs(result, folder, D)

    assert sorted(p.name for p in folder.iterdir()) == [
        "checks.csv", "quarantine.csv", "quarantine.parquet", "summary.csv", "summary.html",
        "summary.md"]
    assert set(paths.values()) == set(folder.iterdir())
    quarantine = pd.read_csv(folder / "quarantine.csv", dtype=str, keep_default_na=False)
    assert list(quarantine.columns) == QUARANTINE_COLUMNS
    assert len(quarantine) == len(result.quarantine) == 4
    stats = pd.read_csv(folder / "summary.csv")
    assert stats["table"].tolist() == list(TABLES)
    assert stats.set_index("table").loc["customers", "failed_rows"] == 2

    for name in ("summary.md", "summary.html"):
        text = (folder / name).read_text(encoding="utf-8")
        for secret in PERSONAL:
            assert secret not in text, (name, secret)
        for key in ("C2", "C3", "A003"):
            assert key in text
        assert "customers.phone is not a plausible phone number" in text
        assert "customers.cooperation_start_date: not a date" in text
        assert D.isoformat() in text
    # the reasons (they go to the results database too) hold no personal data either
    for secret in PERSONAL[:-1]:
        assert not result.quarantine["reason"].str.contains(secret, regex=False).any()


def test_summary_of_a_stopped_run_says_why(policy, tmp_path):
    result = run_quality_gate(frames_of(many_customers(bad=2)), policy)
    write_quality_outputs(result, tmp_path / "q", D)
    md = (tmp_path / "q" / "summary.md").read_text(encoding="utf-8")
    assert "**STOPPED**" in md and "customers: 2 of 20 rows failed" in md
    html = (tmp_path / "q" / "summary.html").read_text(encoding="utf-8")
    assert "STOPPED" in html and "&#39;vip&#39;" in html


def test_a_name_longer_than_a_spreadsheet_cell_is_quarantined_not_cut(policy):
    # The agent's XLSX could show only 32,767 characters of it while the CSV kept it whole.
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C2", name="名" * 32_768)
    add_copy(rows, "customers", customer_id="C3", name="名" * 32_767)  # fits exactly
    result = run_quality_gate(frames_of(rows), policy)
    q = result.quarantine
    long = q[(q["row_key"] == "C2") & (q["check"] == "cell_length")]
    assert long["reason"].str.contains("32,767 characters a spreadsheet cell holds").all()
    assert len(long) == 1 and "C3" in set(result.clean["customers"]["customer_id"])


def test_the_summary_names_active_agents_whose_list_cannot_be_emailed(policy, tmp_path):
    rows = crm_rows()
    add_copy(rows, "agents", agent_id="A007", email="not-an-address", active=1)
    add_copy(rows, "agents", agent_id="A008", email="not-an-address-either", active=0)
    kept = {}  # as the daily run gates: every clean table goes to a sink as it is done
    result = run_quality_gate(frames_of(rows), policy,
                              sink=lambda name, frame: kept.setdefault(name, frame))
    assert set(kept) == set(TABLES) and set(result.clean) == {"departments", "agents"}
    write_quality_outputs(result, tmp_path / "q", D)
    for name in ("summary.md", "summary.html"):
        text = (tmp_path / "q" / name).read_text(encoding="utf-8")
        assert "1 active agent(s) have no valid e-mail address" in text, name
        assert "A007" in text and "A008" not in text, name
        assert "not-an-address" not in text, name  # ids only, never the address


def test_dial_phone_keeps_a_plausible_number_in_the_form_an_agent_dials(policy):
    got = dial_phone(pd.Series(["+86 138-1234-5678", "１３８　１２３４　５６７８",
                                "0086 13812345678", "8613812345678", "+1 (415) 555-2671",
                                "(0755) 8888-6666", " "]))
    assert got.tolist()[:6] == ["13812345678"] * 4 + ["+14155552671", "075588886666"]
    assert got.isna().tolist()[6]
    rows = crm_rows()
    rows["customers"][0]["phone"] = "+86 (138) 1234-5678"
    result = run_quality_gate(frames_of(rows), policy)
    assert result.clean["customers"]["phone"].tolist() == ["13812345678"]


def test_an_id_that_would_name_a_file_outside_its_folder_is_quarantined(policy):
    rows = crm_rows()
    add_copy(rows, "agents", agent_id="../../x")
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    row = only_row(result, "agents", "../../x")
    assert row["check"].tolist() == ["file_name"]
    assert "agents.agent_id ../../x cannot name a file" in row["reason"].iloc[0]


# ----------------------------------------------------------------- what later stages need
LONG_AGENT = "A" + "x" * 229  # 230 bytes


def test_an_agent_id_too_long_for_a_file_name_is_quarantined_with_its_true_reasons(policy):
    rows = crm_rows()
    add_copy(rows, "agents", agent_id=LONG_AGENT)
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    q = only_row(result, "agents", "<row 3>")  # the key is too long for quality_issues.row_key
    assert q["check"].tolist() == ["width", "file_name_length"]
    shown = LONG_AGENT[:100]  # reasons quote at most 100 characters of a value
    assert q["reason"].tolist() == [
        f"agents.agent_id {shown} is longer than 16 characters (the results database column "
        "call_list.agent_id holds 16)",
        f"agents.agent_id {shown} is longer than 64 bytes (UTF-8): too long to name its "
        "output files"]


def test_the_file_name_limit_counts_bytes_not_characters():
    from revisit.config.schema import FILE_NAME_BYTES
    from revisit.quality.constraints import file_name_length

    ids = ["a" * FILE_NAME_BYTES, "a" * (FILE_NAME_BYTES + 1), "测" * 21, "测" * 22, None]
    (failure,) = file_name_length("agents", pd.DataFrame({"agent_id": pd.Series(
        ids, dtype="string")}))
    assert failure.positions.tolist() == [1, 3]  # 65 bytes; 22 CJK characters = 66 bytes


def test_ids_that_differ_only_by_case_are_both_quarantined_naming_each_other(policy):
    rows = crm_rows()
    add_copy(rows, "agents", agent_id="A0003")
    add_copy(rows, "agents", agent_id="a0003")
    add_copy(rows, "departments", department_id="D\u00c902")  # É composed ...
    add_copy(rows, "departments", department_id="De\u030102")  # ... and as e + accent
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    q = result.quarantine
    assert q["check"].unique().tolist() == ["case_collision"]
    by_key = dict(zip(q["row_key"], q["reason"], strict=True))
    tail = ("name the same file on a case-insensitive file system (they differ only in letter "
            "case or accent encoding)")
    assert by_key["A0003"] == f"agents.agent_id A0003 and a0003 {tail}"
    assert by_key["a0003"] == f"agents.agent_id a0003 and A0003 {tail}"
    assert by_key["D\u00c902"] == f"departments.department_id D\u00c902 and De\u030102 {tail}"
    assert {"A001", "A002"} == set(result.clean["agents"]["agent_id"])


def test_a_case_collision_of_three_spellings_names_one_and_counts_the_rest(policy):
    rows = crm_rows()
    for agent_id in ("Ab1", "aB1", "AB1"):
        add_copy(rows, "agents", agent_id=agent_id)
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    q = result.quarantine
    assert sorted(q["row_key"]) == ["AB1", "Ab1", "aB1"]
    assert q["reason"].str.contains(r"^agents\.agent_id \w+ and \w+ \(and 1 more\) name",
                                    regex=True).all(), q["reason"].tolist()


def test_a_duplicated_id_is_a_duplicate_not_a_case_collision(policy):
    rows = crm_rows()
    add_copy(rows, "agents", agent_id="A0009")
    add_copy(rows, "agents", agent_id="A0009")
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    assert set(result.quarantine["check"]) == {"unique_key"}


def test_ids_longer_than_their_results_column_are_quarantined(policy):
    rows = crm_rows()
    add_copy(rows, "customers", customer_id="C" * 17)
    add_copy(rows, "customers", customer_id="客" * 16)  # 16 characters fit (48 bytes)
    add_copy(rows, "tickets", ticket_id="T" * 17)
    add_copy(rows, "orders", order_id="O" * 200)
    add_copy(rows, "orders", order_id="O" * 201)
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    q = result.quarantine
    assert sorted(zip(q["table"], q["check"], strict=True)) == [
        ("customers", "width"), ("orders", "width"), ("tickets", "width")]
    reasons = dict(zip(q["table"], q["reason"], strict=True))
    assert reasons["customers"] == (f"customers.customer_id {'C' * 17} is longer than 16 "
                                    "characters (the results database column "
                                    "call_list.customer_id holds 16)")
    assert "the results database column sla_status.ticket_id holds 16" in reasons["tickets"]
    assert "call_list.order_id holds 200" in reasons["orders"]
    assert q.loc[q["table"] == "orders", "row_key"].tolist() == ["<row 3>"]  # 201 > 200


def test_the_id_limits_come_from_the_results_ddl(tmp_path):
    from revisit.config.schema import RESULTS_DDL, results_column_widths, stored_widths

    ddl = RESULTS_DDL.read_text(encoding="utf-8")
    assert "agent_id          VARCHAR(16) NOT NULL" in ddl
    narrow = tmp_path / "schema.sql"
    narrow.write_text(ddl.replace("agent_id          VARCHAR(16) NOT NULL",
                                  "agent_id          VARCHAR(8) NOT NULL"), encoding="utf-8")
    assert stored_widths(narrow)[("agents", "agent_id")] == (8, "call_list.agent_id")
    assert stored_widths()[("agents", "agent_id")] == (16, "call_list.agent_id")
    # the suites on disk hold the DDL's widths (test_suites_on_disk_match... keeps them so)
    widths = {(e["kwargs"]["column"], e["kwargs"]["max_value"])
              for suite in load_suites().values() for e in suite["expectations"]
              if e["meta"]["check"] == "width"}
    assert widths == {(col, width) for (_, col), (width, _) in stored_widths().items()}
    broken = tmp_path / "broken.sql"
    broken.write_text(ddl.replace("    agent_id          VARCHAR(16) NOT NULL,\n", ""),
                      encoding="utf-8")
    with pytest.raises(ValueError, match=r"no VARCHAR column call_list\.agent_id"):
        stored_widths(broken)
    assert results_column_widths()[("quality_issues", "reason")] == 500


def test_visit_rule_stamps_before_the_calendar_are_no_error(policy):
    """The visit rules count Monday-Friday before the calendar: a customer since 2005 is
    data, not an error; only the SLA's stamps need the calendar's years."""
    rows = crm_rows()
    rows["customers"][0].update(created_at="2005-03-15 10:00:00",
                                cooperation_start_date="2005-03-15")
    rows["orders"][0].update(ordered_at="2010-09-01 10:00:00", delivered_at="2010-09-05 10:00")
    rows["visits"][0].update(visited_at="2012-10-05 10:00:00")
    result = run_quality_gate(frames_of(rows), policy)
    assert result.quarantine.empty, result.quarantine.to_string()


def test_a_stamp_at_the_edge_of_time_is_shown_without_failing_the_gate(policy):
    """A value pandas cannot place in a zone (hand-built frames; extract reports those) is
    shown as written."""
    rows = crm_rows()
    frames = frames_of(rows)
    frames["tickets"] = frames["tickets"].assign(
        created_at=pd.Series([pd.Timestamp("0001-01-01 03:00")], dtype="datetime64[us]"))
    result = run_quality_gate(frames, with_threshold(policy, 1.0))
    reasons = result.quarantine.loc[result.quarantine["check"] == "calendar_years", "reason"]
    assert reasons.tolist() == ["tickets.created_at 0001-01-01T03:00:00 is outside the years "
                                "the business calendar covers (2015–2040)"]


def test_values_extract_replaced_are_counted_in_the_summary(policy, tmp_path):
    from revisit.io.extract import CONTROL_CHARACTERS, INVALID_UTF8, REPLACED_KEY

    frames = frames_of(crm_rows())
    frames["customers"].attrs[REPLACED_KEY] = [
        {"column": "name", "change": INVALID_UTF8, "values": 7, "keys": ["C0000001"]},
        {"column": "contact_name", "change": CONTROL_CHARACTERS, "values": 1,
         "keys": ["C0000001"]}]
    result = run_quality_gate(frames, policy)
    assert result.quarantine.empty  # a replaced value is reported, the row kept
    assert result.replaced[["table", "column", "change", "values"]].values.tolist() == [
        ["customers", "name", INVALID_UTF8, 7], ["customers", "contact_name",
                                                 CONTROL_CHARACTERS, 1]]
    assert REPLACED_KEY not in result.clean["customers"].attrs
    write_quality_outputs(result, tmp_path / "q", D)
    md = (tmp_path / "q" / "summary.md").read_text(encoding="utf-8")
    assert ("| customers | name | bytes that are not UTF-8 read as U+FFFD | 7 | `C0000001` … |"
            in md)
    assert "| customers | contact_name | control characters removed | 1 | `C0000001` |" in md
    html = (tmp_path / "q" / "summary.html").read_text(encoding="utf-8")
    assert "<h2>Values replaced</h2>" in html and "<code>C0000001</code> …" in html
    clean = run_quality_gate(frames_of(crm_rows()), policy)
    write_quality_outputs(clean, tmp_path / "clean", D)
    assert "No value was changed when reading the CRM." in (
        tmp_path / "clean" / "summary.md").read_text(encoding="utf-8")


def test_the_summary_shows_dst_reasons_without_the_raw_value(policy, tmp_path):
    rows = crm_rows()
    add_copy(rows, "visits", visit_id="V2", visited_at="1990-04-15 02:30:00")
    result = run_quality_gate(frames_of(rows), with_threshold(policy, 1.0))
    write_quality_outputs(result, tmp_path / "q", D)
    md = (tmp_path / "q" / "summary.md").read_text(encoding="utf-8")
    assert ("`V2`: visits.visited_at: does not exist (DST spring-forward) in Asia/Shanghai\n"
            in md)
    assert "1990-04-15 02:30" not in md


def test_the_gate_module_still_offers_what_callers_import_from_it():
    """The gate is split into modules; revisit.quality.gate keeps its public names."""
    import revisit.core.phones as phones
    import revisit.quality.gate as gate
    import revisit.quality.summary as summary

    for name in gate.__all__:
        assert hasattr(gate, name), name
    assert gate.normalize_phone is phones.normalise_phone
    assert gate.dial_phone is phones.dial_phone
    assert gate.write_quality_outputs is summary.write_quality_outputs
