"""A table's run reuses one target connection across its steps (#13 per-table cost)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from src.core.connections import ReusedConnection
from tests.support.databases import PgSchema


def test_one_connection_for_sequential_steps_a_new_one_when_busy_or_lost(pg: PgSchema) -> None:
    opened: list[Any] = []

    @contextlib.contextmanager
    def open_pg() -> Iterator[Any]:
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database)
        opened.append(conn)
        try:
            yield conn
        finally:
            conn.close()

    reused = ReusedConnection(open_pg)
    with reused() as first, first.cursor() as cur:
        cur.execute("SELECT 1")  # leaves a transaction open: rolled back at the step's end
    with reused() as again:
        assert again is first and again.status == psycopg2.extensions.STATUS_READY
        with reused() as other:  # busy: verify's second side gets its own
            assert other is not first
        assert other.closed
    with pytest.raises(psycopg2.Error), reused() as failing, failing.cursor() as cur:
        cur.execute("SELECT * FROM no_such_table")
    with reused() as after, after.cursor() as cur:  # the failed step was rolled back
        cur.execute("SELECT 2")
        assert after is first and cur.fetchone() == (2,)
    first.close()  # lost: the next step opens a new one
    with reused() as fresh:
        assert fresh is not first and not fresh.closed
    reused.close()
    assert all(conn.closed for conn in opened) and len(opened) == 3
