"""A concurrent writer's abort is retried inside the run; anything else is not (issue #10, 5).

Through the Redshift double, which aborts the next COPYs with Redshift's
error 1023 (serializable isolation violation), as a second writer would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from src.config.configuration_manager import ConfigurationManager
from src.errors import LoadConflictError, LoadError, is_transient
from src.load.targets.postgres import PostgresDialect
from src.pipeline.sync_runner import SyncOptions, run_sync
from tests.integration.test_redshift_load import redshift_project
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project
from tests.support.redshift_double import redshift_double_connect
from tests.support.s3_server import S3Bucket

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


@pytest.mark.parametrize(("conflicts", "loaded"), [(2, True), (4, False)])
def test_a_redshift_1023_abort_is_retried_then_given_up(
    tmp_path: Path,
    mysql_db: MySQLDatabase,
    pg: PgSchema,
    s3_bucket: S3Bucket,
    conflicts: int,
    loaded: bool,
) -> None:
    """Guards the tenacity retry with the dialect's classifier: 4 attempts, transient only."""
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)")
    mysql_db.execute("INSERT INTO t SELECT seq, '2025-01-01' + INTERVAL seq SECOND "
                     "FROM seq_1_to_100")  # fmt: skip
    table = f"{mysql_db.name}.t"
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: HYBRID})
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    app = ConfigurationManager(project.config_dir, environ=project.env).load().app

    @contextmanager
    def connect() -> Iterator[Any]:
        dsn = {"host": pg.host, "port": pg.port, "user": pg.user, "dbname": pg.database}
        double = redshift_double_connect(dsn, s3_bucket.client, pg.name)
        double.conflicts_left = conflicts
        try:
            yield double
        finally:
            double.close()

    run = run_sync(app, "p", [table], SyncOptions(redshift_only=True), connect=connect)
    outcome = run.outcomes[table]
    if loaded:
        assert outcome.status == "success", outcome.error_message
        assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM t") == [(100, 100)]
        assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(1,)]
    else:
        assert (outcome.status, outcome.exit_code) == ("failed", 6)
        assert outcome.error_type == "LoadConflictError"
        assert "aborted by a concurrent writer: 1023" in (outcome.error_message or "")
        assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(0,)]


class _PgError(Exception):
    def __init__(self, text: str, pgcode: str | None) -> None:
        super().__init__(text)
        self.pgcode = pgcode


def test_postgres_classifies_by_sqlstate() -> None:
    dialect = PostgresDialect()
    conflict = dialect.classify(_PgError("could not serialize access", "40001"), "loading t")
    assert isinstance(conflict, LoadConflictError) and is_transient(conflict)
    other = dialect.classify(_PgError('relation "t" does not exist\nLINE 1', "42P01"), "loading t")
    assert type(other) is LoadError and not is_transient(other)
    assert str(other) == 'loading t failed: relation "t" does not exist'


class _AckLostOnCommit:
    """A real connection whose first COMMIT lands but whose answer is lost (a cut at COMMIT)."""

    def __init__(self, conn: Any, lose: list[bool]) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_lose", lose)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def commit(self) -> None:
        self._conn.commit()
        if self._lose and self._lose.pop():
            self._conn.close()
            raise psycopg2.OperationalError("server closed the connection unexpectedly")


def test_a_connection_lost_at_commit_asks_the_ledger_before_loading_again(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the ledger look-up on reconnect: append rows, committed once, not loaded twice."""
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)")
    mysql_db.execute("INSERT INTO t SELECT seq, '2025-01-01' + INTERVAL seq SECOND "
                     "FROM seq_1_to_100")  # fmt: skip
    table = f"{mysql_db.name}.t"
    cfg = HYBRID | {"write_mode": "append", "processing": {"retries": {"initial_wait_seconds": 0}}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    app = ConfigurationManager(project.config_dir, environ=project.env).load().app
    # Commits: the ledger table's creation, the DDL's, then the load's (whose answer is lost).
    lose = [True, False, False]

    @contextmanager
    def connect() -> Iterator[Any]:
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database)
        with conn.cursor() as cur:
            cur.execute(f'SET search_path TO "{pg.name}"')
        conn.commit()
        try:
            yield _AckLostOnCommit(conn, lose)
        finally:
            conn.close()

    run = run_sync(app, "p", [table], SyncOptions(redshift_only=True), connect=connect)
    outcome = run.outcomes[table]
    assert outcome.status == "success", outcome.error_message
    assert outcome.load is not None and outcome.load.retries == 1
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM t") == [(100, 100)]
    assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(1,)]
