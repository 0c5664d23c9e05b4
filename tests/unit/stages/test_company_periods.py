"""The company report stages of the monthly run (revisit.stages.company): the quarter after a
quarter's last month, computed over the quarter, and nothing of a quarter in another month."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from revisit.io.extract import snapshot_dir
from revisit.io.results import default_results_url
from revisit.stages.company import (
    company_json,
    company_pdf,
    company_periods,
    period_parts,
    render_company,
    send_company,
    write_company_data,
)
from revisit.stages.monthly import compute_kpis
from revisit.stages.partitions import MonthPartitions
from tests.monthly_fixtures import frame, hand_built_frames, ticket, write_snapshot

QUARTER = "2026-Q3"


def quarter_frames() -> dict:
    """Four tickets of D1 in Q3 2026, worked out by hand (wall-clock hours):

    | ticket | created     | resolved    | hours | month raised / resolved |
    | T1     | 6 Jul 10:00 | 7 Jul 10:00 |    24 | Jul / Jul               |
    | T2     | 3 Aug 10:00 | 5 Aug 10:00 |    48 | Aug / Aug               |
    | T3     | 10 Aug 10:00| 10 Sep 10:00|   744 | Aug / Sep               |
    | T4     | 20 Aug 10:00| never       |       | Aug / -                 |

    Months: July 1 of 1 resolved (1.0), August 1 of 3 (T3 only in September), September none
    raised; the mean of the months' rates is 0.667. The quarter: 3 of 4 raised in it were
    resolved by its end, 0.75. Median handling hours: July 24, August 48, September 744 (mean
    of months 272); over the quarter's three tickets, 48."""
    frames = hand_built_frames()  # its customers, orders and visits; these tickets only
    frames["tickets"] = frame("tickets", [
        ticket("T1", "C1", "D1", "A1", "consultation", "general", "other", "2026-07-06 10:00",
               first="2026-07-06 11:00", verified="2026-07-06 12:00",
               resolved="2026-07-07 10:00"),
        ticket("T2", "C1", "D1", "A1", "consultation", "general", "other", "2026-08-03 10:00",
               first="2026-08-03 11:00", verified="2026-08-03 12:00",
               resolved="2026-08-05 10:00"),
        ticket("T3", "C1", "D1", "A1", "consultation", "general", "other", "2026-08-10 10:00",
               first="2026-08-10 11:00", verified="2026-08-10 12:00",
               resolved="2026-09-10 10:00"),
        ticket("T4", "C1", "D1", "A1", "consultation", "general", "other", "2026-08-20 10:00",
               first="2026-08-20 11:00"),
    ])
    return frames


def _month_run(tmp_path, frames, month, policy):
    """An output root with `frames` as M's snapshot, after M's kpis task."""
    root = tmp_path / "out"
    write_snapshot(snapshot_dir(root, month), frames)
    parts = MonthPartitions(root, month)
    url = default_results_url(root)
    compute_kpis(parts, policy, url)
    return parts, url


def _kpis_csv(path) -> dict[tuple[str, str, str], str]:
    lines = path.read_text("utf-8").splitlines()
    assert lines[0] == "month,department_id,metric,value"
    return {tuple(line.split(",")[:3]): line.split(",")[3] for line in lines[1:]}


def test_a_quarter_s_kpis_are_computed_over_the_quarter_not_averaged_over_its_months(
        tmp_path, policy):
    parts, url = _month_run(tmp_path, quarter_frames(), "2026-09", policy)
    assert company_periods("2026-09") == ["2026-09", QUARTER]
    write_company_data(parts, policy, QUARTER, url)

    quarter = _kpis_csv(tmp_path / "out" / "reports" / QUARTER / "kpis.csv")
    assert quarter[(QUARTER, "D1", "tickets_raised")] == "4"
    assert quarter[(QUARTER, "D1", "tickets_resolved")] == "3"
    assert quarter[(QUARTER, "D1", "problem_resolution_rate")] == "0.75"  # months' mean: 0.667
    assert quarter[(QUARTER, "D1", "median_handling_hours")] == "48"  # months' mean: 272
    assert quarter[(QUARTER, "ALL", "problem_resolution_rate")] == "0.75"
    assert {key[0] for key in quarter} == {QUARTER}  # the period label in the month column
    # The months themselves, for contrast: the trends of the month's company data.
    write_company_data(parts, policy, "2026-09", url)
    months = json.loads(company_json(parts).read_text("utf-8"))["trends"]
    assert months["problem_resolution_rate"]["D1"][-3:] == [1.0, pytest.approx(1 / 3), None]
    assert months["median_handling_hours"]["D1"][-3:] == [24.0, 48.0, 744.0]
    data = json.loads(company_json(period_parts(parts, QUARTER)).read_text("utf-8"))
    assert data["period"] == QUARTER and data["periods"][-1] == QUARTER
    assert data["kpis"]["problem_resolution_rate"]["values"]["D1"] == 0.75
    assert data["kpis"]["median_handling_hours"]["values"]["ALL"] == 48.0


