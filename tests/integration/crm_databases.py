"""CRM databases for integration tests: scratch databases (SQLite in a temp folder, or a
uniquely named database on the local PostgreSQL / MariaDB server, dropped again afterwards) and
one representation for frames that different drivers return.

A server that cannot be reached skips the test on a laptop and fails it under CI
(tests.conftest.service_unavailable). Other servers: env REVISIT_TEST_POSTGRES_URL /
REVISIT_TEST_MARIADB_URL, an admin URL whose user may create and drop databases.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from revisit.config.schema import TABLES
from tests.conftest import service_unavailable

CONNECT_TIMEOUT = {"connect_timeout": 5}
NAME_PREFIX = "revisit_test_"


@dataclass(frozen=True)
class Server:
    label: str         # for messages
    admin_env: str     # env var that overrides admin_url
    admin_url: str     # a URL whose user may create and drop databases
    create: str        # CREATE DATABASE ... ({name})
    drop: str          # DROP DATABASE ... ({name})
    exists: str        # a query that returns a row when database :name exists

    def admin(self) -> str:
        return os.environ.get(self.admin_env) or self.admin_url


SERVERS = {
    "postgresql": Server(
        "PostgreSQL", "REVISIT_TEST_POSTGRES_URL",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        "CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0",
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        "SELECT 1 FROM pg_database WHERE datname = :name",
    ),
    "mariadb": Server(
        "MariaDB", "REVISIT_TEST_MARIADB_URL",
        "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4",
        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        "DROP DATABASE IF EXISTS {name}",
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name",
    ),
}
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]


def database_exists(backend: str, name: str) -> bool:
    server = SERVERS[backend]
    engine = create_engine(server.admin(), connect_args=CONNECT_TIMEOUT)
    try:
        with engine.connect() as conn:
            return conn.execute(text(server.exists), {"name": name}).first() is not None
    finally:
        engine.dispose()


@contextlib.contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of `backend` (sqlite, postgresql, mariadb); a server
    database is created with a unique name and dropped (even if the test fails)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{NAME_PREFIX}{uuid.uuid4().hex[:12]}.sqlite'}"
        return
    server = SERVERS[backend]
    admin = create_engine(server.admin(), isolation_level="AUTOCOMMIT",
                          connect_args=CONNECT_TIMEOUT)
    try:
        conn = admin.connect()
    except OperationalError as error:
        admin.dispose()
        service_unavailable(server.label, str(error.orig).strip().splitlines()[0])
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        conn.exec_driver_sql(server.create.format(name=name))
        yield make_url(server.admin()).set(database=name).render_as_string(hide_password=False)
    finally:
        conn.exec_driver_sql(server.drop.format(name=name))
        conn.close()
        admin.dispose()


def normalised(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Table `name` in one representation, whatever driver or file it came from: canonical
    columns, sorted by key; timestamps datetime64[s], integers Int64, money rounded floats,
    text str."""
    out = pd.DataFrame(index=frame.index)
    for col, kind in TABLES[name].columns.items():
        values = frame[col]
        if kind in ("datetime", "date"):
            out[col] = pd.to_datetime(values).astype("datetime64[s]")
        elif kind in ("int", "bool"):
            out[col] = pd.to_numeric(values).astype("Int64")
        elif kind == "money":
            out[col] = pd.to_numeric(values).astype(float).round(2)
        else:
            out[col] = values.astype("str")
    return out.sort_values(list(TABLES[name].key)).reset_index(drop=True)
