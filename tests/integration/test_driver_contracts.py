"""The drivers' real failures land in the class the tool expects, at the pinned versions
(issue #30, item 5).

``src/core/driver_errors.connection_failed`` tells a lost connection (retried, exit 2)
from a statement the server refused (not retried) by SQLSTATE and MySQL error numbers:
here each side is produced for real, so a driver whose errors change shape fails CI
instead of changing retries silently. (connectorx's panics are matched by text; their
real failures are in test_mysql_types.py: a zero date, a KILL mid-read. obstore's are
in test_s3_stage.py and test_faults_s3.py.)
"""

from __future__ import annotations

import contextlib

import psycopg2
import pymysql
import pytest

from src.core.driver_errors import connection_failed
from tests.support.databases import MySQLDatabase, PgSchema


def test_psycopg2_a_terminated_backend_is_a_lost_connection(pg: PgSchema) -> None:
    victim, killer = pg.connect(), pg.connect()
    try:
        with victim.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            (pid,) = cur.fetchone()
        with killer.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg2.Error) as lost, victim.cursor() as cur:
            cur.execute("SELECT 1")
        assert connection_failed(lost.value), repr(lost.value)
        with pytest.raises(psycopg2.Error) as closed, victim.cursor() as cur:
            cur.execute("SELECT 1")  # the connection object is closed now
        assert connection_failed(closed.value), repr(closed.value)
        with pytest.raises(psycopg2.Error) as refused, killer.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table")
        assert not connection_failed(refused.value), repr(refused.value)
    finally:
        victim.close()
        killer.close()


def test_pymysql_a_killed_connection_is_lost_a_syntax_error_is_not(
    mysql_db: MySQLDatabase,
) -> None:
    victim, killer = mysql_db.connect(), mysql_db.connect()
    try:
        with pytest.raises(pymysql.err.MySQLError) as refused, killer.cursor() as cur:
            cur.execute("SELEC 1")
        assert not connection_failed(refused.value), repr(refused.value)
        with killer.cursor() as cur:
            cur.execute("KILL %s", (victim.thread_id(),))
        with pytest.raises(pymysql.err.MySQLError) as lost, victim.cursor() as cur:
            cur.execute("SELECT 1")
        assert connection_failed(lost.value), repr(lost.value)
    finally:
        killer.close()
        with contextlib.suppress(pymysql.err.Error):
            victim.close()  # already gone
