"""The demo CRM generator: reproducible, valid against the canonical model, and shaped so that
every rule of DESIGN.md (visit windows, SLA targets, open tickets, unreachable customers) has
data to act on."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import numpy as np
import pandas as pd
import pytest

from revisit.config.policy import Policy
from revisit.config.schema import TABLES, TICKET_STAMPS
from revisit.io.db import CRM_SCHEMA, SchemaFileError, ddl_statements
from revisit.rules.calendar import BusinessCalendar
from tooling.demo_crm import DEFAULT_AS_OF, generate, generate_frames, make_ids

CUSTOMERS = 2000  # the brief: every enum value occurs at this size
Frames = dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def crm() -> Frames:
    return generate_frames(CUSTOMERS, seed=7)


def _horizon(as_of: dt.date = DEFAULT_AS_OF) -> pd.Timestamp:
    return pd.Timestamp(as_of) + pd.Timedelta(days=1)


# ------------------------------------------------------------------ reproducibility
def test_same_seed_gives_identical_frames() -> None:
    first = generate_frames(300, seed=3)
    second = generate_frames(300, seed=3)
    for name in TABLES:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_same_seed_gives_identical_chunks() -> None:
    first = list(generate(250, seed=3, chunk_customers=100))
    second = list(generate(250, seed=3, chunk_customers=100))
    assert len(first) == len(second) == 3
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name])


def test_different_seeds_differ() -> None:
    a = generate_frames(300, seed=3)
    b = generate_frames(300, seed=4)
    assert not a["customers"]["name"].equals(b["customers"]["name"])
    assert not a["customers"]["phone"].equals(b["customers"]["phone"])
    assert not a["agents"]["name"].equals(b["agents"]["name"])
    assert not a["tickets"]["created_at"].equals(b["tickets"]["created_at"])
    assert not a["visits"]["visited_at"].equals(b["visits"]["visited_at"])


def test_chunks_continue_ids_and_carry_the_organisation_once() -> None:
    chunks = list(generate(250, seed=5, chunk_customers=100))
    assert len(chunks) == 3
    assert {"departments", "agents"} <= set(chunks[0])
    assert not {"departments", "agents"} & (set(chunks[1]) | set(chunks[2]))
    customers = pd.concat([c["customers"] for c in chunks])
    assert customers["customer_id"].tolist() == [f"C{i:07d}" for i in range(1, 251)]
    for name, key in (("orders", "order_id"), ("tickets", "ticket_id"), ("visits", "visit_id")):
        ids = pd.concat([c[name][key] for c in chunks])
        assert ids.is_unique, name


# ------------------------------------------------------------------ the canonical model
def test_columns_are_the_canonical_ones(crm: Frames) -> None:
    for name, table in TABLES.items():
        assert list(crm[name].columns) == list(table.columns), name


def test_enum_columns_hold_only_allowed_values(crm: Frames) -> None:
    for name, table in TABLES.items():
        for col, allowed in table.enums.items():
            assert set(crm[name][col].dropna()) <= set(allowed), (name, col)


@pytest.mark.parametrize(("name", "col"), [
    ("tickets", "type"), ("tickets", "channel"), ("tickets", "priority"),
    ("tickets", "category"), ("tickets", "status"), ("visits", "kind"), ("visits", "method"),
    ("visits", "outcome"), ("agents", "role"), ("customers", "tier"),
])
def test_every_enum_value_appears(crm: Frames, name: str, col: str) -> None:
    assert set(crm[name][col].dropna()) == set(TABLES[name].enums[col])


def test_keys_are_unique_and_required_columns_filled(crm: Frames) -> None:
    for name, table in TABLES.items():
        frame = crm[name]
        assert not frame.duplicated(list(table.key)).any(), name
        for col in table.required:
            assert frame[col].notna().all(), (name, col)


@pytest.mark.parametrize(("name", "col", "pattern"), [
    ("departments", "department_id", r"D\d{2}"), ("agents", "agent_id", r"A\d{4}"),
    ("customers", "customer_id", r"C\d{7}"), ("orders", "order_id", r"O\d{9}"),
    ("tickets", "ticket_id", r"T\d{9}"), ("visits", "visit_id", r"V\d{10}"),
])
def test_ids_are_zero_padded(crm: Frames, name: str, col: str, pattern: str) -> None:
    assert crm[name][col].str.fullmatch(pattern).all()


def test_references_resolve(crm: Frames) -> None:
    for name, table in TABLES.items():
        for col, target in table.references.items():
            keys = set(crm[target][TABLES[target].key[0]])
            values = set(crm[name][col].dropna())
            assert values <= keys, (name, col, sorted(values - keys)[:5])


def test_references_are_consistent_across_tables(crm: Frames) -> None:
    customers = crm["customers"].set_index("customer_id")
    agents = crm["agents"].set_index("agent_id")
    owner = agents.loc[customers["owner_agent_id"]]
    assert (owner["department_id"].to_numpy() == customers["department_id"].to_numpy()).all()
    assert (owner["role"] == "agent").all()
    orders = crm["orders"].set_index("order_id")
    for name in ("tickets", "visits"):
        linked = crm[name].dropna(subset=["order_id"])
        assert (orders.loc[linked["order_id"], "customer_id"].to_numpy()
                == linked["customer_id"].to_numpy()).all(), name
    tickets = crm["tickets"].set_index("ticket_id")
    linked = crm["visits"].dropna(subset=["ticket_id"])
    assert (tickets.loc[linked["ticket_id"], "customer_id"].to_numpy()
            == linked["customer_id"].to_numpy()).all()
    assert (tickets["department_id"]
            == customers.loc[tickets["customer_id"], "department_id"].to_numpy()).all()


# ------------------------------------------------------------------ organisation, customers
def test_organisation_is_realistic(crm: Frames) -> None:
    departments, agents = crm["departments"], crm["agents"]
    assert 4 <= len(departments) <= 6
    assert departments[["name", "head_name", "head_email"]].notna().all().all()
    for _, staff in agents.groupby("department_id"):
        active = staff[staff["active"] == 1]
        assert (active["role"] == "supervisor").sum() >= 1
        assert (active["role"] == "agent").sum() >= 1
    assert (agents["active"] == 0).any()
    assert agents["daily_capacity"].isna().any() and agents["daily_capacity"].notna().any()
    assert agents["email"].is_unique


def test_customers_look_real(crm: Frames) -> None:
    customers = crm["customers"]
    assert customers["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert customers["name"].str.fullmatch(r"[\u4e00-\u9fff]+公司").all()
    assert customers["contact_name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert customers["email"].dropna().str.fullmatch(r"[\w.\-]+@[\w.\-]+\.\w+").all()
    assert customers["contact_title"].notna().all() and customers["source"].notna().all()
    key_share = (customers["tier"] == "key").mean()
    assert 0.05 < key_share < 0.15
    assert 0 < customers["do_not_call"].mean() < 0.1
    start = customers["cooperation_start_date"]
    assert (start.max() - start.min()).days > 3 * 365
    assert (customers["created_at"] <= customers["updated_at"]).all()
    assert (customers["created_at"] < start + pd.Timedelta(days=1)).all()


# ------------------------------------------------------------------ time
def test_everything_happened_by_the_end_of_as_of(crm: Frames) -> None:
    horizon = _horizon()
    for name, table in TABLES.items():
        for col in table.columns_of("datetime"):
            assert (crm[name][col].dropna() < horizon).all(), (name, col)


def test_activity_spans_about_eighteen_months(crm: Frames) -> None:
    for name, col in (("orders", "ordered_at"), ("tickets", "created_at"),
                      ("visits", "visited_at")):
        stamps = crm[name][col]
        assert stamps.min() >= pd.Timestamp(DEFAULT_AS_OF) - pd.Timedelta(days=19 * 31), name
        assert stamps.max() - stamps.min() > pd.Timedelta(days=16 * 30), name


def test_as_of_moves_the_data() -> None:
    as_of = dt.date(2026, 3, 1)
    frames = generate_frames(100, seed=7, as_of=as_of)
    assert frames["visits"]["visited_at"].max() < _horizon(as_of)
    assert frames["visits"]["visited_at"].max() > _horizon(as_of) - pd.Timedelta(days=14)


def test_orders_delivered_after_ordered(crm: Frames) -> None:
    orders = crm["orders"]
    delivered = orders.dropna(subset=["delivered_at"])
    assert (delivered["delivered_at"] > delivered["ordered_at"]).all()
    assert orders["delivered_at"].isna().any()
    assert orders["product_version"].str.fullmatch(r"V\d+\.\d+").all()
    assert (orders["amount"] > 0).all()


# ------------------------------------------------------------------ tickets and SLA
def test_ticket_stamps_form_an_ordered_prefix(crm: Frames) -> None:
    stamps = crm["tickets"][list(TICKET_STAMPS)]
    for before, after in itertools.pairwise(TICKET_STAMPS):
        both = stamps[before].notna() & stamps[after].notna()
        assert (stamps.loc[both, before] <= stamps.loc[both, after]).all(), (before, after)
        assert not (stamps[before].isna() & stamps[after].notna()).any(), (before, after)


def test_ticket_status_matches_its_stamps(crm: Frames) -> None:
    tickets = crm["tickets"]
    expected = np.select(
        [tickets["closed_at"].notna(), tickets["resolved_at"].notna(),
         tickets["first_response_at"].notna()],
        ["closed", "resolved", "in_progress"], default="pending")
    assert (tickets["status"].to_numpy() == expected).all()
    rated = tickets["satisfaction"].dropna()
    assert rated.between(1, 5).all()
    assert (tickets.loc[rated.index, "status"] == "closed").all()
    closed = tickets[tickets["status"] == "closed"]
    assert closed["satisfaction"].isna().any()


def test_some_tickets_are_open(crm: Frames) -> None:
    tickets = crm["tickets"]
    status = tickets["status"]
    assert (status == "pending").sum() >= 3
    assert (status == "in_progress").sum() >= 3
    assert (status == "resolved").sum() >= 3
    still_open = tickets[status != "closed"]
    assert still_open["closed_at"].isna().all()
    # both fresh tickets (raised in the last days) and an old backlog (stuck for months)
    age = _horizon() - still_open["created_at"]
    assert (age < pd.Timedelta(days=3)).any()
    assert (age > pd.Timedelta(days=60)).any()
    assert still_open.loc[status == "pending", "handler_agent_id"].isna().any()


def _achieved_on_time(crm: Frames, policy: Policy,
                      calendar: BusinessCalendar) -> pd.DataFrame:
    """One row per achieved SLA target: the ticket's priority and whether it was on time."""
    tickets = crm["tickets"]
    parts = []
    for priority, targets in policy.sla.targets.items():
        rows = tickets[tickets["priority"] == priority]
        for metric, target in targets.items():
            spec = policy.sla.metrics[metric]
            started = rows[rows[spec.start].notna() & rows[spec.achieved].notna()]
            deadline = calendar.add(started[spec.start], target).dt.tz_localize(None)
            parts.append(pd.DataFrame({"priority": priority, "metric": metric,
                                       "on_time": started[spec.achieved] <= deadline}))
    return pd.concat(parts, ignore_index=True)


