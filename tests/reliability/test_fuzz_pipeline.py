"""A fuzz test of the whole daily pipeline: hypothesis writes small hostile CRMs (every column
of the canonical schema, any value SQLite can hold) into a SQLite file, and the daily stages run
over it exactly as the DAG's tasks call them, without Airflow:
extract -> quality gate -> call lists -> SLA -> publish.

Properties, for any CRM:
- the run never raises; the only allowed stop is QualityStop when a table the lists need
  (departments, agents) has no usable row, and it carries its reason (the failure share is
  raised to 1.0, so the gate quarantines instead of stopping);
- nothing is silently dropped: every row the CRM holds reaches the snapshot unless it is stamped
  at or after the cut-off (D 00:00 business-local; revisit.io.extract.apply_cutoff drops the
  rows whose table stamp parses to the cut-off or later - a stamp that does not parse is kept
  for the gate to quarantine), and every snapshot row is in clean/D/<table>.parquet (by key)
  or in quality/D/quarantine.parquet (the rows of quarantine.csv as the gate made them) with
  a non-empty reason (by table and row_key), and quarantine.csv reads back row for row;
- no clean row is stamped at or after the cut-off;
- no file is written outside call_lists/D, sla/D, quality/D, clean/D, snapshots/D, handoff/D
  and results.sqlite (an id such as '../x' names no file outside its folder);
- every agent id naming a call-list file is a clean agent.

Examples: REVISIT_FUZZ_EXAMPLES generated ones (default 8: with the 13 @examples ~50 s on
two idle cores, ~3 s each); under CI (CI=true) the
examples are derandomized, so a CI run is reproducible.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings

from revisit.config.policy import load_policy
from revisit.config.schema import TABLES
from revisit.io.extract import extract_snapshot
from revisit.quality.gate import QualityStop
from revisit.quality.stored import FRAMES, VERDICT_FILE
from revisit.rules.calendar import BusinessCalendar
from revisit.stages.daily import GATE, publish_results, run_call_lists, run_quality, run_sla
from revisit.stages.partitions import DayPartitions
from revisit.stages.shard_rows import CUSTOMER_IDS, ROUTED, SHARD_ROWS
from tests.reliability.fuzz_crm import (
    HOSTILE_EXAMPLES,
    Blob,
    FuzzCrm,
    crms,
    read_back,
    write_crm,
)

VERDICT_NAMES = {VERDICT_FILE, *(f"{name}.parquet" for name in FRAMES)}  # handoff/D/gate/

D = dt.date(2026, 11, 20)
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MAX_EXAMPLES = int(os.environ.get("REVISIT_FUZZ_EXAMPLES", "8"))
NESTING = ("l1", "l2", "l3", "l4")  # the output root's depth in the temp folder: '../../x' stays
REPORTS = ("sms_notice", "carried_over", "not_listed", "run.json")  # run.json: provenance
ALLOWED_TOP = {"call_lists", "sla", "quality", "clean", "snapshots", "handoff", "results.sqlite"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # what extract removes from text
_OFFSET = re.compile(r"(?:\d\s*(?:[+-]\d{2}:?\d{2}|Z)|\s(?:UTC|GMT))\Z")

POLICY = load_policy()
POLICY = POLICY.model_copy(
    update={"quality": POLICY.quality.model_copy(update={"max_failure_share": 1.0})})
CALENDAR = BusinessCalendar(POLICY.calendar)
BUSINESS_TZ = POLICY.calendar.timezone
CUTOFF = pd.Timestamp(D).tz_localize(BUSINESS_TZ).tz_localize(None)


# ================================================================= the oracle
def normalised_id(value: object) -> object:
    """An id as extract types it (text, control characters removed, stripped); UNSURE for a
    BLOB that is no UTF-8 (no defined text)."""
    if value is None:
        return None
    if isinstance(value, Blob):
        try:
            value = value.data.decode("utf-8")
        except UnicodeDecodeError:
            return UNSURE
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _CONTROL.sub("", str(value)).strip()


UNSURE = object()


def after_cutoff(value: object) -> bool | None:
    """Whether a raw table stamp names the cut-off or later (the extract drops the row):
    True / False, None where this oracle cannot tell (pandas' range, BLOBs)."""
    if value is None or isinstance(value, (int, float)):
        return False  # no stamp; a bare number is none either
    if isinstance(value, Blob):
        return None
    text = _CONTROL.sub("", str(value)).strip()
    if not text or text.startswith("0000-00-00"):
        return False
    try:
        if _OFFSET.search(text):
            stamp = pd.Timestamp(text)
            if stamp.tzinfo is None:
                return None
            stamp = stamp.tz_convert(BUSINESS_TZ).tz_localize(None)
        else:
            stamp = pd.to_datetime(pd.Series([text]), format="mixed").iloc[0]
            if getattr(stamp, "tzinfo", None) is not None:
                return False  # a zone name among naive stamps: no timestamp of the column
    except (ValueError, TypeError):
        return False
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        return None
    if pd.isna(stamp):
        return False
    if not 1678 <= stamp.year <= 2261:
        return None
    return bool(stamp >= CUTOFF)


def key_text(frame: pd.DataFrame, table: str) -> list[object]:
    """Per row the key as quarantine.csv writes it (compound keys '|'-joined, stamps ISO)."""
    parts = []
    for col in TABLES[table].key:
        values = frame[col]
        text = values.astype("string")
        if pd.api.types.is_datetime64_any_dtype(values):
            text = text.str.replace(" ", "T", n=1, regex=False)
        parts.append(text)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "|" + part.fillna("")
    return [None if pd.isna(v) else v for v in joined]


def first_keys(frame: pd.DataFrame, table: str) -> Counter:
    col = TABLES[table].key[0]
    return Counter(None if pd.isna(v) else v for v in frame[col].astype("string"))


# ================================================================= the properties
def check_extract(held: dict[str, list[dict]], parts: DayPartitions) -> dict[str, pd.DataFrame]:
    """Every row the CRM holds is in the snapshot, or dropped for a stamp at or after the
    cut-off (by the table's first key column: its text as extract types it)."""
    snapshot = {}
    for name, table in TABLES.items():
        snap = pd.read_parquet(parts.snapshot / f"{name}.parquet")
        snapshot[name] = snap
        in_snapshot = first_keys(snap, name)
        by_key: dict[object, list[dict]] = {}
        for row in held[name]:
            by_key.setdefault(normalised_id(row[table.key[0]]), []).append(row)
        if UNSURE in by_key:
            continue  # a BLOB key that is no UTF-8: no text to find it by
        extra = set(in_snapshot) - set(by_key)
        assert not extra, f"{name}: snapshot keys not in the CRM: {extra!r}"
        for key, rows in by_key.items():
            dropped = len(rows) - in_snapshot.get(key, 0)
            later = [after_cutoff(r[table.stamp]) for r in rows] if table.stamp else \
                [False] * len(rows)
            surely, maybe = later.count(True), later.count(True) + later.count(None)
            assert surely <= dropped <= maybe, (
                f"{name} key {key!r}: {len(rows)} row(s) in the CRM, {dropped} not in the "
                f"snapshot, {surely} (up to {maybe}) stamped at or after the cut-off: "
                f"{[r.get(table.stamp) for r in rows] if table.stamp else ''}")
        if table.stamp:
            stamped = snap[table.stamp]
            assert not (stamped >= CUTOFF).any(), f"{name}: a snapshot row after the cut-off"
    return snapshot


def check_gate(snapshot: dict[str, pd.DataFrame], parts: DayPartitions, stopped: bool) -> None:
    """Every snapshot row is clean (by key) or quarantined with a reason (table + row_key)."""
    quarantine = pd.read_parquet(parts.quality / "quarantine.parquet").astype(object)
    people = pd.read_csv(parts.quality / "quarantine.csv", dtype=str, keep_default_na=False)
    assert len(people) == len(quarantine), "quarantine.csv does not read back row for row"
    assert not (quarantine["reason"].str.strip() == "").any(), "a quarantine row without reason"
    summary = pd.read_csv(parts.quality / "summary.csv").set_index("table")
    for name, snap in snapshot.items():
        assert summary.loc[name, "rows"] == len(snap), f"{name}: gate saw another row count"
        quarantined = set(quarantine.loc[quarantine["table"] == name, "row_key"])
        keys = key_text(snap, name)
        rows = summary.loc[name]
        assert rows["clean_rows"] + rows["failed_rows"] == rows["rows"], f"{name}: {rows}"
        if stopped:  # no clean data is written: the quarantine names snapshot rows only
            named = set(keys) | {f"<row {i + 1}>" for i in range(len(keys))}
            assert quarantined <= named, f"{name}: quarantined {quarantined - named!r}"
            assert len(quarantined) or not rows["failed_rows"], f"{name}: {rows}"
            continue
        clean = pd.read_parquet(parts.clean / f"{name}.parquet")
        assert rows["clean_rows"] == len(clean), f"{name}: {rows}"
        clean_keys = Counter(key_text(clean, name))
        if TABLES[name].stamp:
            assert not (clean[TABLES[name].stamp] >= CUTOFF).any(), \
                f"{name}: a clean row after the cut-off"
        snap_keys = Counter(keys)
        for key, n in clean_keys.items():
            assert n <= snap_keys.get(key, 0), f"{name}: clean key {key!r} not in the snapshot"
        for key, n in snap_keys.items():
            removed = n - clean_keys.get(key, 0)
            if not removed:
                continue
            found = sum(1 for i, k in enumerate(keys) if k == key and (
                key in quarantined or f"<row {i + 1}>" in quarantined))
            assert found >= removed, (
                f"{name}: {removed} row(s) with key {key!r} neither clean nor quarantined "
                f"(quarantined keys: {sorted(quarantined)[:10]!r})")


def check_files(top: Path, parts: DayPartitions, stopped: bool) -> None:
    """Only the run's partitions and results.sqlite, each below its own folder."""
    root = parts.root
    for path in top.rglob("*"):
        rel = path.relative_to(top)
        assert rel.parts[0] in ("crm", NESTING[0]), f"written outside the output root: {rel}"
        if rel.parts[0] == "crm":
            assert rel in (Path("crm"), Path("crm", "crm.sqlite")), f"beside the CRM: {rel}"
            continue
        if root not in path.parents:
            assert path in root.parents or path == root, f"outside the output root: {rel}"
            continue
        inner = path.relative_to(root)
        assert inner.parts[0] in ALLOWED_TOP, f"unexpected output {inner}"
        if inner.parts[0] != "results.sqlite" and len(inner.parts) >= 2:
            assert inner.parts[1] == parts.period, f"outside D's partition: {inner}"
            if inner.parts[:3] == ("handoff", parts.period, SHARD_ROWS):
                # the split by shard: named by the plan's shard ids and the tables, never
                # by a CRM value
                rest = inner.parts[3:]
                assert not rest or rest == ("plan.json",) or (
                    re.fullmatch(r"\d{3}(\.\d+)?", rest[0]) and (
                        len(rest) == 1 or rest[1] in {f"{t}.parquet"
                                                      for t in (*ROUTED, CUSTOMER_IDS)})), \
                    f"not a shard's rows: {inner}"
                continue
            if inner.parts[:3] == ("handoff", parts.period, GATE):  # the verdict: fixed names
                assert len(inner.parts) == 3 or inner.parts[3] in VERDICT_NAMES, \
                    f"not the gate's verdict: {inner}"
                continue
            assert len(inner.parts) == 3 or path.is_dir(), f"not in D's partition: {inner}"
            assert len(inner.parts) <= 3, f"below D's partition folder: {inner}"
    if stopped:
        return
    agents = set(pd.read_parquet(parts.clean / "agents.parquet")["agent_id"].dropna())
    for path in parts.call_lists.iterdir():
        stem = path.name.removesuffix(".csv").removesuffix(".xlsx")
        if stem in REPORTS:
            continue
        assert path.suffix in (".csv", ".xlsx"), f"unexpected call-list file {path.name}"
        assert stem in agents, f"call list {path.name!r} of no clean agent"


def run_pipeline(crm: FuzzCrm) -> None:
    with tempfile.TemporaryDirectory(prefix="revisit-fuzz-") as folder:
        top = Path(folder)
        (top / "crm").mkdir()
        crm_file = top / "crm" / "crm.sqlite"
        write_crm(crm, crm_file)
        held = read_back(crm_file)
        root = top.joinpath(*NESTING, "out")
        root.mkdir(parents=True)
        parts = DayPartitions(root, D)
        extract_snapshot(f"sqlite:///{crm_file}", parts.cutoff_date, parts.snapshot,
                         business_tz=BUSINESS_TZ, source_tz=POLICY.source_tz)
        snapshot = check_extract(held, parts)
        stopped = False
        try:
            run_quality(parts, POLICY)
        except QualityStop as stop:
            stopped = True
            reason = str(stop)
            assert re.search(r"(departments|agents): no usable rows", reason), reason
        if not stopped:
            run_call_lists(parts, POLICY, CALENDAR)
            run_sla(parts, POLICY, CALENDAR)
            publish_results(parts, POLICY, f"sqlite:///{root / 'results.sqlite'}")
        check_gate(snapshot, parts, stopped)
        check_files(top, parts, stopped)


def _with_examples(test):
    for crm in reversed(list(HOSTILE_EXAMPLES.values())):
        test = example(crm=crm)(test)
    return test


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=CI, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(crm=crms())
@_with_examples
def test_daily_pipeline_survives_any_crm(crm: FuzzCrm) -> None:
    run_pipeline(crm)
