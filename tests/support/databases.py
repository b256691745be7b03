"""Throwaway MariaDB databases and PostgreSQL schemas on the local servers."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
import pymysql

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
MYSQL_USER = "root"
MYSQL_PASSWORD = ""

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_DATABASE = "postgres"


@dataclass
class MySQLDatabase:
    """A database created for one test, dropped afterwards."""

    name: str
    host: str = MYSQL_HOST
    port: int = MYSQL_PORT
    user: str = MYSQL_USER
    password: str = MYSQL_PASSWORD

    def connect(self, **kwargs: Any) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.name,
            charset="utf8mb4",
            autocommit=True,
            **kwargs,
        )

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(sql, rows)


@dataclass
class PgSchema:
    """A schema created for one test in the local PostgreSQL, dropped afterwards."""

    name: str
    host: str = PG_HOST
    port: int = PG_PORT
    user: str = PG_USER
    database: str = PG_DATABASE

    def connect(self) -> Any:
        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname=self.database
        )
        conn.autocommit = True
        return conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{self.name}"')
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def mysql_database(prefix: str = "t") -> Iterator[MySQLDatabase]:
    """Create a uniquely named MariaDB database; drop it on exit."""
    db = MySQLDatabase(_unique(prefix))
    admin = pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD, autocommit=True
    )
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db.name}` CHARACTER SET utf8mb4")
        yield db
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db.name}`")
        admin.close()


@contextmanager
def pg_schema(prefix: str = "t") -> Iterator[PgSchema]:
    """Create a uniquely named PostgreSQL schema; drop it (cascade) on exit."""
    schema = PgSchema(_unique(prefix))
    admin = schema.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema.name}"')
        yield schema
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema.name}" CASCADE')
        admin.close()


def closed_port() -> int:
    """A loopback port nobody listens on (for "connection refused" tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