def test_sla_mostly_met_with_some_breaches(crm: Frames, policy: Policy,
                                          calendar: BusinessCalendar) -> None:
    on_time = _achieved_on_time(crm, policy, calendar)["on_time"]
    assert 0.85 < on_time.mean() < 0.99
    assert (~on_time).sum() >= 10


def test_some_tickets_are_late_on_every_priority(crm: Frames, policy: Policy,
                                                 calendar: BusinessCalendar) -> None:
    late = (~_achieved_on_time(crm, policy, calendar)
            .set_index("priority")["on_time"]).groupby(level=0).sum()
    assert set(late.index) == set(policy.sla.targets)
    assert (late >= 3).all(), late.to_dict()


def test_pauses_lie_within_their_tickets(crm: Frames) -> None:
    pauses = crm["ticket_pauses"].merge(crm["tickets"], on="ticket_id")
    assert len(pauses) > 0
    assert (pauses["paused_at"] >= pauses["created_at"]).all()
    resumed = pauses.dropna(subset=["resumed_at"])
    assert (resumed["resumed_at"] > resumed["paused_at"]).all()
    done = resumed.dropna(subset=["resolved_at"])
    assert (done["resumed_at"] <= done["resolved_at"]).all()


def test_some_pauses_are_still_running() -> None:
    pauses = generate_frames(3000, seed=7)["ticket_pauses"]
    assert pauses["resumed_at"].isna().any()


