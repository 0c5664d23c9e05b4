"""Hand-built CRM databases for tests: the canonical schema with a few chosen rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

from revisit.config.schema import TABLES
from revisit.io.db import CRM_SCHEMA, ddl_statements


def empty_frames() -> dict[str, pd.DataFrame]:
    """One empty frame per canonical table, with its columns."""
    return {name: pd.DataFrame(columns=list(t.columns)) for name, t in TABLES.items()}


def minimal_rows() -> dict[str, list[dict]]:
    """A tiny consistent CRM: one department, a supervisor, an agent, one customer."""
    return {
        "departments": [{"department_id": "D01", "name": "华东客服部", "head_name": "王芳",
                         "head_email": "wang.fang@example.com"}],
        "agents": [
            {"agent_id": "A001", "name": "李娜", "email": "li.na@example.com",
             "department_id": "D01", "role": "supervisor", "active": 1, "daily_capacity": None},
            {"agent_id": "A002", "name": "张伟", "email": "zhang.wei@example.com",
             "department_id": "D01", "role": "agent", "active": 1, "daily_capacity": 40},
        ],
        "customers": [
            {"customer_id": "C0000001", "name": "上海恒信科技有限公司", "industry": "制造业",
             "contact_name": "陈明", "contact_title": "采购经理", "phone": "13812345678",
             "email": "chen@example.com", "source": "展会", "tier": "standard",
             "owner_agent_id": "A002", "department_id": "D01",
             "cooperation_start_date": "2024-03-15", "do_not_call": 0,
             "created_at": "2024-03-15 10:00:00", "updated_at": "2026-10-01 09:00:00"},
        ],
    }


def build_crm(url: str, rows: dict[str, list[dict]], skip_tables: tuple[str, ...] = ()) -> str:
    """Create the canonical schema at `url` and insert `rows` (table -> list of dicts)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in ddl_statements(CRM_SCHEMA, engine.dialect.name):
            if any(f"TABLE {t} " in statement or f"TABLE {t}(" in statement or
                   f" ON {t} " in statement or f" ON {t}(" in statement for t in skip_tables):
                continue
            conn.exec_driver_sql(statement)
    for name, table_rows in rows.items():
        if table_rows:
            pd.DataFrame(table_rows).to_sql(name, engine, if_exists="append", index=False)
    engine.dispose()
    return url


def sqlite_crm(folder: Path, rows: dict[str, list[dict]], **kwargs) -> str:
    return build_crm(f"sqlite:///{folder / 'crm.sqlite'}", rows, **kwargs)