def test_the_quarter_has_its_agents_csv_verdicts_provenance_and_company_pdf_beside_its_kpis(
        tmp_path, policy):
    parts, url = _month_run(tmp_path, quarter_frames(), "2026-09", policy)
    write_company_data(parts, policy, QUARTER, url)
    result = render_company(parts, policy, QUARTER)
    folder = tmp_path / "out" / "reports" / QUARTER
    assert result["pdf"] == str(folder / "company" / "company.pdf")
    assert (folder / "company" / "company.pdf").read_bytes().startswith(b"%PDF-")
    agents = (folder / "agents.csv").read_text("utf-8").splitlines()
    assert agents[0].startswith("month,department_id,agent_id,visits_due")
    assert {line.split(",")[0] for line in agents[1:]} == {QUARTER}
    info = json.loads((folder / "run.json").read_text("utf-8"))
    assert info["period"] == QUARTER and info["policy_version"] == policy.version
    verdicts = pd.read_csv(folder / "sla_status.csv", dtype=str)
    assert pd.to_datetime(verdicts["deadline"].str[:10]).between("2026-07-01", "2026-09-30").all()


def test_a_month_that_does_not_end_a_quarter_writes_no_quarter_outputs(tmp_path, policy):
    parts, url = _month_run(tmp_path, quarter_frames(), "2026-08", policy)
    assert company_periods("2026-08") == ["2026-08"]
    for period in company_periods("2026-08"):
        write_company_data(parts, policy, period, url)
        render_company(parts, policy, period)
    root = tmp_path / "out"
    assert sorted(p.name for p in (root / "reports").iterdir()) == ["2026-08"]
    assert sorted(p.name for p in (root / "report_data").iterdir()) == ["2026-08"]
    assert company_pdf(parts).exists()
    with pytest.raises(ValueError, match="not reported by the monthly run"):
        write_company_data(parts, policy, QUARTER, url)


def test_the_company_files_sit_in_a_folder_no_department_id_can_name(tmp_path, policy):
    """A department whose id is 'company' keeps its own report_data/M/company.json and
    reports/M/company.pdf; the company report is in the folder company/."""
    frames = hand_built_frames()
    frames["departments"].loc[0, "department_id"] = "company"
    for name in ("agents", "customers", "tickets"):
        frames[name]["department_id"] = frames[name]["department_id"].replace("D1", "company")
    parts, url = _month_run(tmp_path, frames, "2026-10", policy)
    write_company_data(parts, policy, "2026-10", url)
    assert (parts.data / "company.json").exists()  # the department's own data
    assert company_json(parts) == parts.data / "company" / "company.json"
    assert company_pdf(parts) == parts.reports / "company" / "company.pdf"
    data = json.loads(company_json(parts).read_text("utf-8"))
    assert [d["department_id"] for d in data["departments"]] == ["D2", "company"]


def test_the_company_report_data_holds_no_customer_data(tmp_path, policy):
    parts, url = _month_run(tmp_path, hand_built_frames(), "2026-10", policy)
    write_company_data(parts, policy, "2026-10", url)
    text = company_json(parts).read_text("utf-8")
    for customer_text in ("客户C1", "13812345678", "138****5678", "C1", "@example.com",
                          "王芳"):
        assert customer_text not in text


def test_without_leadership_addresses_nothing_is_sent(tmp_path, policy):
    parts, url = _month_run(tmp_path, hand_built_frames(), "2026-10", policy)
    write_company_data(parts, policy, "2026-10", url)
    render_company(parts, policy, "2026-10")
    nobody = policy.model_copy(update={"notify": policy.notify.model_copy(
        update={"leadership": []})})

    class Refuse:
        sender = "revisit@example.com"

        def send(self, message):
            raise AssertionError("nothing may be sent")

    assert send_company(parts, nobody, "2026-10", url, Refuse()) == {
        "period": "2026-10", "sent": 0, "recipients": 0}


def test_stamps_fall_in_their_quarter_across_the_new_year_and_nat_in_none():
    import pandas as pd

    from revisit.core.periods import QUARTER as UNIT
    from revisit.rules.kpis import _month_of

    stamps = pd.Series(pd.to_datetime(["2026-12-31 23:59", "2027-01-01 00:00", None,
                                       "2026-07-01 00:00", "2026-06-30 23:59"]))
    assert _month_of(stamps, UNIT).tolist() == ["2026-Q4", "2027-Q1", pd.NA, "2026-Q3",
                                                "2026-Q2"]
    assert _month_of(stamps).tolist()[:2] == ["2026-12", "2027-01"]  # months unchanged
