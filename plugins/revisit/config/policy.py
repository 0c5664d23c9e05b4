"""The business policy (include/config/policy.yaml) as a typed, validated model.

Every number of the visit, SLA, calendar and report rules comes from here, so a company can
fill the blanks of its own 回访制度 without touching code. Loading fails loudly with the key
path of every bad value: a silently ignored typo in a policy would change who gets called.

Every error line starts with the file and names the key path
(`/x/policy.yaml: calendar.extra_holidays.0: not a date: '2026-02-30'`), also for a file that
is not UTF-8, is not YAML or repeats a key; every number has bounds (MAX_DAYS: a duration
longer than ten years is a typo, and beyond what revisit.rules.calendar covers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from revisit.config.paths import PROJECT_ROOT

DEFAULT_POLICY_PATH = PROJECT_ROOT / "include" / "config" / "policy.yaml"
# Complete, validated policies a run may choose by name (DESIGN.md "Configuration": policy
# profiles); policy.yaml is the default one.
PROFILES_DIR = PROJECT_ROOT / "include" / "config" / "profiles"
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Unit = Literal["business_hours", "working_days", "hours", "days"]
Priority = Literal["urgent", "important", "general"]
VisitKind = Literal[
    "welcome", "early_use", "stable_use", "long_term", "post_resolution", "periodic", "key_account",
    "new_product", "major_complaint", "product_upgrade",
]
TicketType = Literal["complaint", "consultation", "suggestion", "requirement", "repair", "other"]
TicketTimestamp = Literal[
    "created_at", "first_response_at", "verified_at", "plan_at", "resolved_at",
    "result_fed_back_at", "closed_at",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+([a-z_]+)\s*$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
# The longest duration or day count a policy may hold: ten years, well inside the calendar's
# years (revisit.rules.calendar.DEFAULT_YEARS, 2015-2040).
MAX_DAYS = 3650
_MAX_AMOUNT = {"days": MAX_DAYS, "working_days": MAX_DAYS, "hours": MAX_DAYS * 24,
               "business_hours": MAX_DAYS * 24}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the key path and the reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Model):
    """An amount of time on one of the four clocks of DESIGN.md."""

    amount: float = Field(ge=0)
    unit: Unit

    @model_validator(mode="after")
    def _bounded(self) -> Duration:
        if self.amount > _MAX_AMOUNT[self.unit]:
            raise ValueError(f"{self} is longer than {MAX_DAYS} days: at most "
                             f"{_MAX_AMOUNT[self.unit]} {self.unit}")
        return self

    def __str__(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"{amount} {self.unit}"


def _parse_duration(value: object) -> object:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected '<amount> <unit>', e.g. '3 working_days', got {value!r}")
        return {"amount": float(match.group(1)), "unit": match.group(2)}
    return value


DurationField = Annotated[Duration, BeforeValidator(_parse_duration)]


def _parse_time(value: object) -> int:
    """'HH:MM' -> minutes after midnight (24:00 allowed as an end)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a time 'HH:MM', got {value!r}")
    match = _TIME.match(value.strip())
    if not match:
        raise ValueError(f"expected a time 'HH:MM', got {value!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{value!r} is not a time of day")
    return hours * 60 + minutes


class TimeRange(_Model):
    """A [start, end) interval of a day, in minutes after midnight."""

    start: int
    end: int

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"expected [opening, closing], got {value!r}")
            return {"start": _parse_time(value[0]), "end": _parse_time(value[1])}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError(
                f"closing {_fmt_minutes(self.end)} is not after opening {_fmt_minutes(self.start)}"
            )
        return self

    def __str__(self) -> str:
        return f"{_fmt_minutes(self.start)}-{_fmt_minutes(self.end)}"


