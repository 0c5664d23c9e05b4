"""The policy file is loaded into a typed model; a bad value fails with its key path."""

from __future__ import annotations

import copy

import pytest
import yaml

from revisit.config.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def _error(data: dict) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "test.yaml")
    return str(caught.value)


def test_default_policy_holds_the_design_numbers(policy):
    assert policy.calendar.country == "CN"
    assert policy.calendar.timezone == "Asia/Shanghai"
    assert [(h.start, h.end) for h in policy.calendar.hours] == [(9 * 60, 18 * 60)]
    assert policy.visits.max_overdue_days == 30
    assert policy.visits.max_failed_attempts == 3
    assert policy.visits.report_missed_days == 30
    assert policy.assignment.daily_capacity == 40
    assert policy.sla.at_risk_share == 0.75
    targets = {p: {m: str(d) for m, d in t.items()} for p, t in policy.sla.targets.items()}
    day = {"verification": "1 working_days", "result_feedback": "1 working_days"}
    assert targets == {
        "urgent": {"first_response": "2 business_hours", "plan": "24 hours", **day},
        "important": {"first_response": "4 business_hours", "plan": "3 working_days", **day},
        "general": {"first_response": "8 business_hours", "resolution": "5 working_days", **day},
    }
    assert policy.sla.metrics["result_feedback"].start == "resolved_at"
    assert str(policy.visits.kinds["stable_use"].length) == "5 working_days"
    assert policy.source_tz == "Asia/Shanghai"


def test_unknown_key_fails_with_its_path(raw):
    raw["visits"]["max_overdue_dayz"] = 10
    assert "visits.max_overdue_dayz: unknown key" in _error(raw)


def test_wrong_type_fails_with_its_path(raw):
    raw["assignment"]["daily_capacity"] = "forty"
    assert "assignment.daily_capacity" in _error(raw)


def test_negative_duration_fails(raw):
    raw["sla"]["targets"]["urgent"]["first_response"] = "-2 business_hours"
    assert "sla.targets.urgent.first_response" in _error(raw)


def test_zero_duration_target_fails(raw):
    raw["sla"]["targets"]["urgent"]["first_response"] = "0 business_hours"
    assert "targets.urgent.first_response: must be positive" in _error(raw)


def test_unknown_duration_unit_fails(raw):
    raw["sla"]["targets"]["general"]["resolution"] = "5 fortnights"
    message = _error(raw)
    assert "sla.targets.general.resolution.unit" in message


def test_closing_before_opening_fails(raw):
    raw["calendar"]["hours"] = [["18:00", "09:00"]]
    message = _error(raw)
    assert "calendar.hours.0" in message and "closing 09:00 is not after opening 18:00" in message


def test_overlapping_business_hours_fail(raw):
    raw["calendar"]["hours"] = [["09:00", "13:00"], ["12:00", "18:00"]]
    assert "overlap" in _error(raw)


def test_impossible_time_of_day_fails(raw):
    raw["calendar"]["hours"] = [["09:00", "25:00"]]
    assert "calendar.hours.0" in _error(raw)


def test_lunch_break_is_two_sorted_intervals(raw):
    raw["calendar"]["hours"] = [["13:30", "18:00"], ["09:00", "12:00"]]
    policy = parse_policy(raw)
    assert [str(h) for h in policy.calendar.hours] == ["09:00-12:00", "13:30-18:00"]
    assert policy.calendar.opening == 9 * 60 and policy.calendar.closing == 18 * 60


def test_unknown_timezone_and_country_fail(raw):
    raw["calendar"]["timezone"] = "Mars/Olympus"
    raw["calendar"]["country"] = "XX"
    message = _error(raw)
    assert "calendar.timezone: unknown time zone 'Mars/Olympus'" in message
    assert "calendar.country" in message


def test_share_out_of_range_fails(raw):
    raw["sla"]["at_risk_share"] = 1.5
    assert "sla.at_risk_share" in _error(raw)


def test_target_for_unknown_metric_fails(raw):
    raw["sla"]["targets"]["urgent"]["teleport"] = "1 hours"
    assert "targets.urgent.teleport: unknown metric" in _error(raw)


def test_missing_visit_kind_fails(raw):
    del raw["visits"]["kinds"]["welcome"]
    assert "visits.kinds: missing visit kinds: welcome" in _error(raw)


def test_window_needs_exactly_one_end(raw):
    broken = copy.deepcopy(raw)
    broken["visits"]["kinds"]["welcome"]["length"] = "3 working_days"
    assert "visits.kinds.welcome: give exactly one of 'end' and 'length'" in _error(broken)