# ------------------------------------------------------------------ visits
def test_visits_follow_the_kinds_rules(crm: Frames, policy: Policy) -> None:
    visits, customers = crm["visits"], crm["customers"].set_index("customer_id")
    tier = customers.loc[visits["customer_id"], "tier"].to_numpy()
    by_order = visits["kind"].isin(["welcome", "early_use", "stable_use", "long_term",
                                    "new_product"])
    assert visits.loc[by_order, "order_id"].notna().all()
    assert visits.loc[~by_order, "order_id"].isna().all()
    post = visits["kind"] == "post_resolution"
    by_ticket = post | (visits["kind"] == "major_complaint")
    assert visits.loc[by_ticket, "ticket_id"].notna().all()
    assert visits.loc[~by_ticket, "ticket_id"].isna().all()
    assert (tier[visits["kind"] == "key_account"] == "key").all()
    assert (tier[visits["kind"] == "periodic"] == "standard").all()

    orders = crm["orders"].set_index("order_id")
    use = visits[visits["kind"].isin(["early_use", "stable_use", "long_term"])]
    assert (use["visited_at"].to_numpy()
            > orders.loc[use["order_id"], "delivered_at"].to_numpy()).all()
    first = crm["orders"].sort_values("ordered_at").drop_duplicates("customer_id")
    welcome = visits[visits["kind"] == "welcome"]
    assert set(welcome["order_id"]) <= set(first["order_id"])
    tickets = crm["tickets"].set_index("ticket_id")
    after = tickets.loc[visits.loc[post, "ticket_id"]]
    assert set(after["type"]) <= set(policy.visits.kinds["post_resolution"].ticket_types or [])
    assert (visits.loc[post, "visited_at"].to_numpy() > after["closed_at"].to_numpy()).all()


