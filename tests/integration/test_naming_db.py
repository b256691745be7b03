"""Hostile names survive real MariaDB and PostgreSQL when quoted by src.utils.naming."""

from __future__ import annotations

import psycopg2
import pymysql
import pytest

from src.utils.naming import (
    REDSHIFT_SYSTEM_COLUMNS,
    normalize_column_name,
    normalize_table_name,
    quote_literal,
    quote_mysql,
    quote_mysql_table,
    quote_pg,
    quote_pg_table,
)
from tests.support.databases import MySQLDatabase, PgSchema

HOSTILE_NAMES = [
    "we`ird",
    "``",
    'dou"ble',
    "semi;colon); DROP TABLE x; --",
    "it's",
    "Order.ID",
    "190_time",
    "ünïcödé 中文",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_mysql_table_and_column(mysql_db: MySQLDatabase, name: str) -> None:
    table = quote_mysql_table(mysql_db.name, name)
    column = quote_mysql(name)
    mysql_db.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, {column} VARCHAR(10))")
    mysql_db.execute(f"INSERT INTO {table} (id, {column}) VALUES (1, %s)", ["v"])
    assert mysql_db.execute(f"SELECT {column} FROM {table} WHERE id = 1") == [("v",)]
    columns = mysql_db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [mysql_db.name, name],
    )
    assert columns == [("id",), (name,)]


def test_mysql_has_no_identifiers_outside_the_bmp(mysql_db: MySQLDatabase) -> None:
    # MariaDB/MySQL refuse supplementary characters in identifiers
    # (https://mariadb.com/kb/en/identifier-names/), so emoji names only reach
    # this tool from the target side; quoting still produces valid SQL.
    with pytest.raises(pymysql.err.MySQLError):
        mysql_db.execute(f"CREATE TABLE {quote_mysql('😀')} (id INT)")


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "😀 emoji", "OID"])
def test_pg_table_and_column(pg: PgSchema, name: str) -> None:
    table_name, column_name = normalize_table_name(name), normalize_column_name(name)
    table = quote_pg_table(pg.name, table_name)
    column = quote_pg(column_name)
    pg.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, {column} VARCHAR(10))")
    pg.execute(f"INSERT INTO {quote_pg(table_name)} (id, {column}) VALUES (1, %s)", ["v"])
    assert pg.execute(f"SELECT {column} FROM {table} WHERE id = 1") == [("v",)]
    columns = pg.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [pg.name, table_name],
    )
    assert columns == [("id",), (column_name,)]


@pytest.mark.parametrize(
    "name", sorted(REDSHIFT_SYSTEM_COLUMNS - {"oid", "insertxid", "deletexid"})
)
def test_pg_refuses_system_column_names_that_normalisation_avoids(pg: PgSchema, name: str) -> None:
    # PostgreSQL 12+ dropped the oid system column and insertxid/deletexid are
    # Redshift-only; every other name is refused even when quoted.
    with pytest.raises(psycopg2.Error):
        pg.execute(f"CREATE TABLE refused ({quote_pg(name)} INT)")
    pg.execute(f"CREATE TABLE accepted ({quote_pg(normalize_column_name(name))} INT)")


@pytest.mark.parametrize("value", ["it's", "''", "a;b'); DROP TABLE x; --", "😀 ünï", "s3://b/k/"])
def test_pg_quote_literal(pg: PgSchema, value: str) -> None:
    assert pg.execute(f"SELECT {quote_literal(value)}") == [(value,)]
