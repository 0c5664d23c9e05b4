"""Portable DDL files and engines for the three databases Revisit talks to.

The SQL lives in include/sql/*.sql; one file serves SQLite, PostgreSQL and MySQL/MariaDB with
a couple of placeholders filled per dialect, so there is a single schema to keep right. Every
module that creates tables (the demo CRM, the results database, test fixtures) renders its DDL
with `ddl_statements` and opens databases with `make_engine`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url

from revisit.config.paths import SQL_DIR

CRM_SCHEMA = SQL_DIR / "crm" / "schema.sql"  # the canonical CRM model (demo CRM, tests)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# MySQL/MariaDB: DATETIME (their TIMESTAMP is UTC-stored and may auto-update) and utf8mb4 so
# Chinese text round-trips.
_MYSQL = {"timestamp": "DATETIME",
          "table_options": "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"}
_MYSQL = {**_MYSQL, "ddl_lock": ""}  # MySQL's metadata locks already serialise CREATE TABLE
# PostgreSQL: two CREATE TABLE IF NOT EXISTS at the same moment can both pass the "not exists"
# check and one then fails on the catalogue's unique index, so creators that may race (parallel
# tasks) take a transaction-scoped advisory lock first. SQLite locks the whole file.
_PG_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('revisit.ddl'))"
DIALECT_VALUES: dict[str, dict[str, str]] = {
    "sqlite": {"timestamp": "TIMESTAMP", "table_options": "", "ddl_lock": ""},
    "postgresql": {"timestamp": "TIMESTAMP", "table_options": "", "ddl_lock": _PG_DDL_LOCK},
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
}


class SchemaFileError(ValueError):
    """A DDL file that cannot be rendered for a dialect."""


def ddl_statements(path: Path, dialect: str) -> list[str]:
    """The statements of a DDL file for one dialect (sqlite, postgresql, mysql, mariadb):
    placeholders filled, comments dropped, one statement per item (a statement ends with ';'
    at the end of a line)."""
    if dialect not in DIALECT_VALUES:
        raise SchemaFileError(f"Revisit supports SQLite, PostgreSQL and MySQL/MariaDB, "
                              f"not {dialect!r}")
    values = DIALECT_VALUES[dialect]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SchemaFileError(f"{path}: unknown placeholder {{{{{name}}}}}")
        return values[name]

    lines = [line.split("--", 1)[0].rstrip() for line in path.read_text("utf-8").splitlines()]
    text = _PLACEHOLDER.sub(fill, "\n".join(lines))
    return [s.strip() for s in re.split(r";\s*$", text, flags=re.MULTILINE) if s.strip()]


def make_engine(url: str | URL) -> Engine:
    """An engine for `url` (connections checked before use). A SQLite file Revisit creates
    (results.sqlite, a demo CRM) holds personal data: it and its missing folders are created
    owner/group-only first (SQLite gives its journal the database file's permissions)."""
    from revisit.io.files import FILE_MODE, ensure_dir

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:"):
        path = Path(database)
        ensure_dir(path.parent)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
            os.chmod(path, FILE_MODE)  # os.open's mode is filtered by the umask
        except FileExistsError:
            pass  # an existing database keeps the permissions its owner gave it
    return create_engine(parsed, pool_pre_ping=True)


__all__ = ["CRM_SCHEMA", "DIALECT_VALUES", "SchemaFileError", "ddl_statements", "make_engine"]