def test_welcome_visits_mostly_in_their_window(crm: Frames,
                                               calendar: BusinessCalendar) -> None:
    visits = crm["visits"]
    reached = visits[(visits["kind"] == "welcome") & (visits["outcome"] == "reached")]
    orders = crm["orders"].set_index("order_id").loc[reached["order_id"]]
    ordered = orders["ordered_at"].dt.normalize()
    first = calendar.add_working_days_to_date(ordered, 1)
    last = calendar.add_working_days_to_date(ordered, 3)
    day = reached["visited_at"].dt.normalize().to_numpy().astype("datetime64[D]")
    on_time = (day >= first) & (day <= last)
    assert 0.8 < on_time.mean() < 1.0


def test_visit_times_avoid_lunch_and_night(crm: Frames) -> None:
    hours = crm["visits"]["visited_at"].dt.hour
    assert hours.between(9, 17).all()
    assert not hours.between(12, 13).any()


def test_some_customers_are_unreachable(crm: Frames) -> None:
    visits = crm["visits"].fillna({"order_id": "", "ticket_id": ""})
    due = ["customer_id", "kind", "order_id", "ticket_id"]
    failed = visits[visits["outcome"].isin(["no_answer", "wrong_number"])].groupby(due).size()
    reached = visits[visits["outcome"] == "reached"].set_index(due).index
    unreachable = failed[(failed >= 3) & ~failed.index.isin(reached)]
    assert len(unreachable) >= 3


def test_visit_satisfaction_and_notes(crm: Frames) -> None:
    visits = crm["visits"]
    rated = visits.dropna(subset=["satisfaction"])
    assert rated["satisfaction"].between(1, 10).all()
    assert (rated["outcome"] == "reached").all()
    assert (rated["satisfaction"] < 6).any()
    assert visits["notes"].str.contains(r"[\u4e00-\u9fff]").all()


# ------------------------------------------------------------------ scale
def test_row_counts_scale_with_customers() -> None:
    small = {k: len(v) for k, v in generate_frames(300, seed=11).items()}
    large = {k: len(v) for k, v in generate_frames(1200, seed=11).items()}
    assert large["customers"] == 4 * small["customers"] == 1200
    for name in ("orders", "tickets", "visits"):
        assert 3.3 < large[name] / small[name] < 4.7, name
    assert 1.8 < large["orders"] / 1200 < 3.0
    assert 0.6 < large["tickets"] / 1200 < 1.0


def test_a_million_customers_come_in_bounded_chunks() -> None:
    """The generator is lazy: at 1,000,000 customers the first chunk is only `chunk_customers`
    customers, with an organisation sized for the whole CRM and ids wide enough for it."""
    chunks = generate(1_000_000, seed=7, chunk_customers=200)
    first = next(chunks)
    assert len(first["customers"]) == 200
    assert len(first["visits"]) < 200 * 30
    agents = first["agents"]
    assert 1_000_000 / 900 < (agents["role"] == "agent").sum() < 1_000_000 / 700
    assert agents["agent_id"].str.fullmatch(r"A\d{4}").all()
    assert make_ids("C", 1_000_000, 1).tolist() == ["C1000000"]
    chunks.close()