def _fmt_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_disjoint(ranges: list[TimeRange], what: str) -> list[TimeRange]:
    ordered = sorted(ranges, key=lambda r: r.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ValueError(f"{what} {before} and {after} overlap")
    return ordered


class CalendarPolicy(_Model):
    country: str = Field(min_length=2)
    timezone: str
    hours: list[TimeRange] = Field(min_length=1)
    extra_holidays: list[dt.date] = []
    extra_workdays: list[dt.date] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        import holidays

        if value not in holidays.list_supported_countries():
            raise ValueError(f"country {value!r} is not supported by the holidays package")
        return value

    @field_validator("hours")
    @classmethod
    def _disjoint_hours(cls, value: list[TimeRange]) -> list[TimeRange]:
        return _check_disjoint(value, "business hours")

    @model_validator(mode="after")
    def _no_day_both(self) -> CalendarPolicy:
        both = sorted(set(self.extra_holidays) & set(self.extra_workdays))
        if both:
            raise ValueError(f"{both[0]} is both an extra holiday and an extra workday")
        return self

    @property
    def opening(self) -> int:
        return self.hours[0].start

    @property
    def closing(self) -> int:
        """Minutes after midnight when the working day ends (deadline of working_days targets)."""
        return self.hours[-1].end


class WindowRule(_Model):
    """A visit window: it opens `start` after the anchor event; it ends at `end` after the
    anchor, or `length` after the opening day."""

    start: DurationField
    end: DurationField | None = None
    length: DurationField | None = None
    ticket_types: list[TicketType] | None = None
    priorities: list[Priority] | None = None  # major_complaint: the priorities that owe it
    min_cooperation_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)
    enabled: bool = True  # false: the kind owes no visit (not listed, not in the KPI)

    @model_validator(mode="after")
    def _one_end(self) -> WindowRule:
        if (self.end is None) == (self.length is None):
            raise ValueError("give exactly one of 'end' and 'length'")
        for name in ("start", "end", "length"):
            value = getattr(self, name)
            if value is not None and value.unit not in ("days", "working_days"):
                raise ValueError(f"{name}: visit windows are whole days, not {value.unit}")
        if self.length is not None and self.length.amount <= 0:
            raise ValueError(f"length: must be positive, got {self.length}")
        if (self.end is not None and self.end.unit == self.start.unit
                and self.end.amount <= self.start.amount):
            raise ValueError(f"end: {self.end} is not after start {self.start}")
        return self


class LowSatisfaction(_Model):
    visit_below: float = Field(gt=0, le=10)
    ticket_at_most: float = Field(ge=1, le=5)


class UpgradeEvent(_Model):
    """An announced product upgrade (visits.events): customers with a delivered order of
    `product` before `date` owe one product_upgrade visit."""

    name: str = Field(min_length=1, max_length=200)
    product: str = Field(min_length=1, max_length=200)
    date: dt.date


class VisitPolicy(_Model):
    max_overdue_days: int = Field(ge=0, le=MAX_DAYS)
    max_failed_attempts: int = Field(ge=1, le=100)
    # Days in the daily not_listed report; the rule: revisit.rules.calllist._reported.
    report_missed_days: int = Field(default=30, ge=0, le=MAX_DAYS)
    low_satisfaction: LowSatisfaction
    kinds: dict[VisitKind, WindowRule]
    # The rules: revisit.rules.visits (obligation_status, on_time); values in policy.yaml.
    after_refusal: Literal["end", "retry"] = "end"
    early_tolerance_days: int = Field(default=0, ge=0, le=MAX_DAYS)
    events: list[UpgradeEvent] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _distinct_events(cls, value: list[UpgradeEvent]) -> list[UpgradeEvent]:
        names = [event.name for event in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"event names appear twice: {', '.join(twice)}")
        return value

    @field_validator("kinds")
    @classmethod
    def _all_kinds(cls, value: dict[str, WindowRule]) -> dict[str, WindowRule]:
        missing = sorted(set(VisitKind.__args__) - set(value))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"missing visit kinds: {', '.join(missing)}")
        return value


class AssignmentPolicy(_Model):
    daily_capacity: int = Field(ge=1, le=10_000)
    key_tier_to_supervisor: bool = True


class CallWindowPolicy(_Model):
    avoid: list[TimeRange]

    @field_validator("avoid")
    @classmethod
    def _sorted(cls, value: list[TimeRange]) -> list[TimeRange]:
        return sorted(value, key=lambda r: r.start)


class SmsPolicy(_Model):
    days_ahead: int = Field(ge=1, le=365)


class SlaMetric(_Model):
    start: TicketTimestamp
    achieved: TicketTimestamp

    @model_validator(mode="after")
    def _different(self) -> SlaMetric:
        if self.start == self.achieved:
            raise ValueError("start and achieved must be different events")
        return self


class SlaPolicy(_Model):
    at_risk_share: float = Field(gt=0, lt=1)
    metrics: dict[str, SlaMetric] = Field(min_length=1)
    targets: dict[Priority, dict[str, DurationField]]
    # Priorities whose at-risk / breached rows also go to the department's supervisors
    # (revisit.delivery.digest, mail kind escalation); [] switches escalation off.
    escalate_priorities: tuple[str, ...] = ("urgent",)

    @field_validator("escalate_priorities")
    @classmethod
    def _known_priorities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from revisit.config.schema import PRIORITIES  # pyarrow: not at policy import

        unknown = [p for p in value if p not in PRIORITIES]
        if unknown:
            raise ValueError(f"unknown priorities {', '.join(map(repr, unknown))} "
                             f"(expected some of {', '.join(PRIORITIES)})")
        if len(set(value)) != len(value):
            raise ValueError("a priority is listed twice")
        return value

    @model_validator(mode="after")
    def _targets_known(self) -> SlaPolicy:
        missing = sorted(set(Priority.__args__) - set(self.targets))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"targets: missing priorities {', '.join(missing)}")
        for priority, targets in self.targets.items():
            for metric, duration in targets.items():
                if metric not in self.metrics:
                    raise ValueError(f"targets.{priority}.{metric}: unknown metric")
                if duration.amount <= 0:
                    raise ValueError(f"targets.{priority}.{metric}: must be positive")
        return self


