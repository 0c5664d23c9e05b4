"""The SLA deadline engine against businesstimedelta, measured as whole processes.

    python -m bench.sla_fair engine|btd FOLDER

`bench.run` prepares FOLDER once (`prepare`: the first N tickets of a snapshot that have a
business-hours first-response target, as raw arrays: `created.i8` = naive business-local
microseconds since the epoch, `hours.f8` = the target in hours; `job.json` = the policy
calendar's settings and years), then runs each side as its own process and times it from
outside (wall seconds, CPU seconds and peak RSS from wait4). Each process does everything a
caller pays: interpreter start, its imports, the calendar settings, building its calendar
(Revisit's `BusinessCalendar`, or businesstimedelta's rules from the same `holidays` data),
reading the tickets, computing every
deadline, writing them as UTC nanoseconds (`out_<side>.i8`). The Revisit side loads the policy
as the pipeline does; the businesstimedelta side reads the same calendar settings from
job.json and imports none of Revisit's modules, nor numpy, pandas or pyarrow (stdlib `array` in
and out), so nothing of Revisit's stack is charged to it. The last stdout line is a JSON
object with the phases as seen inside the process.
"""

from __future__ import annotations

import time

_BEGAN = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def prepare(snapshot_tickets: Path, tickets: int, folder: Path) -> int:
    """Write the comparison's input into folder; the number of tickets written."""
    import pandas as pd

    import bench  # noqa: F401  (plugins/ on sys.path)
    from revisit.config.policy import load_policy
    from revisit.rules.calendar import DEFAULT_YEARS

    policy = load_policy()
    hours = {}
    for prio, targets in policy.sla.targets.items():
        target = targets.get("first_response")
        if target is not None and target.unit == "business_hours":
            hours[prio] = float(target.amount)
    frame = pd.read_parquet(snapshot_tickets, columns=["ticket_id", "priority", "created_at"])
    frame = frame[frame["created_at"].notna() & frame["priority"].isin(list(hours))]
    frame = frame.sort_values("ticket_id").head(tickets).reset_index(drop=True)
    created = frame["created_at"]
    if created.dt.tz is not None:  # the snapshot's stamps as business-local wall time
        created = created.dt.tz_convert(policy.calendar.timezone).dt.tz_localize(None)
    folder.mkdir(parents=True, exist_ok=True)
    created.dt.as_unit("us").to_numpy().view("int64").astype("<i8").tofile(folder / "created.i8")
    frame["priority"].map(hours).to_numpy(dtype="<f8").tofile(folder / "hours.f8")
    cal = policy.calendar
    spec = {"timezone": cal.timezone, "country": cal.country,
            "hours": [[i.start, i.end] for i in cal.hours],
            "extra_holidays": sorted(d.isoformat() for d in cal.extra_holidays),
            "extra_workdays": sorted(d.isoformat() for d in cal.extra_workdays)}
    (folder / "job.json").write_text(json.dumps({"years": list(DEFAULT_YEARS),
                                                 "tickets": len(frame), "calendar": spec}))
    return len(frame)


def _engine(folder: Path, phases: dict) -> None:
    import numpy as np
    import pandas as pd

    import bench  # noqa: F401
    from revisit.config.policy import load_policy
    from revisit.rules.calendar import BusinessCalendar

    phases["imports"] = time.perf_counter() - _BEGAN
    t = time.perf_counter()
    policy = load_policy()
    calendar = BusinessCalendar(policy.calendar)
    phases["policy_and_calendar"] = time.perf_counter() - t
    t = time.perf_counter()
    created = pd.Series(np.fromfile(folder / "created.i8", dtype="<i8").view("datetime64[us]"))
    hours = np.fromfile(folder / "hours.f8", dtype="<f8")
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    deadline = calendar.add_business_hours(created, hours)
    phases["deadlines"] = time.perf_counter() - t
    t = time.perf_counter()
    out = deadline.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy()
    out.view("int64").astype("<i8").tofile(folder / "out_engine.i8")
    phases["write"] = time.perf_counter() - t


def _btd(folder: Path, phases: dict) -> None:
    import datetime as dt
    from array import array
    from types import SimpleNamespace

    import businesstimedelta

    from bench.stages import _btd_rules

    phases["imports"] = time.perf_counter() - _BEGAN
    t = time.perf_counter()
    # The policy's calendar as plain JSON (written by prepare from the same policy): this side
    # loads none of Revisit's modules (its policy loader pulls in pyarrow and numpy).
    job = json.loads((folder / "job.json").read_text())
    spec = job["calendar"]
    calendar = SimpleNamespace(
        timezone=spec["timezone"], country=spec["country"],
        hours=[SimpleNamespace(start=a, end=b) for a, b in spec["hours"]],
        extra_holidays=[dt.date.fromisoformat(d) for d in spec["extra_holidays"]],
        extra_workdays=[dt.date.fromisoformat(d) for d in spec["extra_workdays"]])
    rules, tz = _btd_rules(SimpleNamespace(calendar=calendar), years=tuple(job["years"]))
    phases["policy_and_calendar"] = time.perf_counter() - t
    t = time.perf_counter()
    created, hours = array("q"), array("d")
    with open(folder / "created.i8", "rb") as fh:
        created.frombytes(fh.read())
    with open(folder / "hours.f8", "rb") as fh:
        hours.frombytes(fh.read())
    if sys.byteorder != "little":
        created.byteswap()
        hours.byteswap()
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    deltas = {h: businesstimedelta.BusinessTimeDelta(rules, seconds=round(h * 3600))
              for h in set(hours)}
    epoch = dt.datetime(1970, 1, 1)
    epoch_utc = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    micro = dt.timedelta(microseconds=1)
    out = array("q", [
        (tz.localize(epoch + v * micro) + deltas[h] - epoch_utc) // micro * 1000
        for v, h in zip(created, hours, strict=True)])
    phases["deadlines"] = time.perf_counter() - t
    t = time.perf_counter()
    if sys.byteorder != "little":
        out.byteswap()
    with open(folder / "out_btd.i8", "wb") as fh:
        out.tofile(fh)
    phases["write"] = time.perf_counter() - t


def _own_peak() -> int | None:
    """This process's own peak RSS (VmHWM), bytes. Not wait4's ru_maxrss: on Linux a child's
    ru_maxrss starts from the RSS of the parent that spawned it (the mm it leaves at exec), so
    a small child of a large parent reports the parent's size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    side, folder = (sys.argv[1:] if argv is None else argv)[:2]
    phases: dict[str, float] = {}
    {"engine": _engine, "btd": _btd}[side](Path(folder), phases)
    phases["inside_process"] = time.perf_counter() - _BEGAN
    print(json.dumps({"side": side, "phases": {k: round(v, 4) for k, v in phases.items()},
                      "peak_rss": _own_peak()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