@pytest.mark.parametrize(("customers", "chunk"), [(1, 20_000), (3, 1), (40, 7)])
def test_tiny_crms_and_chunks_without_tickets_work(customers: int, chunk: int) -> None:
    for seed in range(8):
        frames = generate_frames(customers, seed=seed, chunk_customers=chunk)
        assert len(frames["customers"]) == customers
        for name, table in TABLES.items():
            assert list(frames[name].columns) == list(table.columns), name
            assert not frames[name].duplicated(list(table.key)).any(), name


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="customers"):
        next(generate(0))
    with pytest.raises(ValueError, match="customers"):
        next(generate(10_000_000))
    with pytest.raises(ValueError, match="chunk_customers"):
        next(generate(10, chunk_customers=0))
    with pytest.raises(ValueError, match="as_of"):
        next(generate(10, as_of=dt.date(2016, 1, 1)))


# ------------------------------------------------------------------ ids and DDL
def test_make_ids_pads_and_refuses_overflow() -> None:
    assert make_ids("C", 123, 2).tolist() == ["C0000123", "C0000124"]
    assert make_ids("T", 1, 0).tolist() == []
    with pytest.raises(ValueError, match="width"):
        make_ids("D", 99, 2)


def _created_columns(statements: list[str]) -> dict[str, list[str]]:
    tables = {}
    for statement in statements:
        match = re.match(r"CREATE TABLE (\w+) \((.*)\)", statement, flags=re.S)
        if match:
            lines = [line.strip() for line in match.group(2).splitlines() if line.strip()]
            tables[match.group(1)] = [line.split()[0] for line in lines
                                      if not line.startswith("PRIMARY KEY")]
    return tables


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql", "mariadb"])
def test_schema_sql_is_the_canonical_model(dialect: str) -> None:
    statements = ddl_statements(CRM_SCHEMA, dialect)
    assert not any("{{" in s or "--" in s for s in statements)
    created = _created_columns(statements)
    assert created == {name: list(table.columns) for name, table in TABLES.items()}
    indexes = [s for s in statements if s.startswith("CREATE INDEX")]
    for name, table in TABLES.items():
        for col in table.references:
            if (name, col) != ("ticket_pauses", "ticket_id"):  # leads the primary key
                assert any(f"ON {name} ({col})" in s for s in indexes), (name, col)
    for name, col in (("tickets", "created_at"), ("visits", "visited_at"),
                      ("orders", "ordered_at")):
        assert any(f"ON {name} ({col})" in s for s in indexes)
    ddl = "\n".join(statements)
    if dialect in ("mysql", "mariadb"):
        assert "DATETIME" in ddl and "TIMESTAMP" not in ddl and "utf8mb4" in ddl
    else:
        assert "TIMESTAMP" in ddl and "DATETIME" not in ddl


def test_schema_for_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(SchemaFileError, match="oracle"):
        ddl_statements(CRM_SCHEMA, "oracle")


def test_ddl_with_an_unknown_placeholder_is_refused(tmp_path) -> None:
    ddl = tmp_path / "bad.sql"
    ddl.write_text("CREATE TABLE t (a {{timestamp}}, b {{money}}); -- comment\n", "utf-8")
    with pytest.raises(SchemaFileError, match=r"\{\{money\}\}"):
        ddl_statements(ddl, "sqlite")
    ddl.write_text("CREATE TABLE t (a {{ timestamp }}) {{table_options}};\n-- end\n", "utf-8")
    assert ddl_statements(ddl, "mariadb") == [
        "CREATE TABLE t (a DATETIME) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "COLLATE=utf8mb4_unicode_ci"]


def test_entry_errors_touch_a_seeded_share_and_the_quality_gate_catches_each(tmp_path, policy):
    from revisit.io.extract import extract_snapshot, read_snapshot
    from revisit.quality.gate import run_quality_gate
    from tooling.demo_crm import add_entry_errors, build_demo_crm

    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    build_demo_crm(url, customers=300, as_of=dt.date(2026, 11, 20))
    touched = add_entry_errors(url, 0.01, seed=3)
    assert touched == add_entry_errors(url, 0.01, seed=3)  # same seed, same rows
    assert len(touched["customers"]) == 3  # 1 % of 300
    extract_snapshot(url, dt.date(2026, 11, 21), tmp_path / "snap",
                     business_tz=policy.calendar.timezone)
    result = run_quality_gate(read_snapshot(tmp_path / "snap"), policy)
    own = result.quarantine[result.quarantine["check"] != "parent_quarantined"]
    for name, keys in touched.items():
        assert set(own.loc[own["table"] == name, "row_key"]) == set(keys), name
    assert not result.stopped


def test_entry_error_share_outside_zero_to_one_is_refused(tmp_path):
    from tooling.demo_crm import add_entry_errors

    with pytest.raises(ValueError, match="entry error share"):
        add_entry_errors(f"sqlite:///{tmp_path / 'crm.sqlite'}", 1.5)
