"""The one bridge between Airflow task contexts and the stages, for both DAGs.

Every task of revisit_daily and revisit_monthly calls one function here with its context. This
module reads what a task needs from Airflow (the period from the logical date or the params,
the connections, the SMTP transport), calls the Airflow-free stage in revisit.stages, and
turns a stage's non-retryable error (revisit.core.errors.RevisitError with retryable False)
into a failure without retries. Everything returned is small (paths and counts), because XCom
must never carry customer rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pendulum

from revisit.config.paths import output_root
from revisit.config.policy import Policy, PolicyError, load_profile
from revisit.core.errors import BadParam, RevisitError
from revisit.core.periods import DAY_PATTERN, MONTH_PATTERN, previous_month
from revisit.stages.partitions import DayPartitions, MonthPartitions

log = logging.getLogger(__name__)

CRM_CONN_ID = "crm_db"
RESULTS_CONN_ID = "revisit_results"
Result = TypeVar("Result")


class ResultsDatabaseMissing(RevisitError):
    """An object-store output root without connection revisit_results."""

    retryable = False

    def __init__(self) -> None:
        super().__init__(f"the output root is on object storage: define connection "
                         f"{RESULTS_CONN_ID} (a SQLAlchemy database such as PostgreSQL) for the "
                         "results database and the delivery ledger")


def fail_fast(task: Callable[..., Result]) -> Callable[..., Result]:
    """Every task's body: it runs in the task's workspace (revisit.bridge.workspace: the
    output root as a local folder, mirrored from object storage when the root is there), its
    result names store URLs rather than the mirror's paths, and a stage's error that another
    try cannot fix fails the task without retries (Airflow's AirflowFailException); a
    retryable one is re-raised for Airflow to retry."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> Result:
        from revisit.bridge.workspace import workspace
        from revisit.io.files import shown

        try:
            with workspace() as place:
                if place.store is not None:
                    results_url()  # no results database: every task says so at once
                try:
                    return place.locate(task(*args, **kwargs))
                except RevisitError as error:  # its message names the store, not the mirror
                    error.args = tuple(shown(a) if isinstance(a, str) else a
                                       for a in error.args)
                    raise
        except RevisitError as error:
            if error.retryable:
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error

    return run


def _root() -> Path:
    """The output root the stages see: the running task's workspace (a local folder)."""
    from revisit.bridge.workspace import current

    place = current()
    return place.root if place is not None else output_root()


def needs(*paths: Path) -> None:
    """The task reads these partitions, folders or files: fetched when the root is on object
    storage (a no-op on a local root)."""
    from revisit.bridge.workspace import current

    place = current()
    if place is not None:
        place.needs(*paths)


# ================================================================= what a run is about
def call_date(context: dict[str, Any], policy: Policy) -> dt.date:
    """Call date D: params.call_date when given, else the logical date in the business zone.
    A call_date that is not a real YYYY-MM-DD day is a BadParam (no retry can fix it)."""
    override = (context.get("params") or {}).get("call_date")
    if override:
        try:
            if DAY_PATTERN.fullmatch(str(override)):
                return dt.date.fromisoformat(str(override))
        except ValueError:
            pass
        raise BadParam("call_date", override, "a date YYYY-MM-DD")
    logical = context.get("logical_date") or context["dag_run"].run_after
    local = pendulum.instance(logical).in_timezone(policy.calendar.timezone)
    return dt.date(local.year, local.month, local.day)  # plain date: DB drivers reject pendulum's


def report_month(context: dict[str, Any], policy: Policy) -> str:
    """Report month M: params.month when given, else the month before the run's date.
    A month that is not YYYY-MM with MM 01-12 is a BadParam (no retry can fix it)."""
    override = (context.get("params") or {}).get("month")
    if override:
        if not MONTH_PATTERN.fullmatch(str(override)):
            raise BadParam("month", override, "a month YYYY-MM (MM 01-12)")
        return str(override)
    return previous_month(call_date(context, policy))


def _param(context: dict[str, Any], name: str, default: Any = None) -> Any:
    return (context.get("params") or {}).get(name, default)


def _flag(context: dict[str, Any], name: str, default: bool) -> bool:
    """A boolean param; the UI and the CLI may hand it over as text."""
    return _param(context, name, default) not in (False, "false", "False", 0, None)


def run_policy(context: dict[str, Any]) -> Policy:
    """params.policy_profile (a profile name or a policy file), else REVISIT_POLICY, else
    policy.yaml. A profile that does not exist or does not validate is a BadParam."""
    profile = _param(context, "policy_profile") or None
    try:
        return load_profile(profile)
    except PolicyError as error:
        if profile is None:
            raise
        raise BadParam("policy_profile", profile, f"a valid policy profile ({error})") from None


def replaying(context: dict[str, Any]) -> bool:
    """params.replay: recompute a past period from its stored snapshot under params
    .policy_profile into replays/<replay_id>/, sending and publishing nothing."""
    return _flag(context, "replay", False)


def refreshing(context: dict[str, Any]) -> bool:
    """params.refresh_snapshot: re-extract the CRM although the period has a snapshot."""
    return _flag(context, "refresh_snapshot", False)


def replay_root(context: dict[str, Any], period: str, policy: Policy) -> Path:
    """replays/<replay_id>/ of the output root: params.replay_id, else the default id
    <period>_<profile>_<policy version> (revisit.stages.replay, the rule the command line
    `python -m revisit replay` uses too), so a replay of the same thing lands in one place."""
    from revisit.stages import replay

    return replay.replay_root(_root(),
                              replay.replay_id(period, policy, _param(context, "replay_id")))


def day_partitions(context: dict[str, Any]) -> tuple[DayPartitions, Policy]:
    policy = run_policy(context)
    day = call_date(context, policy)
    if replaying(context):
        root = replay_root(context, day.isoformat(), policy)
        return DayPartitions(root, day, source=_root()), policy
    return DayPartitions(_root(), day), policy


def month_partitions(context: dict[str, Any]) -> tuple[MonthPartitions, Policy]:
    policy = run_policy(context)
    month = report_month(context, policy)
    if replaying(context):
        return MonthPartitions(replay_root(context, month, policy), month,
                               source=_root()), policy
    return MonthPartitions(_root(), month), policy


def sending(context: dict[str, Any]) -> bool:
    """params.send_email (default on): off renders and records without e-mailing anyone;
    a replay never sends."""
    return _flag(context, "send_email", True) and not replaying(context)


def results_url() -> str:
    """Connection revisit_results when defined, else results.sqlite under a local output
    root. A root on object storage has no place for a database file: there the connection
    must be defined (a clear error, not retried, says so)."""
    from revisit.bridge.connections import ConnectionMissingError, airflow_sqlalchemy_url
    from revisit.config.paths import on_object_store, output_location
    from revisit.io.results import default_results_url

    try:
        return airflow_sqlalchemy_url(RESULTS_CONN_ID).render_as_string(hide_password=False)
    except ConnectionMissingError:
        if on_object_store(output_location()):
            raise ResultsDatabaseMissing() from None
        return default_results_url(output_root())


def _calendar(policy: Policy):
    from revisit.rules.calendar import BusinessCalendar

    return BusinessCalendar(policy.calendar)


def _transport():
    from revisit.bridge.smtp import SmtpHookTransport

    return SmtpHookTransport()


# ================================================================= both DAGs: the snapshot
def _snapshot(parts: DayPartitions | MonthPartitions, policy: Policy,
              refresh: bool) -> dict[str, Any]:
    """The CRM (connection crm_db) as of the period's cut-off 00:00 into snapshots/<period>;
    a period that has its snapshot keeps it (a rerun reproduces the first run) unless
    `refresh`. A replay never extracts: its snapshot must be there."""
    from revisit.io.extract import extract_snapshot

    if parts.replay or (not refresh and _has_snapshot(parts.snapshot)):
        return _stored_snapshot(parts)
    if isinstance(parts, MonthPartitions) and not refresh:
        reused = _day_snapshot_of_cutoff(parts, policy)
        if reused is not None:
            return reused
    from revisit.bridge.connections import airflow_sqlalchemy_url

    counts = extract_snapshot(airflow_sqlalchemy_url(CRM_CONN_ID), parts.cutoff_date,
                              parts.snapshot, business_tz=policy.calendar.timezone,
                              source_tz=policy.source_tz)
    log.info("snapshot %s (CRM as of %s 00:00): %s", parts.period, parts.cutoff_date, counts)
    return {"partition": parts.period, "path": str(parts.snapshot), "rows": counts,
            "extracted": True}


def _day_snapshot_of_cutoff(parts: MonthPartitions, policy: Policy) -> dict[str, Any] | None:
    """M's snapshot from the daily run of M's cut-off day (the 1st of M+1) when that one saw
    the CRM at the same instant (revisit.io.extract.same_cutoff), else None (extract)."""
    from revisit.io.extract import copy_snapshot, same_cutoff

    day = DayPartitions(parts.root, parts.cutoff_date)
    if not _has_snapshot(day.snapshot):
        return None
    needs(day.snapshot)
    if not same_cutoff(day.snapshot, parts.cutoff_date, policy.calendar.timezone,
                       policy.source_tz):
        return None
    counts = copy_snapshot(day.snapshot, parts.snapshot)
    log.info("snapshot %s: the daily snapshot of %s (the same cut-off), not extracted again",
             parts.period, day.period)
    return {"partition": parts.period, "path": str(parts.snapshot), "rows": counts,
            "extracted": False, "from": day.period}


def _has_snapshot(folder: Path) -> bool:
    """Whether a complete snapshot is at `folder`; on object storage its manifest says so
    (no download just to look)."""
    from revisit.bridge.workspace import current
    from revisit.config.schema import TABLES
    from revisit.io.extract import snapshot_exists

    place = current()
    if place is None or place.store is None or folder.exists():
        return snapshot_exists(folder)
    manifest = place.store.manifest(folder.relative_to(place.root).as_posix())
    return manifest is not None and all(f"{t}.parquet" in manifest.files for t in TABLES)


def _stored_snapshot(parts: DayPartitions | MonthPartitions) -> dict[str, Any]:
    from revisit.io.extract import SnapshotMissing

    if not _has_snapshot(parts.snapshot):
        raise SnapshotMissing(parts.period, parts.snapshot)
    log.info("snapshot %s: the stored one (params.refresh_snapshot re-extracts)", parts.period)
    return {"partition": parts.period, "path": str(parts.snapshot), "extracted": False}


@fail_fast
def extract_daily(context: dict[str, Any]) -> dict[str, Any]:
    return _snapshot(*day_partitions(context), refreshing(context))


@fail_fast
def extract_monthly(context: dict[str, Any]) -> dict[str, Any]:
    return _snapshot(*month_partitions(context), refreshing(context))


# ================================================================= what each task reads
def _manifest_of(parts: DayPartitions | MonthPartitions) -> Path:
    """The snapshot's snapshot.json: what run.json's provenance reads of it."""
    from revisit.io.extract import MANIFEST

    return parts.snapshot / MANIFEST


def _clean_tables(parts: DayPartitions | MonthPartitions, *names: str) -> list[Path]:
    return [parts.clean / f"{name}.parquet" for name in names]


def _quality_summaries(parts: DayPartitions) -> list[Path]:
    from revisit.quality.summary import OUTPUT_FILES

    return [parts.quality / OUTPUT_FILES[key] for key in ("summary_md", "summary_html")]


def _company_files(parts: MonthPartitions, period: str) -> tuple[Path, Path]:
    """The company report's data and PDF of `period`."""
    from revisit.stages.company import company_json, company_pdf, period_parts

    target = period_parts(parts, period)
    return company_json(target), company_pdf(target)


def _shard_rows(parts: DayPartitions | MonthPartitions, shard: str, tables: tuple[str, ...]
               ) -> list[Path]:
    """One shard's clean rows of `tables`, as the quality gate split them, and its plan."""
    from revisit.stages.shard_rows import plan_file, shard_rows_file

    return [plan_file(parts.handoff),
            *(shard_rows_file(parts.handoff, shard, name) for name in tables)]


def _shard_files(parts: DayPartitions, folder: str, shard_ids: list[str] | None) -> list[Path]:
    """What the mapped tasks of `shard_ids` handed over in handoff/D/<folder>/."""
    return [parts.handoff / folder / f"{shard}.parquet" for shard in shard_ids or ()]


# ================================================================= revisit_daily
@fail_fast
def quality_gate(context: dict[str, Any]) -> dict[str, Any]:
    """Quality gate; a stop fails the task without retries (the data will not change)."""
    from revisit.stages.daily import run_quality

    parts, policy = day_partitions(context)
    needs(parts.snapshot)
    return run_quality(parts, policy)


@fail_fast
def obligations_shard(context: dict[str, Any], shard: str) -> dict[str, Any]:
    from revisit.stages.daily import OBLIGATION_ROWS, run_obligations_shard

    parts, policy = day_partitions(context)
    needs(_clean_tables(parts, "customers")[0], *_shard_rows(parts, shard, OBLIGATION_ROWS))
    return run_obligations_shard(parts, policy, _calendar(policy), shard)


@fail_fast
def call_lists(context: dict[str, Any], shard_ids: list[str] | None = None) -> dict[str, Any]:
    """D's call lists from the merge of `shard_ids`' visit obligations and history
    (obligations_shard), or from obligations computed whole."""
    from revisit.stages.daily import HISTORY_SHARDS, OBLIGATION_SHARDS, run_call_lists

    parts, policy = day_partitions(context)
    if shard_ids is None:
        needs(parts.clean, _manifest_of(parts))
    else:
        needs(*_clean_tables(parts, "customers", "agents"), _manifest_of(parts),
              *_shard_files(parts, OBLIGATION_SHARDS, shard_ids),
              *_shard_files(parts, HISTORY_SHARDS, shard_ids))
    return run_call_lists(parts, policy, _calendar(policy),
                          None if shard_ids is None else list(shard_ids))


@fail_fast
def shards(context: dict[str, Any]) -> list[str]:
    """The shard ids of D (revisit.rules.shards): what the mapped tasks run over, as the
    quality gate split D's rows."""
    return _shard_ids(day_partitions(context)[0])


def _shard_ids(parts: DayPartitions | MonthPartitions) -> list[str]:
    from revisit.stages.shard_rows import plan_file, plan_info

    needs(plan_file(parts.handoff))
    info = plan_info(parts.handoff)
    log.info("%d shard(s) of at most %d customers for %s", len(info["shard_ids"]),
             info["max_customers_per_shard"], parts.period)
    return list(info["shard_ids"])


@fail_fast
def sla_shard(context: dict[str, Any], shard: str) -> dict[str, Any]:
    from revisit.stages.daily import run_sla_shard

    parts, policy = day_partitions(context)
    needs(*_shard_rows(parts, shard, ("tickets", "ticket_pauses")))
    return run_sla_shard(parts, policy, _calendar(policy), shard)


@fail_fast
def sla(context: dict[str, Any], shard_ids: list[str] | None = None) -> dict[str, Any]:
    """D's SLA status: the merge of `shard_ids`' statuses (sla_shard), or computed whole."""
    from revisit.stages.daily import SLA_SHARDS, run_sla

    parts, policy = day_partitions(context)
    # quality/D's summaries gain the "SLA verdicts unknown" section; merging shards, the
    # pauses are not read (the shards counted them)
    tables = ("tickets", "customers") if shard_ids is not None else \
        ("tickets", "ticket_pauses", "customers")
    needs(*_clean_tables(parts, *tables), _manifest_of(parts), *_quality_summaries(parts),
          *_shard_files(parts, SLA_SHARDS, shard_ids))
    return run_sla(parts, policy, _calendar(policy),
                   None if shard_ids is None else list(shard_ids))


@fail_fast
def sla_digest(context: dict[str, Any]) -> dict[str, Any]:
    """The SLA digest of D to every department head with something to report, once."""
    from revisit.stages.daily import send_sla_digests

    parts, policy = day_partitions(context)
    if not sending(context):
        log.info("params.send_email is off: no digest is sent for %s", parts.day)
        return {"sent": False}
    needs(parts.sla, *_clean_tables(parts, "departments", "agents"))
    return send_sla_digests(parts, policy, results_url(), _transport())


@fail_fast
def agent_mail(context: dict[str, Any], transport=None) -> dict[str, Any]:
    """Each agent's call list of D to their own address, once; agents without a valid
    address are reported in the result (ids), not failed."""
    from revisit.stages.daily import send_call_lists

    parts, policy = day_partitions(context)
    if not sending(context):
        log.info("params.send_email is off: no call list is e-mailed for %s", parts.day)
        return {"sent": False}
    needs(parts.call_lists, parts.sla, *_clean_tables(parts, "agents"))
    result = send_call_lists(parts, policy, results_url(), transport or _transport())
    if result.get("no_address"):
        _tell_lists_not_mailed(context, parts, policy, result["no_address"])
    return result


def _tell_lists_not_mailed(context: dict[str, Any], parts: DayPartitions, policy: Policy,
                           agent_ids: list[str]) -> None:
    """The data team hears, once per D, whose list could not be e-mailed (ids only)."""
    from revisit.bridge.alerts import tell_lists_not_mailed
    from revisit.delivery.mail import ALERT, DeliveryLedger
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    engine = make_engine(results_url())
    try:
        ensure_schema(engine)
        ledger = DeliveryLedger(engine, policy.calendar.timezone, kind=ALERT)
        log.info("%s", tell_lists_not_mailed(context, parts.period, agent_ids, ledger))
    finally:
        engine.dispose()


@fail_fast
def publish(context: dict[str, Any]) -> dict[str, Any]:
    """D's results to the results database; a replay publishes nothing and writes its
    changes.csv against the original run instead."""
    parts, policy = day_partitions(context)
    if parts.replay:
        from revisit.stages.replay import compare_day

        original = DayPartitions(parts.source, parts.day)  # type: ignore[arg-type]
        needs(parts.sla, parts.call_lists, original.sla, original.call_lists)
        return compare_day(parts, policy)
    from revisit.stages.daily import PUBLISHED_HANDOFFS, publish_results

    needs(*(parts.handoff / f"{name}.parquet" for name in PUBLISHED_HANDOFFS),
          parts.quality / "quarantine.parquet")
    return publish_results(parts, policy, results_url())


@fail_fast
def retention(context: dict[str, Any]) -> dict[str, Any]:
    """Delete the output root's partitions holding personal data older than the policy's
    retention.snapshot_days on D (revisit.stages.retention); a replay deletes nothing."""
    parts, policy = day_partitions(context)
    if parts.replay:
        log.info("a replay deletes nothing: retention runs with the daily run")
        return {"skipped": "replay"}
    from revisit.stages.retention import apply_retention

    # Aged from D, but never from a day after today: a call_date typed a year ahead must not
    # make today's partitions look expired.
    today = pendulum.now(policy.calendar.timezone).date()
    day = min(parts.day, dt.date(today.year, today.month, today.day))
    if day != parts.day:
        log.warning("call date %s is after today (%s): retention ages partitions from today",
                    parts.day, day)
    from revisit.bridge.workspace import current

    place = current()
    tree = place.store if place is not None and place.store is not None else parts.root
    return apply_retention(tree, day, policy.retention.snapshot_days)


# ================================================================= revisit_monthly
@fail_fast
def monthly_gate(context: dict[str, Any]) -> dict[str, Any]:
    """M's quality gate (the daily run's over M's snapshot, or that run's own result when it
    gated the same snapshot: revisit.stages.monthly.reused_gate): clean/M split by shard; a
    stop fails the task without retries (the data will not change)."""
    from revisit.stages.daily import GATE
    from revisit.stages.monthly import gate_month
    from revisit.stages.shard_rows import SHARD_ROWS

    parts, policy = month_partitions(context)
    day = DayPartitions(parts.root, parts.cutoff_date)  # whose gate M may reuse
    needs(parts.snapshot, _manifest_of(day), day.clean, day.handoff / SHARD_ROWS,
          day.handoff / GATE)
    return gate_month(parts, policy)


@fail_fast
def monthly_shards(context: dict[str, Any]) -> list[str]:
    """The shard ids of M, as M's quality gate split its rows."""
    return _shard_ids(month_partitions(context)[0])


@fail_fast
def kpis_shard(context: dict[str, Any], shard: str) -> dict[str, Any]:
    """One shard's share of M's KPIs (and of its quarter's when M ends one)."""
    from revisit.stages.monthly import run_kpis_shard
    from revisit.stages.shard_rows import ROUTED

    parts, policy = month_partitions(context)
    needs(*_clean_tables(parts, "customers", "departments", "agents"),
          *_shard_rows(parts, shard, tuple(ROUTED)))
    return run_kpis_shard(parts, policy, shard)


@fail_fast
def monthly_kpis(context: dict[str, Any], shard_ids: list[str] | None = None
                 ) -> dict[str, Any]:
    """M's KPIs: the merge of `shard_ids`' shares (kpis_shard), or gated and computed whole
    in this task."""
    from revisit.quality.summary import OUTPUT_FILES
    from revisit.stages.monthly import compute_kpis, share_folder

    parts, policy = month_partitions(context)
    if shard_ids is None:
        needs(parts.snapshot)
    else:  # M's run.json, and the raw rows the data-quality note counts (filtered reads)
        from revisit.stages.monthly import RAW_KEYS

        needs(_manifest_of(parts), *(parts.snapshot / f"{name}.parquet" for name in RAW_KEYS),
              *_clean_tables(parts, "customers", "departments", "agents"),
              parts.quality / OUTPUT_FILES["quarantine_typed"],
              *(share_folder(parts, parts.month, shard) for shard in shard_ids))
    return compute_kpis(parts, policy, results_url(),
                        None if shard_ids is None else list(shard_ids))


@fail_fast
def render(context: dict[str, Any], department_id: str) -> dict[str, Any]:
    from revisit.stages.monthly import render_department

    parts, policy = month_partitions(context)
    needs(parts.data_file(department_id))
    return render_department(parts, policy, department_id)


@fail_fast
def send(context: dict[str, Any], department_id: str, transport=None) -> dict[str, Any]:
    """The department's PDF to its head through `smtp_default`, at most once."""
    from revisit.stages.monthly import send_department

    parts, policy = month_partitions(context)
    if not sending(context):
        log.info("params.send_email is off: the report for %s is not sent", department_id)
        return {"department_id": department_id, "state": "not_sent", "sent": False}
    needs(parts.data_file(department_id), parts.pdf(department_id),
           parts.agents_xlsx(department_id))
    return send_department(parts, policy, department_id, results_url(),
                           transport or _transport())


@fail_fast
def summary(context: dict[str, Any]) -> dict[str, Any]:
    from revisit.stages.monthly import summarize

    parts, policy = month_partitions(context)
    if parts.replay:  # nothing was sent: what the other policy changes in M instead
        from revisit.stages.replay import compare_month

        original = MonthPartitions(parts.source, parts.month)  # type: ignore[arg-type]
        needs(*[folder / name for folder in (parts.reports, original.reports)
                for name in ("kpis.csv", "agents.csv", "sla_status.csv", "run.json")])
        return {"month": parts.month, "replay": compare_month(parts, policy)}
    from revisit.stages.company import company_periods as periods
    from revisit.stages.monthly import departments_with_data

    needs(parts.data, *[_company_files(parts, period)[1] for period in periods(parts.month)])
    needs(*[parts.pdf(department_id) for department_id in departments_with_data(parts)])
    return summarize(parts, policy, results_url(), sending=sending(context))


# ================================================================= revisit_monthly: leadership
@fail_fast
def company_periods(context: dict[str, Any]) -> list[str]:
    """The periods the run of M reports to leadership: M, and its quarter when M ends one."""
    from revisit.stages.company import company_periods as periods

    parts, _ = month_partitions(context)
    return periods(parts.month)


@fail_fast
def company_data(context: dict[str, Any], period: str) -> dict[str, Any]:
    """The company report data of `period` (for a quarter also its kpis.csv, agents.csv)."""
    from revisit.stages.company import write_company_data
    from revisit.stages.monthly import share_folder
    from revisit.stages.shard_rows import plan_file

    parts, policy = month_partitions(context)
    if period == parts.month:
        needs(parts.data)
    else:  # the quarter: merged from the shards' shares of it
        needs(_manifest_of(parts), plan_file(parts.handoff),
              *_clean_tables(parts, "customers", "departments", "agents"))
        needs(*(share_folder(parts, period, shard) for shard in _shard_ids(parts)))
    return write_company_data(parts, policy, period, results_url())


@fail_fast
def company_render(context: dict[str, Any], period: str) -> dict[str, Any]:
    from revisit.stages.company import render_company

    parts, policy = month_partitions(context)
    needs(_company_files(parts, period)[0])
    return render_company(parts, policy, period)


@fail_fast
def company_send(context: dict[str, Any], period: str, transport=None) -> dict[str, Any]:
    """The company PDF of `period` to notify.leadership through `smtp_default`, at most once
    per address."""
    from revisit.stages.company import send_company

    parts, policy = month_partitions(context)
    if not sending(context):
        log.info("params.send_email is off: the company report of %s is not sent", period)
        return {"period": period, "sent": 0, "state": "not_sent"}
    needs(*_company_files(parts, period))
    return send_company(parts, policy, period, results_url(), transport or _transport())


__all__ = [
    "agent_mail", "call_date", "call_lists", "company_data", "company_periods",
    "company_render", "company_send", "extract_daily", "extract_monthly", "fail_fast",
    "kpis_shard", "monthly_gate", "monthly_kpis", "monthly_shards", "publish", "quality_gate",
    "render", "report_month", "results_url", "retention", "send", "sending", "sla",
    "sla_digest", "summary",
]
