"""Airflow connections become SQLAlchemy URLs; a missing one fails naming the connection."""

from __future__ import annotations

import pytest

from revisit.bridge.connections import (
    ConnectionMissingError,
    airflow_sqlalchemy_url,
    url_from_parts,
)


def test_postgres_connection_fields_make_a_psycopg2_url():
    url = url_from_parts("postgres", host="db", port=5432, login="crm", password="s3cret",
                         schema="crm")
    assert url.render_as_string(hide_password=False) == \
        "postgresql+psycopg2://crm:s3cret@db:5432/crm"


def test_mysql_and_mariadb_connections_use_utf8mb4():
    for conn_type in ("mysql", "mariadb"):
        url = url_from_parts(conn_type, host="db", login="root", schema="crm")
        assert url.drivername == "mysql+pymysql"
        assert url.query["charset"] == "utf8mb4"


def test_sqlite_connection_path_comes_from_schema():
    assert url_from_parts("sqlite", schema="/data/crm.sqlite").database == "/data/crm.sqlite"


def test_extra_sqlalchemy_url_overrides_the_fields():
    url = url_from_parts("postgres", host="ignored",
                         extra={"sqlalchemy_url": "postgresql+psycopg://u@h/crm"})
    assert url.drivername == "postgresql+psycopg" and url.host == "h"


def test_unsupported_connection_type_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported connection type 'oracle'"):
        url_from_parts("oracle", host="db")


def test_connection_from_the_environment_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{tmp_path}/crm.sqlite")
    url = airflow_sqlalchemy_url("crm_db")
    assert url.get_backend_name() == "sqlite"
    assert url.database == f"{tmp_path}/crm.sqlite"


def test_missing_connection_fails_naming_it_and_how_to_set_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CRM_DB", raising=False)
    with pytest.raises(ConnectionMissingError,
                       match=r"'crm_db' is not defined.*AIRFLOW_CONN_CRM_DB"):
        airflow_sqlalchemy_url("crm_db")