def test_visit_window_in_business_hours_fails(raw):
    raw["visits"]["kinds"]["early_use"]["start"] = "7 business_hours"
    assert "visits.kinds.early_use: start: visit windows are whole days" in _error(raw)


def test_day_both_holiday_and_workday_fails(raw):
    raw["calendar"]["extra_holidays"] = ["2026-12-24"]
    raw["calendar"]["extra_workdays"] = ["2026-12-24"]
    assert "2026-12-24 is both" in _error(raw)


def test_env_points_to_another_policy_file(tmp_path, raw, monkeypatch):
    raw["assignment"]["daily_capacity"] = 25
    other = tmp_path / "policy.yaml"
    other.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("REVISIT_POLICY", str(other))
    assert load_policy().assignment.daily_capacity == 25


def test_missing_and_malformed_files_fail_clearly(tmp_path):
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("calendar: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)


def test_report_missed_days_is_validated_and_defaults_to_30(raw):
    for bad in (-1, "thirty", 2.5):
        broken = copy.deepcopy(raw)
        broken["visits"]["report_missed_days"] = bad
        assert "visits.report_missed_days" in _error(broken), bad
    raw["visits"]["report_missed_days"] = 0
    assert parse_policy(raw).visits.report_missed_days == 0
    del raw["visits"]["report_missed_days"]
    assert parse_policy(raw).visits.report_missed_days == 30


def test_report_highlight_thresholds_are_validated_and_default(raw):
    raw["report"]["highlights"]["rate_points"] = 0
    assert "report.highlights.rate_points" in _error(raw)
    del raw["report"]["highlights"]
    assert parse_policy(raw, "test.yaml").report.highlights.rate_points == 0.02


def test_a_bad_address_in_notify_data_team_fails_at_load_with_its_path(raw, tmp_path):
    assert parse_policy(raw).notify.data_team == ["data-team@revisit.example.com"]
    raw["notify"]["data_team"] = ["data-team@revisit.example.com", "data team at example"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert str(path.resolve()) in message
    assert "notify.data_team: not an e-mail address: 'data team at example'" in message
    assert "data-team@revisit.example.com" not in message  # only the bad one is named
    for bad in ("ops@", "ops@localhost", "数据组@example.com", 42):
        raw["notify"]["data_team"] = [bad]
        assert "notify.data_team" in _error(raw), bad


# ----------------------------------------------------------------------------- every error
# names its file and key path, and every number is bounded.
def _load_error(tmp_path, text: str | bytes) -> tuple[str, str]:
    """(the PolicyError of a policy file holding `text`, the file's resolved path)."""
    path = tmp_path / "policy.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(caught.value), str(path.resolve())


def _default_text() -> str:
    return DEFAULT_POLICY_PATH.read_text(encoding="utf-8")


def test_an_impossible_date_is_named_with_its_file_and_key_path(tmp_path):
    text = _default_text().replace("extra_holidays: []", "extra_holidays: [2026-12-24, 2026-02-30]")
    message, path = _load_error(tmp_path, text)
    assert message.startswith(f"{path}: calendar.extra_holidays.1: not a date: '2026-02-30'")


def test_a_file_that_is_not_utf8_is_named_with_the_line_of_the_bad_byte(tmp_path):
    text = _default_text().replace("country: CN ", "country: CN # Révisit")
    message, path = _load_error(tmp_path, text.encode("utf-8").replace("é".encode(), b"\xe9"))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "Révisit" in row)
    assert message == f"{path}: not UTF-8 text: byte 0xe9 on line {line} (save the file as UTF-8)"


def test_invalid_yaml_is_named_with_its_file_line_and_column(tmp_path):
    message, path = _load_error(tmp_path, _default_text().replace("trend_months: 6",
                                                                  "trend_months: [6"))
    assert message.startswith(f"{path}: not valid YAML at line ")
    assert "column" in message and "\n" not in message


def test_a_key_given_twice_fails_instead_of_the_last_one_winning_silently(tmp_path):
    text = _default_text().replace("  trend_months: 6\n", "  trend_months: 6\n  trend_months: 60\n")
    message, path = _load_error(tmp_path, text)
    line = text.splitlines().index("  trend_months: 60") + 1
    assert message == (f"{path}: not valid YAML at line {line}, column 3: "
                       "key 'trend_months' appears twice")


def test_an_absurd_duration_is_bounded_to_ten_years_in_its_unit(raw):
    broken = copy.deepcopy(raw)
    broken["visits"]["kinds"]["welcome"]["end"] = "99999999999999 working_days"
    broken["sla"]["targets"]["general"]["resolution"] = "87601 business_hours"
    message = _error(broken)
    assert ("test.yaml: visits.kinds.welcome.end: 99999999999999 working_days is longer than "
            "3650 days: at most 3650 working_days") in message
    assert "test.yaml: sla.targets.general.resolution: 87601 business_hours" in message
    raw["visits"]["kinds"]["welcome"]["end"] = "3650 working_days"
    raw["sla"]["targets"]["general"]["resolution"] = "87600 business_hours"
    assert str(parse_policy(raw).visits.kinds["welcome"].end) == "3650 working_days"


def test_empty_or_backwards_visit_windows_fail(raw):
    broken = copy.deepcopy(raw)
    broken["visits"]["kinds"]["stable_use"]["length"] = "0 working_days"
    broken["visits"]["kinds"]["welcome"]["end"] = "1 working_days"  # = its start
    message = _error(broken)
    assert "visits.kinds.stable_use: length: must be positive, got 0 working_days" in message
    assert "visits.kinds.welcome: end: 1 working_days is not after start 1 working_days" in message


@pytest.mark.parametrize(("keys", "bad", "good"), [
    (("assignment", "daily_capacity"), [0, -5, 10_001], 10_000),
    (("visits", "max_failed_attempts"), [0, 101], 100),
    (("visits", "max_overdue_days"), [-1, 3651], 3650),
    (("visits", "report_missed_days"), [-1, 3651], 0),
    (("sms_notice", "days_ahead"), [0, 366], 365),
    (("report", "top_categories"), [0, 101], 100),
    (("report", "worst_breaches"), [0, 1001], 1000),
    (("report", "max_text_chars"), [0, 9, 1001], 10),
    (("report", "render_timeout_seconds"), [0, -1, 3001], 3000),
    (("report", "targets", "median_handling_hours"), [0, -1, 87_601], 87_600),
    (("report", "highlights", "max_lines"), [0, 51], 50),
    (("quality", "phone_digits"), [[0, 15], [15, 7], [7, 33]], [7, 32]),
], ids=lambda v: ".".join(v) if isinstance(v, tuple) else None)
def test_every_number_is_bounded_and_names_its_key_path(raw, keys, bad, good):
    *parents, key = keys
    for value in bad:
        broken = copy.deepcopy(raw)
        target = broken
        for parent in parents:
            target = target[parent]
        target[key] = value
        assert f"test.yaml: {'.'.join(keys)}: " in _error(broken), value
    target = raw
    for parent in parents:
        target = target[parent]
    target[key] = good
    parse_policy(raw)


def test_every_error_line_starts_with_the_file(raw):
    raw["assignment"]["daily_capacity"] = 0
    raw["calendar"]["extra_holidays"] = ["2026-02-30"]
    raw["visits"]["unknown_rule"] = 1
    lines = _error(raw).splitlines()
    assert len(lines) == 3 and all(line.startswith("test.yaml: ") for line in lines), lines
    assert "test.yaml: calendar.extra_holidays.0: not a date: '2026-02-30'" in lines[0]


def test_the_report_bounds_default_to_a_short_text_and_a_five_minute_render(policy):
    assert policy.report.max_text_chars == 80
    assert policy.report.render_timeout_seconds == 300


def test_visit_policy_switches_and_events(policy, raw):
    visits = policy.visits
    assert visits.after_refusal == "end" and visits.early_tolerance_days == 0
    assert visits.kinds["major_complaint"].priorities == ["urgent", "important"]
    assert str(visits.kinds["major_complaint"].start) == "0 days"
    assert all(event.date.year == 2026 for event in visits.events)
    broken = copy.deepcopy(raw)
    broken["visits"]["after_refusal"] = "ignore"
    broken["visits"]["early_tolerance_days"] = -1
    broken["visits"]["kinds"]["welcome"]["enabled"] = "sometimes"
    broken["visits"]["kinds"]["major_complaint"]["priorities"] = ["critical"]
    broken["visits"]["events"] = [{"name": "X", "product": "P", "date": "2026-02-30"},
                                  {"name": "Y", "product": "P"}]
    message = _error(broken)
    for key in ("visits.after_refusal", "visits.early_tolerance_days",
                "visits.kinds.welcome.enabled", "visits.kinds.major_complaint.priorities.0",
                "visits.events.0.date", "visits.events.1.date"):
        assert f"test.yaml: {key}: " in message, key
    twice = copy.deepcopy(raw)
    twice["visits"]["events"] = [{"name": "X", "product": "P", "date": "2026-10-12"}] * 2
    assert "event names appear twice: X" in _error(twice)
    off = copy.deepcopy(raw)
    off["visits"]["kinds"]["periodic"]["enabled"] = False
    assert not parse_policy(off).visits.kinds["periodic"].enabled
