"""Airflow connections -> SQLAlchemy URLs. Credentials live only in Airflow connections."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url

# Airflow conn_type -> SQLAlchemy driver used by Revisit.
DRIVERS = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


class ConnectionMissingError(RuntimeError):
    """The Airflow connection a task needs is not configured."""


def url_from_parts(
    conn_type: str,
    *,
    host: str | None = None,
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    extra: dict[str, Any] | None = None,
) -> URL:
    """Build the SQLAlchemy URL of an Airflow connection's fields.

    `extra.sqlalchemy_url` wins when present (any dialect SQLAlchemy knows)."""
    extra = dict(extra or {})
    if extra.get("sqlalchemy_url"):
        return make_url(extra["sqlalchemy_url"])
    if conn_type not in DRIVERS:
        raise ValueError(f"unsupported connection type {conn_type!r}; use one of {sorted(DRIVERS)}"
                         " or set extra.sqlalchemy_url")
    if conn_type == "sqlite":
        path = schema or host or ""
        return URL.create("sqlite", database=path or None)
    query = {str(k): str(v) for k, v in extra.items() if isinstance(v, (str, int))}
    if conn_type in ("mysql", "mariadb"):
        query.setdefault("charset", "utf8mb4")
    return URL.create(
        DRIVERS[conn_type], username=login or None, password=password or None,
        host=host or None, port=port or None, database=schema or None, query=query,
    )


def airflow_sqlalchemy_url(conn_id: str) -> URL:
    """The SQLAlchemy URL of Airflow connection `conn_id`; a clear error when it is missing."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionMissingError(
            f"Airflow connection {conn_id!r} is not defined: set it in the UI/CLI or as env "
            f"AIRFLOW_CONN_{conn_id.upper()} (e.g. sqlite:////abs/path/crm.sqlite)"
        ) from None
    return url_from_parts(
        conn.conn_type or "", host=conn.host, port=conn.port, login=conn.login,
        password=conn.password, schema=conn.schema, extra=conn.extra_dejson,
    )