class QualityPolicy(_Model):
    max_failure_share: float = Field(ge=0, le=1)
    phone_digits: tuple[int, int]

    @field_validator("phone_digits")
    @classmethod
    def _range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1 <= low <= high <= 32:
            raise ValueError(
                f"expected [fewest, most] with 1 <= fewest <= most <= 32, got {list(value)}")
        return value


class SchedulePolicy(_Model):
    call_lists_ready_by: int

    @field_validator("call_lists_ready_by", mode="before")
    @classmethod
    def _time(cls, value: object) -> int:
        return _parse_time(value)


class ReportTargets(_Model):
    visit_timeliness_rate: float = Field(ge=0, le=1)
    problem_resolution_rate: float = Field(ge=0, le=1)
    avg_satisfaction: float = Field(ge=0, le=100)
    complaint_satisfaction: float = Field(ge=0, le=100)
    sla_compliance_rate: float = Field(ge=0, le=1)
    median_handling_hours: float = Field(gt=0, le=MAX_DAYS * 24)


class ReportHighlights(_Model):
    """When a month-on-month move is worth a sentence in the report's highlights."""

    rate_points: float = Field(default=0.02, gt=0, le=1)  # rates: 0.02 = 2 percentage points
    score_points: float = Field(default=2.0, gt=0, le=100)  # satisfaction on the 0-100 scale
    hours_share: float = Field(default=0.10, gt=0, le=100)  # handling hours: relative change
    breaches_share: float = Field(default=0.20, gt=0, le=100)  # SLA breaches: relative ...
    breaches_min: int = Field(default=2, ge=1, le=100_000)  # ... and at least this many
    max_lines: int = Field(default=6, ge=1, le=50)


class ReportPolicy(_Model):
    locale: Literal["zh_CN", "en"]
    trend_months: int = Field(ge=1, le=24)
    top_categories: int = Field(ge=1, le=100)
    worst_breaches: int = Field(ge=1, le=1000)
    # Rows per table of the action page (agents with open visits, open SLA breaches): the
    # most urgent first; the page states the totals beyond them.
    action_rows: int = Field(default=10, ge=1, le=100)
    # The PDF's agent section: the strongest and the weakest this many agents by visit
    # timeliness (all of them when there are at most twice as many); the full table travels
    # as reports/M/<department_id>_agents.xlsx. Bounded: the page count, hence the render
    # time, grows with the rows (401 agents took 13 pages and 4 s).
    agent_rows: int = Field(default=5, ge=1, le=50)
    targets: ReportTargets
    highlights: ReportHighlights = ReportHighlights()
    # Every CRM text in the PDF and the e-mails is cut to this many characters ("…" marks
    # it; revisit.core.templating.shorten): WeasyPrint's time grows far faster than a text.
    max_text_chars: int = Field(default=80, ge=10, le=1000)
    # A department's PDF render is stopped after this long and fails that department only
    # (revisit.delivery.pdf.RenderTimeout); below the monthly DAG's 60-minute
    # execution_timeout, so the render's own, clearer error comes first.
    render_timeout_seconds: int = Field(default=300, ge=10, le=3000)


