"""The company report for leadership (revisit.delivery.company): ranks in each KPI's direction,
every department side by side in the PDF, autoescaped, one ledger key per address."""

from __future__ import annotations

import json

import pytest

from revisit.delivery.company import (
    COMPANY,
    HIGHER,
    LOWER,
    RANK_DIRECTIONS,
    company_data,
    company_email,
    ranks,
    recipient_key,
    render_company_html,
    render_company_report,
)
from revisit.delivery.report import report_data
from revisit.rules.kpis import compute_monthly
from tests.monthly_fixtures import hand_built_frames

MONTH = "2026-10"


@pytest.fixture(scope="module")
def kpis(policy, calendar):
    return compute_monthly(hand_built_frames(), policy, calendar, MONTH)


@pytest.fixture(scope="module")
def data(kpis):
    return company_data([report_data(kpis, d) for d in ("D2", "D1")])


def test_the_best_department_ranks_first_in_each_kpis_direction_and_ties_share_a_rank():
    rates = {"A": 0.9, "B": 0.8, "C": 0.9, "D": None}
    assert ranks(rates, HIGHER) == {"A": 1, "B": 3, "C": 1, "D": None}
    breaches = {"A": 3.0, "B": 0.0, "C": 5.0}
    assert ranks(breaches, LOWER) == {"A": 2, "B": 1, "C": 3}  # fewer breaches is better
    assert ranks({"A": 10.0, "B": 20.0}, None) == {"A": None, "B": None}  # a volume


def test_rates_and_scores_rank_higher_is_better_breaches_and_handling_time_lower():
    assert {k for k, v in RANK_DIRECTIONS.items() if v == HIGHER} == {
        "visit_timeliness_rate", "problem_resolution_rate", "avg_satisfaction",
        "complaint_satisfaction", "sla_compliance_rate"}
    assert {k for k, v in RANK_DIRECTIONS.items() if v == LOWER} == {
        "sla_breaches", "median_handling_hours", "sla_unknown"}
    for volume in ("visits_due", "visits_on_time", "tickets_raised", "tickets_resolved"):
        assert volume not in RANK_DIRECTIONS


def test_company_data_puts_each_department_beside_the_company_with_its_rank(data):
    """The hand-built October (tests/monthly_fixtures.py): one SLA breach in each department."""
    assert [d["department_id"] for d in data["departments"]] == ["D1", "D2"]
    assert data["period"] == MONTH and data["periods"][-1] == MONTH
    breaches = data["kpis"]["sla_breaches"]
    assert breaches["direction"] == LOWER
    assert breaches["values"] == {"D1": 1.0, "D2": 1.0, COMPANY: 2.0}
    assert breaches["ranks"] == {"D1": 1, "D2": 1}  # a tie
    timeliness = data["kpis"]["visit_timeliness_rate"]
    better = max(("D1", "D2"), key=lambda d: timeliness["values"][d])
    assert timeliness["ranks"][better] == 1
    assert data["kpis"]["visits_due"]["ranks"] == {"D1": None, "D2": None}
    assert len(data["trends"]["sla_breaches"][COMPANY]) == len(data["periods"])
    json.dumps(data)  # plain data


def test_the_company_pdf_shows_every_department_side_by_side_with_ranks(data, policy,
                                                                        tmp_path):
    from pypdf import PdfReader

    target = render_company_report(data, policy, tmp_path / "company" / "company.pdf", "zh_CN")
    text = "".join(page.extract_text() for page in PdfReader(target).pages)
    for expected in ("公司客户服务总结报告", "2026年10月", "华东", "华南", "全公司", "各部门对比",
                     "#1", "#2", "▲ 越高越好", "▼ 越低越好", "不排名", "趋势", "SLA 超时次数",
                     f"policy {policy.version}"):  # the footer says which policy made it
        assert expected in text, expected
    assert "13812345678" not in text and "138****5678" not in text  # no customer data


def test_the_quarter_s_report_names_the_quarter(data, policy):
    quarter = {**data, "period": "2026-Q3",
               "periods": ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]}
    html = render_company_html(quarter, policy, "zh_CN")
    assert "公司客户服务季度总结报告" in html and "2026年第3季度" in html
    assert "2026-10-01 00:00" in html  # the quarter's cut-off
    assert "以下口径同月度报告" in html and "2025 Q2" in html  # trend columns
    assert "Q3 2026" in render_company_html(quarter, policy, "en")
    assert "以下口径同月度报告" not in render_company_html(data, policy, "zh_CN")


def test_a_department_name_is_text_never_markup(kpis, policy):
    hostile = "<img src=x onerror=alert(1)>"
    departments = kpis.departments.copy()
    departments.loc[departments["department_id"] == "D1", "name"] = hostile
    kpis = type(kpis)(**{**kpis.__dict__, "departments": departments})
    data = company_data([report_data(kpis, d) for d in ("D1", "D2")])
    html = render_company_html(data, policy, "en")
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    subject, _, body = company_email(data, policy, "en")
    assert hostile not in body and "\n" not in subject


def test_each_leadership_address_has_its_own_ledger_key_that_fits_the_key_column():
    one, other = recipient_key("ceo@example.com"), recipient_key("coo@example.com")
    assert one != other and len(one) == len(other) == 16  # mail_delivery.department_id
    assert recipient_key(" CEO@example.com ") == one


class Sink:
    """A transport that keeps what it sends, refusing the addresses in `refuse`."""

    sender = "revisit@example.com"

    def __init__(self, refuse=()) -> None:
        self.refuse, self.sent = set(refuse), []

    def send(self, message) -> None:
        from revisit.delivery.mail import DeliveryRefused

        if message["To"] in self.refuse:
            raise DeliveryRefused(f"{message['To']}: mailbox full", retryable=True)
        self.sent.append(message)


def test_each_address_gets_the_pdf_once_and_a_retry_resends_only_the_refused_one(
        data, policy, tmp_path):
    from revisit.delivery.company import deliver_company
    from revisit.delivery.mail import COMPANY_REPORT, DeliveryLedger, DeliveryRefused
    from revisit.io.db import make_engine
    from revisit.io.results import ensure_schema

    pdf = render_company_report(data, policy, tmp_path / "company.pdf")
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    ensure_schema(engine)
    ledger = DeliveryLedger(engine, "Asia/Shanghai", kind=COMPANY_REPORT)
    leaders = ["ceo@example.com", "coo@example.com"]
    first = Sink(refuse={"coo@example.com"})
    with pytest.raises(DeliveryRefused):  # retryable: the task's next try
        deliver_company(ledger, data, pdf, policy, first, leaders)
    assert [m["To"] for m in first.sent] == ["ceo@example.com"]
    [attachment] = list(first.sent[0].iter_attachments())
    assert attachment.get_filename() == f"revisit-company-report-{MONTH}.pdf"
    retry = Sink()
    results = deliver_company(ledger, data, pdf, policy, retry, leaders)
    assert [m["To"] for m in retry.sent] == ["coo@example.com"]
    assert [(r["recipient"], r["sent"]) for r in results] == [
        ("ceo@example.com", False), ("coo@example.com", True)]
    again = Sink()
    deliver_company(ledger, data, pdf, policy, again, leaders)
    assert again.sent == []
    engine.dispose()
