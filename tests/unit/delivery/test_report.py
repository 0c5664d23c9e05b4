"""The monthly PDF: the right numbers for a hand-built month, hostile CRM text stays text, and
the renderer fetches nothing outside include/templates/."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest
from pypdf import PdfReader

from revisit.config.paths import TEMPLATES_DIR
from revisit.config.translations import load_translations
from revisit.delivery.mail import email_content
from revisit.delivery.report import (
    FetchRefused,
    Formats,
    build_context,
    line_chart,
    render_html,
    render_pdf,
    report_data,
    template_only_fetcher,
)
from revisit.rules.kpis import compute_monthly
from tests.monthly_fixtures import hand_built_frames

MONTH = "2026-10"
HOSTILE_DEPT = '<img src="file:///etc/passwd">'
HOSTILE_CUSTOMER = "<style>body{background:url(http://169.254.169.254/)}</style>"
HOSTILE_AGENT = '<script>alert(1)</script><link rel="stylesheet" href="http://169.254.169.254/x">'


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def kpis(policy, calendar):
    return compute_monthly(hand_built_frames(), policy, calendar, MONTH)


@pytest.fixture(scope="module")
def hostile_kpis(policy, calendar):
    frames = hand_built_frames()
    frames["departments"] = frames["departments"].assign(
        name=pd.Series([HOSTILE_DEPT, "华南"], dtype="string"))
    customers = frames["customers"].copy()
    customers.loc[customers["customer_id"] == "C1", "name"] = HOSTILE_CUSTOMER
    frames["customers"] = customers
    agents = frames["agents"].copy()
    agents.loc[agents["agent_id"] == "A1", "name"] = HOSTILE_AGENT
    frames["agents"] = agents
    return compute_monthly(frames, policy, calendar, MONTH)


@pytest.fixture(scope="module")
def english_pdf(kpis, policy):
    return render_pdf(render_html(report_data(kpis, "D1", quarantined=2), policy, "en"))


def test_pdf_holds_the_departments_numbers(english_pdf):
    text = " ".join(pdf_text(english_pdf).split())
    assert english_pdf.startswith(b"%PDF-")
    for expected in ("Monthly customer service review", "October 2026",
                     "Visit timeliness", "25.0%",  # 1 of 4 visits on time
                     "Problem resolution", "50.0%",  # 1 of 2 tickets resolved
                     "Satisfaction", "73.3",  # (80 + 60 + 80) / 3
                     "Complaint satisfaction", "80.0",
                     "SLA compliance", "85.7%",  # 6 / 7
                     "48.0 h",  # median handling time
                     "1 of 4 visits on time", "1 of 2 tickets resolved", "1 SLA breaches",
                     "T2", "72.0 h",  # worst breach: 4320 business minutes
                     "138****5678", "Product function", "100.0%",
                     "quarantined 2 rows", "1 customers are marked do-not-call"):
        assert expected in text, expected
    assert "13812345678" not in text  # phones are masked in the report


def test_highlights_compare_with_the_previous_month(kpis, policy):
    context = build_context(report_data(kpis, "D1"), policy, "en")
    lines = context["highlights"]
    # September: C1's welcome visit was missed (0 of 1), October 1 of 4
    assert ("Visit timeliness rose 25.0 points against September 2026 (0.0% → 25.0%)."
            in lines)
    assert any(line.startswith("Visit timeliness at 25.0% misses the 95.0% target")
               for line in lines)
    tiles = {t["name"]: t for t in context["tiles"]}
    assert tiles["visit_timeliness_rate"]["good"] is False
    assert tiles["median_handling_hours"]["good"] is True  # 48 h meets a 48 h target


def test_chinese_report_renders_in_a_cjk_font(kpis, policy):
    pdf = render_pdf(render_html(report_data(kpis, "D1"), policy, "zh_CN"))
    text = pdf_text(pdf)
    assert "回访及时率" in text and "2026年10月" in text and "华东" in text
    fonts = {str(font.get("/BaseFont")) for page in PdfReader(io.BytesIO(pdf)).pages
             for font in (page["/Resources"].get("/Font") or {}).values()
             for font in [font.get_object()]}
    assert any("CJK" in name for name in fonts), fonts


def test_hostile_crm_text_is_escaped_and_fetches_nothing(hostile_kpis, policy):
    html = render_html(report_data(hostile_kpis, "D1"), policy, "en")
    for raw in (HOSTILE_DEPT, HOSTILE_CUSTOMER, HOSTILE_AGENT, "<script", "<style>body"):
        assert raw not in html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    fetcher = template_only_fetcher()
    pdf = render_pdf(html, fetcher)
    assert fetcher.refused == []
    assert fetcher.requested, "the stylesheet is fetched through the fetcher"
    root = TEMPLATES_DIR.resolve().as_uri() + "/"
    assert all(url.startswith(root) for url in fetcher.requested), fetcher.requested
    text = " ".join(pdf_text(pdf).split())
    assert "<img src=" in text  # shown as text, literally
    assert "169.254.169.254" in text


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "https://example.com/logo.png",
    "data:text/css,body{color:red}",
    (TEMPLATES_DIR / "report" / ".." / ".." / "config" / "policy.yaml").as_uri(),
    "ftp://example.com/x",
])
def test_fetcher_refuses_everything_outside_the_templates(url):
    fetcher = template_only_fetcher()
    with pytest.raises(FetchRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_fetcher_serves_the_templates_own_assets():
    fetcher = template_only_fetcher()
    response = fetcher.fetch((TEMPLATES_DIR / "report" / "report.css").as_uri())
    assert b"@page" in response.read()
    assert response.content_type == "text/css"


def test_html_that_points_outside_is_rendered_without_those_resources(policy):
    html = ('<html><head><link rel="stylesheet" href="file:///etc/passwd">'
            '<style>body { background: url(http://169.254.169.254/) }</style></head>'
            '<body><img src="file:///etc/hostname"><p>ok</p></body></html>')
    fetcher = template_only_fetcher()
    assert render_pdf(html, fetcher).startswith(b"%PDF-")
    assert set(fetcher.refused) == {"file:///etc/passwd", "http://169.254.169.254/",
                                    "file:///etc/hostname"}


def test_render_time_under_two_seconds(kpis, policy, english_pdf):
    data = report_data(kpis, "D2")
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        render_pdf(render_html(data, policy))
        timings.append(time.perf_counter() - started)
    assert min(timings) < 2.0, timings


def test_trend_chart_geometry_leaves_gaps_for_missing_months():
    fmt = Formats(load_translations("en"), "en")
    chart = line_chart("visit_timeliness_rate", [0.8, None, 0.9, 0.95], list("abcd"), 0.95,
                       fmt)
    assert len(chart["lines"]) == 2  # [a] and [c, d]
    assert chart["last"]["label"] == "95.0%"
    assert chart["target_y"] is not None
    ys = [p["y"] for p in chart["points"]]
    assert ys[0] > ys[1] > ys[2]  # higher values are drawn higher (smaller y)


def test_translations_cover_every_english_key():
    def keys(tree, prefix=""):
        out = set()
        for key, value in tree.items():
            out |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    import yaml

    from revisit.config.translations import I18N_DIR

    en = yaml.safe_load((I18N_DIR / "en.yaml").read_text("utf-8"))
    zh = yaml.safe_load((I18N_DIR / "zh_CN.yaml").read_text("utf-8"))
    assert keys(en) == keys(zh)


def test_email_bodies_escape_html_and_keep_text_plain(hostile_kpis, policy):
    subject, text, html = email_content(report_data(hostile_kpis, "D1"), policy, "en")
    assert HOSTILE_DEPT in subject and "\n" not in subject
    assert HOSTILE_DEPT in text  # plain text: shown as written
    assert HOSTILE_DEPT not in html and "&lt;img" in html


def test_a_department_without_any_activity_still_gets_a_readable_report(policy, calendar):
    from tests.monthly_fixtures import frame

    frames = hand_built_frames()
    frames["departments"] = pd.concat([frames["departments"], frame("departments", [
        {"department_id": "D3", "name": "空部门", "head_name": None, "head_email": None}])],
        ignore_index=True)
    data = report_data(compute_monthly(frames, policy, calendar, MONTH), "D3")
    context = build_context(data, policy, "en")
    assert context["highlights"] == ["No visits, tickets or SLA deadlines fell in this month."]
    assert [t["status"] for t in context["tiles"]] == ["no data"] * 6
    text = pdf_text(render_pdf(render_html(data, policy, "en")))
    assert "None this month." in text
