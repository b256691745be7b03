"""Shared fixtures: real MariaDB, PostgreSQL, S3 API server and sshd on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import MySQLDatabase, PgSchema, mysql_database, pg_schema


@pytest.fixture
def mysql_db() -> Iterator[MySQLDatabase]:
    """A fresh MariaDB database for one test."""
    with mysql_database() as db:
        yield db


@pytest.fixture
def pg() -> Iterator[PgSchema]:
    """A fresh PostgreSQL schema for one test."""
    with pg_schema() as schema:
        yield schema
