"""Privacy, proven on real DAG runs (`airflow dags test revisit_daily` and `revisit_monthly` in
the e2e sandbox, e-mail to a real SMTP sink):

- no customer name, contact, phone or e-mail in the task logs or in XCom (the sandbox's
  airflow.db): XCom carries paths and counts;
- a full phone number appears only in the call list of the agent who calls that customer (and
  the SMS pre-notice list, whose contract is to hold it): never in sla/, the quality summaries,
  reports/, report_data/ or an e-mail; PDFs and e-mails show phones masked (138****5678);
- every output file is mode 0640 or stricter and every output folder 0750 or stricter.
"""

from __future__ import annotations

import io
import re
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from tests.e2e.conftest import Sandbox, mail_sink, make_sandbox, smtp_connection
from tests.reliability.conftest import D, read_csv

__all__ = ["mail_sink"]  # the e2e fixture, used here as is

DAY = D.isoformat()
MONTH_RUN = "2026-11-02"  # reviews October 2026
MONTH = "2026-10"
MASKED = re.compile(r"\d{3}\*{4}\d{4}")
AGENT_FILE = re.compile(r"^A\d+$")


@pytest.fixture(scope="module")
def box(tmp_path_factory, mail_sink) -> Sandbox:
    box = make_sandbox(tmp_path_factory.mktemp("privacy"), customers=300, as_of=DAY,
                       entry_errors=0.01)
    box.env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mail_sink.host, mail_sink.port)
    daily = box.dags_test("revisit_daily", DAY)
    assert daily.state == "success", daily.log[-4000:]
    monthly = box.dags_test("revisit_monthly", MONTH_RUN)
    assert monthly.state == "success", monthly.log[-4000:]
    box.logs = daily.log + monthly.log  # type: ignore[attr-defined]
    return box


@pytest.fixture(scope="module")
def customers(box: Sandbox) -> pd.DataFrame:
    with sqlite3.connect(box.crm) as conn:
        return pd.read_sql("SELECT customer_id, name, contact_name, phone, email FROM customers",
                           conn).astype("string")


@pytest.fixture(scope="module")
def phones(customers) -> set[str]:
    return {p for p in customers["phone"].dropna() if len(p) >= 7}


def _personal(customers: pd.DataFrame) -> set[str]:
    values = set()
    for column in ("name", "contact_name", "phone", "email"):
        values |= {v for v in customers[column].dropna() if len(v) >= 4 or column == "name"}
    return values


def _task_logs(box: Sandbox) -> str:
    files = (Path(box.env["AIRFLOW_HOME"]) / "logs").rglob("*")
    return box.logs + "".join(p.read_text(errors="replace")  # type: ignore[attr-defined]
                              for p in files if p.is_file())


def test_task_logs_hold_no_customer_data(box, customers):
    logs = _task_logs(box)
    assert "quality" in logs and "snapshot" in logs  # the tasks did log
    found = [v for v in _personal(customers) if v in logs]
    assert not found, found[:10]


def test_xcom_holds_only_paths_and_counts(box, customers):
    with sqlite3.connect(Path(box.env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        rows = conn.execute("SELECT dag_id, task_id, key, value FROM xcom").fetchall()
    assert {r[0] for r in rows} == {"revisit_daily", "revisit_monthly"}
    values = [(task, str(value if not isinstance(value, bytes) else value.decode("utf-8",
                                                                              "replace")))
              for _, task, _, value in rows]
    personal = _personal(customers)
    for task, value in values:
        assert len(value) < 5000, (task, len(value))  # small: never rows
        found = [v for v in personal if v in value]
        assert not found, (task, found[:5])


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _pdf_text(path: Path | bytes) -> str:
    data = path.read_bytes() if isinstance(path, Path) else path
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _text_of(path: Path) -> str:
    if path.suffix == ".pdf":
        return _pdf_text(path)
    if path.suffix in (".parquet", ".xlsx", ".sqlite"):
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


def test_full_phones_only_in_the_callers_own_list(box, customers, phones):
    lists = box.output / "call_lists" / DAY
    agent_files = [p for p in lists.glob("*.csv") if AGENT_FILE.match(p.stem)]
    assert agent_files
    owner = {}
    for path in agent_files:
        rows = read_csv(path)
        owner |= dict.fromkeys(rows["phone"], path.stem)
    for path in agent_files:
        text = path.read_text(encoding="utf-8")
        others = [p for p in phones if p in text and owner.get(p) != path.stem]
        assert not others, (path.name, others[:5])
    # The XLSX holds the same rows as the CSV of the same agent.
    for path in lists.glob("*.csv"):
        if AGENT_FILE.match(path.stem) or path.stem == "sms_notice":
            continue  # sms_notice.csv: the contract's SMS list, phones by design
        text = path.read_text(encoding="utf-8")
        assert not [p for p in phones if p in text], path.name


def test_no_full_phone_in_sla_quality_summaries_reports_or_report_data(box, phones):
    out = box.output
    checked = []
    for folder in (out / "sla", out / "reports", out / "report_data"):
        checked += _files(folder)
    checked += [p for p in _files(out / "quality") if p.name != "quarantine.csv"]
    assert any(p.suffix == ".pdf" for p in checked) and any(p.name == "summary.md"
                                                            for p in checked)
    for path in checked:
        text = _text_of(path)
        found = [p for p in phones if p in text]
        assert not found, (str(path.relative_to(out)), found[:3])


def test_pdfs_and_emails_show_phones_masked(box, phones, mail_sink):
    pdfs = sorted((box.output / "reports" / MONTH).glob("*.pdf"))
    assert pdfs
    assert any(MASKED.search(_pdf_text(p)) for p in pdfs)
    messages = mail_sink.messages()
    digests = [m for m in messages if m["X-Revisit-Digest"]]
    reports = [m for m in messages if m["X-Revisit-Report"]]
    assert digests and reports
    for message in messages:
        parts = [message.get_body(("plain",)).get_content(),
                 message.get_body(("html",)).get_content()]
        parts += [_pdf_text(a.get_content()) for a in message.iter_attachments()
                  if a.get_content_type() == "application/pdf"]
        text = " ".join(parts)
        found = [p for p in phones if p in text]
        assert not found, (message["Subject"], found[:3])
    assert all(MASKED.search(m.get_body(("plain",)).get_content()) for m in digests)


def test_outputs_are_not_readable_by_others(box):
    loose = []
    for path in [box.output, *box.output.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        limit = 0o750 if path.is_dir() else 0o640
        if mode & ~limit:
            loose.append(f"{path.relative_to(box.output)} {oct(mode)}")
    assert not loose, loose
