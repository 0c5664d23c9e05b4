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
from revisit.delivery.pdf import FetchRefused, render_pdf, template_only_fetcher
from revisit.delivery.report import (
    APPENDIX_KPIS,
    Formats,
    build_context,
    highlights,
    kpi_moves,
    line_chart,
    render_html,
    report_data,
)
from revisit.rules.kpis import KPI_NAMES, compute_monthly
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


# ================================================================= the action page
def pages(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_action_page_lists_what_is_open_at_the_cut_off(english_pdf):
    # Hand-computed in tests/unit/rules/test_kpis.py (test_open_visits_..., test_open_...):
    # A1 has 2 overdue visits and 1 missed in October; T2's resolution is open, 4320 min =
    # 72 h overdue; visit timeliness moved 0.0% -> 25.0% against September.
    texts = pages(english_pdf)
    action = texts[1]  # right after the cover
    assert action.startswith("What needs action"), action[:80]
    assert "Still open at 2026-11-01 00:00" in action
    assert "Overdue and missed visits by agent" in action
    assert "张伟 A1 2 1 3" in action and "Department total 2 1 3" in action
    assert "for 30 days after it" in action  # the policy's max_overdue_days
    assert "Open SLA breaches" in action
    assert "T2 客户C1 General Resolution 2026-10-20 18:00 72 h 张伟" in action
    assert "138****5678" not in action and "13812345678" not in action  # no phone at all
    assert "Biggest moves against last month" in action
    assert "Visit timeliness 0.0% 25.0% +25.0 points ▲ better" in action


def test_a_department_with_nothing_open_says_so(kpis, policy):
    # D2: no open breach; A2's one missed visit (C5 periodic).
    text = pages(render_pdf(render_html(report_data(kpis, "D2"), policy, "en")))[1]
    assert "No breached target is still open at the end of the month." in text
    assert "刘洋 A2 0 1 1" in text


def test_the_action_page_reuses_the_highlights_ranking_of_moves(kpis, policy):
    # D2 against September: visit timeliness 0/1 -> 3/3 and problem resolution 0/1 -> 1/1
    # (+100 points each, 50x the 2-point threshold), SLA compliance 2/3 -> 4/5 (+13.3).
    data = report_data(kpis, "D2")
    context = build_context(data, policy, "en")
    moves = context["actions"]["moves"]
    assert [(m["name"], m["before"], m["after"], m["change"], m["better"]) for m in moves] == [
        ("visit_timeliness_rate", "0.0%", "100.0%", "+100.0 points", True),
        ("problem_resolution_rate", "0.0%", "100.0%", "+100.0 points", True),
        ("sla_compliance_rate", "66.7%", "80.0%", "+13.3 points", True)]
    fmt = Formats(context["tr"], "en")
    ranked, compared = kpi_moves(data, fmt, policy.report.highlights)
    assert compared == 3
    lines = highlights(data, policy.report.targets.model_dump(), fmt, policy.report.highlights)
    assert lines[:3] == [m["text"] for m in ranked]  # one ranking, two views


def test_moves_without_a_comparable_month_get_a_sentence(kpis, policy):
    data = report_data(kpis, "D1")
    data["series"] = {k: [None] * (len(v) - 1) + v[-1:] for k, v in data["series"].items()}
    actions = build_context(data, policy, "en")["actions"]
    assert actions["moves"] == []
    assert actions["moves_note"] == "No KPI can be compared with last month."


def test_report_data_of_the_action_page_is_small_and_masked(kpis, policy):
    data = report_data(kpis, "D1")
    actions = data["actions"]
    assert actions["counts"] == {"agents": 1, "overdue": 2, "missed": 1, "breaches": 1}
    assert [v["agent_id"] for v in actions["visits"]] == ["A1"]
    assert [b["ticket_id"] for b in actions["breaches"]] == ["T2"]
    assert "phone_masked" not in actions["breaches"][0]
    assert len(actions["breaches"]) <= policy.report.action_rows
    import json

    assert "13812345678" not in json.dumps(data, ensure_ascii=False)


def test_rows_beyond_the_action_rows_are_counted_in_a_sentence(kpis, policy):
    data = report_data(kpis, "D1")
    data["actions"]["counts"] = {"agents": 4, "overdue": 9, "missed": 5, "breaches": 12}
    actions = build_context(data, policy, "en")["actions"]
    assert actions["visits_more"] == ("3 more agents have 7 overdue and 4 missed visits, "
                                      "not listed one by one.")
    assert actions["breaches_more"] == "12 in all; the 1 most overdue are listed."
    assert actions["visits_total"] == {"overdue": 9, "missed": 5, "open": 14}


def test_report_data_from_before_the_action_page_still_renders(kpis, policy):
    data = report_data(kpis, "D1")
    del data["actions"]
    text = pages(render_pdf(render_html(data, policy, "en")))[1]
    assert "has no action lists; rerun the month's kpis task" in text
    assert "Visit timeliness 0.0% 25.0%" in text  # the moves come from the series


def test_overdue_time_of_an_open_breach_reads_at_a_glance():
    fmt = Formats(load_translations("zh_CN"), "zh_CN")
    assert [fmt.overdue(m) for m in (None, 0, 90, 4320, 149_580)] == [
        "–", "刚超时", "1.5 h", "72 h", "2,493 h"]


# ================================================================= the appendix
def test_appendix_defines_every_kpi_in_both_locales(kpis, policy):
    # DESIGN.md "Monthly KPI names", in its order.
    assert APPENDIX_KPIS == (
        "visits_due", "visits_on_time", "visit_timeliness_rate", "tickets_raised",
        "tickets_resolved", "problem_resolution_rate", "avg_satisfaction",
        "complaint_satisfaction", "sla_compliance_rate", "sla_breaches",
        "median_handling_hours", "sla_unknown")
    assert set(KPI_NAMES) <= set(APPENDIX_KPIS)
    data = report_data(kpis, "D1")
    for locale, title in (("en", "Appendix: KPI definitions"), ("zh_CN", "附录：指标定义")):
        tr = load_translations(locale)
        last = "".join(pages(render_pdf(render_html(data, policy, locale)))[-1].split())
        assert title.replace(" ", "") in last, locale
        for name in APPENDIX_KPIS:
            assert "".join(tr["kpi"][name].split()) in last, (locale, name)
            assert "".join(tr["definitions"][name].split()) in last, (locale, name)
    zh = build_context(data, policy, "zh_CN")["appendix"]
    assert zh[2] == {"name": "visit_timeliness_rate", "label": "回访及时率",
                     "definition": "按时回访次数 ÷ 应回访次数。", "target": "≥ 95.0%"}
    assert {d["name"]: d["target"] for d in zh}["median_handling_hours"] == "≤ 48.0 小时"
    assert {d["name"]: d["target"] for d in zh}["sla_breaches"] == "–"


# ================================================================= bounded rendering
def _long_names(data: dict, length: int) -> dict:
    """`data` with the department, head, agent and customer names `length` characters long."""
    def long(tag: str) -> str:
        return (tag * length)[:length]

    department = {**data["department"], "name": long("部门"), "head_name": long("Head")}
    agents = [{**row, "name": long("Agent")} for row in data["agents"]]
    breaches = [{**row, "customer_name": long("客户")} for row in data["breaches"]]
    return {**data, "department": department, "agents": agents, "breaches": breaches}


def test_long_crm_texts_are_shortened_with_a_mark_and_counted_in_the_quality_note(kpis, policy):
    data = _long_names(report_data(kpis, "D1"), 5000)
    limit = policy.report.max_text_chars
    context = build_context(data, policy, "en")
    name = context["department"]["name"]
    assert len(name) == limit and name.endswith("…") and name.startswith("部门部门")
    shortened = 2 + len(data["agents"]) + len(data["breaches"])
    assert (f"{shortened} texts from the CRM (names, categories) are longer than {limit} "
            "characters and are shortened, ending in “…”.") in context["quality"]
    assert data["department"]["name"] == "部门" * 2500  # the caller's data is left as it was
    html = render_html(data, policy, "en")
    assert "部门" * 40 not in html and "Agent" * 20 not in html and "客户" * 40 not in html
    _, text, body = email_content(data, policy, "en")
    assert "部门" * 40 not in text and "Head" * 20 not in body


def test_a_report_without_long_texts_says_nothing_about_shortening(kpis, policy):
    assert not any("shortened" in line
                   for line in build_context(report_data(kpis, "D1"), policy, "en")["quality"])


def test_a_department_with_100k_character_names_renders_as_fast_as_a_normal_one(kpis, policy):
    data = _long_names(report_data(kpis, "D1"), 100_000)
    started = time.perf_counter()
    pdf = render_pdf(render_html(data, policy, "en"))
    assert time.perf_counter() - started < 5.0
    assert "部门部门" in pdf_text(pdf)


def test_a_bounded_render_runs_in_a_child_and_makes_the_same_report(kpis, policy):
    pdf = render_pdf(render_html(report_data(kpis, "D1"), policy, "en"), timeout=120)
    assert pdf.startswith(b"%PDF-")
    assert "Monthly customer service review" in " ".join(pdf_text(pdf).split())


def test_a_render_past_its_timeout_is_stopped_and_not_retried(kpis, policy):
    from revisit.delivery.pdf import RenderTimeout

    started = time.perf_counter()
    with pytest.raises(RenderTimeout, match=r"did not finish within 0.2 s") as caught:
        render_pdf(render_html(report_data(kpis, "D1"), policy, "en"), timeout=0.2)
    assert time.perf_counter() - started < 5.0  # killed, not waited for
    assert caught.value.retryable is False


def test_a_failing_render_child_names_its_error(monkeypatch):
    from revisit.delivery import pdf

    monkeypatch.setattr(pdf, "_CHILD", "raise SystemExit('fonts are missing')")
    with pytest.raises(pdf.RenderFailed, match="the PDF render failed: fonts are missing"):
        render_pdf("<p>x</p>", timeout=30)


@pytest.fixture(scope="module")
def unknown_kpis(policy, calendar):
    # As tests/unit/rules/test_kpis.py: T8 (D1, urgent) planned and resolved without first
    # response or verification stamps -> two unknown verdicts, first_response and verification.
    from tests.monthly_fixtures import frame, ticket

    frames = hand_built_frames()
    extra = frame("tickets", [ticket("T8", "C1", "D1", "A1", "complaint", "urgent", "other",
                                     "2026-10-12 10:00", plan="2026-10-12 11:00",
                                     resolved="2026-10-12 15:00",
                                     fed_back="2026-10-13 10:00")])
    frames["tickets"] = pd.concat([frames["tickets"], extra], ignore_index=True)
    return compute_monthly(frames, policy, calendar, MONTH)


def test_the_quality_note_says_how_many_sla_verdicts_were_unknown_and_for_which_metrics(
        unknown_kpis, policy):
    en = build_context(report_data(unknown_kpis, "D1"), policy, "en")["quality"]
    assert ("2 SLA targets with a deadline this month are unknown — the ticket moved past the "
            "step without its time stamp, so they count as neither met nor breached: "
            "First response 1, Verification 1.") in en
    zh = build_context(report_data(unknown_kpis, "D1"), policy, "zh_CN")["quality"]
    assert any("2 个 SLA 时限状态未知" in line and "首次响应 1 个、信息核实 1 个" in line
               for line in zh)
    # D2 has none: no such line.
    assert not any("unknown" in line
                   for line in build_context(report_data(unknown_kpis, "D2"), policy,
                                             "en")["quality"])
    assert report_data(unknown_kpis, "D1")["series"]["sla_unknown"][-1] == 2
    assert "First response 1, Verification 1" in render_html(report_data(unknown_kpis, "D1"),
                                                            policy, "en")


def test_agents_csv_holds_the_numbers_of_the_reports_agent_table(kpis, english_pdf, tmp_path):
    """reports/M/agents.csv (the contract columns) and the report's agent table are the same
    rows and numbers: A1 of D1 is credited 4 due, 1 on time (25.0 %), made 2 visits, both
    reached, rated (80 + 60) / 2 = 70.0, handled 1 ticket resolved in October, 1 breach."""
    from revisit.rules.kpis import AGENT_COLUMNS, write_agents_csv

    csv = pd.read_csv(write_agents_csv(kpis, tmp_path / "agents.csv"),
                      dtype={"month": str, "department_id": str, "agent_id": str})
    assert list(csv.columns) == list(AGENT_COLUMNS)
    for dept in ("D1", "D2"):
        shown = pd.DataFrame(report_data(kpis, dept)["agents"]).assign(department_id=dept)
        mine = csv[csv["department_id"] == dept].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, shown.loc[:, list(AGENT_COLUMNS)],
                                      check_dtype=False)
    assert csv.iloc[0].tolist() == [MONTH, "D1", "A1", 4, 1, 2, 2, 70.0, 1, 1]
    text = " ".join(pdf_text(english_pdf).split())
    assert "Due On time Timeliness Visits made Reached Visit rating Tickets handled Breaches" \
        in text
    assert "A1 Agent 4 1 25.0% 2 2 70.0 1 1" in text


def test_the_report_shows_when_its_snapshot_was_read_not_when_it_was_rendered(kpis, policy):
    """A rerun from the same snapshot must give the same PDF: the cover names the snapshot's
    extraction minute (business zone), never the clock of the rendering."""
    data = {**report_data(kpis, "D1"), "extracted_at": "2026-11-01T00:07:41+08:00"}
    assert build_context(data, policy, "en")["extracted"] == "2026-11-01 00:07"
    utc = {**data, "extracted_at": "2026-10-31T16:07:41+00:00"}
    assert build_context(utc, policy, "en")["extracted"] == "2026-11-01 00:07"
    assert build_context(report_data(kpis, "D1"), policy, "en")["extracted"] == "–"
