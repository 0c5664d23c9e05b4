"""Policy profiles (include/config/profiles/): complete, validated policies a run picks by name.

`feedback-form` is policy.yaml (001's matrix); `after-sales-handbook` is policy.yaml with 003's
SLA matrix. The two may differ only in ALLOWED_DIFFERENCES, so an edit to one of them that is
not made to the other fails here instead of drifting silently.

Deadlines under 003 are computed by hand, as in tests/unit/rules/test_sla.py (same calendar:
CN 2026, business hours 09:00-18:00, Asia/Shanghai): Wed 09-30 working; Thu 10-01 .. Wed 10-07
closed (National Day); Thu 10-08, Fri 10-09 working; Sat 10-10 adjusted working day; Sun
10-11 closed; Mon 10-12 .. working. The run is for D = Tue 2026-10-13.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from revisit.config.policy import (
    DEFAULT_POLICY_PATH,
    PROFILES_DIR,
    PolicyError,
    load_policy,
    load_profile,
    policy_version,
    profile_path,
)
from revisit.rules.calendar import BusinessCalendar
from revisit.rules.sla import sla_status
from tests.unit.rules.test_sla import CUTOFF, L, ticket, tickets_frame

PROFILES = ("after-sales-handbook", "feedback-form")
# The only keys (dotted paths) in which the handbook's profile may differ from the form's.
ALLOWED_DIFFERENCES = ("sla.targets", "sla.escalate_priorities")


def _data(name: str) -> dict:
    return yaml.safe_load(profile_path(name).read_text(encoding="utf-8"))


def _without(data: dict, dotted: tuple[str, ...]) -> dict:
    out = copy.deepcopy(data)
    for path in dotted:
        *parents, last = path.split(".")
        node = out
        for key in parents:
            node = node[key]
        node.pop(last, None)
    return out


@pytest.fixture(scope="module")
def handbook():
    return load_profile("after-sales-handbook")


@pytest.fixture(scope="module")
def handbook_calendar(handbook):
    return BusinessCalendar(handbook.calendar)


def run_handbook(handbook, calendar, *rows):
    return sla_status(tickets_frame(*rows), None, handbook, calendar, CUTOFF)


def deadline(out, ticket_id: str, metric: str):
    hit = out[(out["ticket_id"] == ticket_id) & (out["metric"] == metric)]
    assert len(hit) == 1, f"expected one row for {ticket_id}/{metric}, got {len(hit)}"
    return hit.iloc[0]["deadline"]


# ===================================================================== the files
@pytest.mark.parametrize("name", PROFILES)
def test_every_shipped_profile_validates(name):
    policy = load_profile(name)
    assert policy.version == policy_version(profile_path(name).read_bytes())


def test_the_shipped_profiles_are_exactly_the_two_of_the_design():
    assert sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")) == sorted(PROFILES)


def test_feedback_form_is_policy_yaml_byte_for_byte():
    # Same bytes, same policy_version: selecting the profile by name changes no result.
    form = profile_path("feedback-form")
    assert form.read_bytes() == DEFAULT_POLICY_PATH.read_bytes()
    assert load_profile("feedback-form").version == load_policy(DEFAULT_POLICY_PATH).version


def test_the_profiles_differ_only_in_the_sla_matrix_and_its_escalation():
    form, handbook = _data("feedback-form"), _data("after-sales-handbook")
    assert _without(handbook, ALLOWED_DIFFERENCES) == _without(form, ALLOWED_DIFFERENCES), (
        "after-sales-handbook.yaml drifted from policy.yaml outside "
        f"{', '.join(ALLOWED_DIFFERENCES)}: re-sync it (README, Policy profiles)")
    for path in ALLOWED_DIFFERENCES:  # and they do differ there: the profile is no stale copy
        section, key = path.split(".")
        assert handbook[section][key] != form[section][key], path


def test_the_handbook_matrix_is_003s(handbook):
    targets = {p: {m: str(d) for m, d in t.items()} for p, t in handbook.sla.targets.items()}
    after = {"resolution": "48 hours", "verification": "1 working_days",
             "result_feedback": "24 hours"}
    assert targets == {
        "urgent": {"first_response": "2 business_hours", "plan": "24 hours", **after},
        "important": {"first_response": "4 business_hours", "plan": "48 hours", **after},
        "general": {"first_response": "24 hours", **after},
    }
    assert handbook.sla.escalate_priorities == ("urgent", "important")
    assert handbook.profile == "after-sales-handbook"


def test_an_unknown_profile_fails_naming_the_known_ones():
    with pytest.raises(PolicyError, match=re.escape(
            "no policy profile 'acme' (profiles: after-sales-handbook, feedback-form)")):
        load_profile("acme")


# ===================================================================== 003's deadlines
def test_urgent_across_a_weekend(handbook, handbook_calendar):
    # Fri 10-09 17:00, urgent:
    #   first_response 2 business_hours: 1 h Fri (17-18) + 1 h Sat 10-10 (adjusted working
    #     day, 09-10) -> Sat 10-10 10:00;
    #   plan 24 hours (wall clock) -> Sat 10-10 17:00;
    #   resolution 48 hours (wall clock, through the closed Sunday) -> Sun 10-11 17:00;
    #   verification 1 working_days: the next working day after Fri is Sat 10-10 -> 18:00.
    out = run_handbook(handbook, handbook_calendar, ticket("U1", "urgent", "2026-10-09 17:00"))
    assert deadline(out, "U1", "first_response") == L("2026-10-10 10:00")
    assert deadline(out, "U1", "plan") == L("2026-10-10 17:00")
    assert deadline(out, "U1", "resolution") == L("2026-10-11 17:00")
    assert deadline(out, "U1", "verification") == L("2026-10-10 18:00")


def test_general_across_national_day(handbook, handbook_calendar):
    # Wed 09-30 17:30, general:
    #   first_response 24 hours (wall clock) -> Thu 10-01 17:30, a holiday;
    #   resolution 48 hours -> Fri 10-02 17:30;
    #   verification 1 working_days: Thu 10-01 .. Wed 10-07 closed -> Thu 10-08 18:00;
    #   no plan (neither 001 nor 003 gives 一般 one).
    out = run_handbook(handbook, handbook_calendar, ticket("G1", "general", "2026-09-30 17:30"))
    assert deadline(out, "G1", "first_response") == L("2026-10-01 17:30")
    assert deadline(out, "G1", "resolution") == L("2026-10-02 17:30")
    assert deadline(out, "G1", "verification") == L("2026-10-08 18:00")
    assert "plan" not in set(out["metric"])


def test_important_plan_is_48_hours_and_result_feedback_24_hours(handbook, handbook_calendar):
    # Thu 10-08 16:00, important, resolved Fri 10-09 12:00:
    #   first_response 4 business_hours: 2 h Thu (16-18) + 2 h Fri (09-11) -> Fri 10-09 11:00;
    #   plan 48 hours -> Sat 10-10 16:00 (001: 3 working_days -> Tue 10-13 18:00);
    #   result_feedback 24 hours from resolved_at -> Sat 10-10 12:00.
    out = run_handbook(handbook, handbook_calendar, ticket(
        "I1", "important", "2026-10-08 16:00", first_response_at="2026-10-08 16:30",
        resolved_at="2026-10-09 12:00", status="resolved"))
    assert deadline(out, "I1", "first_response") == L("2026-10-09 11:00")
    assert deadline(out, "I1", "plan") == L("2026-10-10 16:00")
    assert deadline(out, "I1", "result_feedback") == L("2026-10-10 12:00")
    assert set(out["policy_version"]) == {handbook.version}