class NotifyPolicy(_Model):
    """Who hears about the pipeline itself (failed runs, a quality stop, late lists, refused
    deliveries), and who gets the company-level report (`leadership`: every department side
    by side, monthly and after each quarter; policy 004 回访总结报告应定期提交给上级领导):
    addresses, validated here so a typo fails at load, not on the day of an alert."""

    data_team: list[str] = Field(default_factory=list)
    leadership: list[str] = Field(default_factory=list)

    @field_validator("data_team", "leadership")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        from revisit.core.addresses import valid_address

        bad = [a for a in value if not valid_address(a)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
        return [a.strip() for a in value]


class RetentionPolicy(_Model):
    """How long the daily run keeps the partitions that hold personal data
    (revisit.stages.retention); the default and why: policy.yaml `retention`."""

    snapshot_days: int = Field(default=62, ge=1, le=MAX_DAYS)


class ScalePolicy(_Model):
    """How the work that grows with the customer base is cut into mapped tasks
    (revisit.rules.shards); the default and why: policy.yaml `scale`."""

    max_customers_per_shard: int = Field(default=150_000, ge=1)
    gate_chunk_rows: int = Field(default=500_000, ge=1)
    merge_rows: int = Field(default=200_000, ge=100)  # fewer: a pandas call per few rows


class Policy(_Model):
    calendar: CalendarPolicy
    source_timezone: str | None = None
    visits: VisitPolicy
    assignment: AssignmentPolicy
    call_windows: CallWindowPolicy
    sms_notice: SmsPolicy
    sla: SlaPolicy
    quality: QualityPolicy
    schedule: SchedulePolicy
    report: ReportPolicy
    retention: RetentionPolicy = RetentionPolicy()
    notify: NotifyPolicy = NotifyPolicy()
    scale: ScalePolicy = ScalePolicy()

    @field_validator("source_timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            CalendarPolicy._known_zone(value)
        return value

    # First 12 hex digits of the SHA-256 of the policy file's bytes (DESIGN.md, sla_status.csv
    # `policy_version`); set by load_policy / parse_policy, kept by model_copy.
    _version: str = PrivateAttr(default="")
    _source: str = PrivateAttr(default="")  # the file it was loaded from (resolved), if any

    @property
    def source_tz(self) -> str:
        return self.source_timezone or self.calendar.timezone

    @property
    def version(self) -> str:
        """Which policy made a result: policy_version(the file's bytes) for a loaded file; for
        a mapping parsed without a file, the same digest of its canonical JSON."""
        return self._version

    @property
    def profile(self) -> str:
        """The profile's name when the policy is one of PROFILES_DIR (policy.yaml links to
        one), else the file it came from; "" for a mapping parsed without a file."""
        source = Path(self._source) if self._source else None
        if source is not None and source.parent == PROFILES_DIR.resolve():
            return source.stem
        return str(source or "")


def _format_errors(path: Path, error: ValidationError) -> str:
    """One line per error: `<file>: <key path>: <reason>`."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"].startswith(("date_", "datetime_")):
            message = f"not a date: {item['input']!r} ({message.split(', ')[-1]})"
        lines.append(f"{path}: {loc or '<root>'}: {message}")
    return "\n".join(lines)


class _Loader(yaml.SafeLoader):
    """safe_load's loader, except that an impossible date (2026-02-30) stays text for the
    model to reject with its key path, and a key given twice is an error (safe_load keeps
    the last one silently)."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark)
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                break
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _yaml_error(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    return f"{path}: not valid YAML{where}: {problem}" + (f" ({context})" if context else "")


def policy_version(raw: bytes) -> str:
    """The first 12 hex digits of the SHA-256 of a policy file's bytes (its `version`)."""
    return hashlib.sha256(raw).hexdigest()[:12]


def parse_policy(data: object, source: Path | str = "<policy>",
                 raw: bytes | None = None) -> Policy:
    """Validate an already-parsed policy mapping; `raw`: the file's bytes it came from (the
    version), else the mapping's canonical JSON stands in for them."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(_format_errors(Path(source), error)) from None
    if raw is None:
        raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    policy._version = policy_version(raw)
    return policy


def profile_path(profile: str | None) -> Path:
    """The policy file a run uses: a profile name (`after-sales-handbook`) in PROFILES_DIR, or
    a path to a YAML file; None or "" -> env REVISIT_POLICY, else policy.yaml."""
    if not profile:
        return Path(os.environ.get("REVISIT_POLICY") or DEFAULT_POLICY_PATH)
    if _PROFILE_NAME.fullmatch(profile):
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))) or "none"
            raise PolicyError(f"{path}: no policy profile {profile!r} (profiles: {known})")
        return path
    return Path(profile)


def load_profile(profile: str | None) -> Policy:
    """load_policy of profile_path(profile): what a run's params.policy_profile selects."""
    return load_policy(profile_path(profile))


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Load and validate the policy: `path`, else env REVISIT_POLICY, else the project default."""
    resolved = Path(path or os.environ.get("REVISIT_POLICY") or DEFAULT_POLICY_PATH)
    return _load_cached(resolved.resolve(), resolved.stat().st_mtime_ns if resolved.exists() else 0)


@lru_cache(maxsize=8)
def _load_cached(path: Path, _mtime: int) -> Policy:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise PolicyError(f"{path}: not UTF-8 text: byte {raw[error.start]:#04x} on line "
                          f"{line} (save the file as UTF-8)") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        raise PolicyError(_yaml_error(path, error)) from None
    policy = parse_policy(data, path, raw)
    policy._source = str(path)
    return policy
