"""Schema drift, safe by default (issue #9 item 5): PostgreSQL end to end, Redshift's double.

Each case changes the MySQL table after a first sync, changes a row, syncs
again, and checks the target's rows, its column types and the log line.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot

from tests.integration.test_redshift_load import load_through_double, redshift_project
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project
from tests.support.s3_server import S3Bucket

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
BIG = 2**40


def create_items(db: MySQLDatabase) -> str:
    db.execute(
        "CREATE TABLE items (id INT PRIMARY KEY, a INT NOT NULL, b INT, "
        "updated_at DATETIME(6) NOT NULL)"
    )
    db.execute("INSERT INTO items SELECT seq, seq, seq, '2025-01-01' + INTERVAL seq SECOND "
               "FROM seq_1_to_20")  # fmt: skip
    return f"{db.name}.items"


def touch(db: MySQLDatabase, ids: str, when: str) -> None:
    db.execute(f"UPDATE items SET updated_at = '{when}' WHERE id IN ({ids})")


def column_types(pg: PgSchema) -> dict[str, tuple[str, str]]:
    rows = pg.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'items'",
        (pg.name,),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def sync(project: Project) -> str:
    return project.cli("sync", "pipeline", "-p", "p", check=True).stderr


def test_drift_on_postgres_widens_keeps_and_reports(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards schema_drift: NOT NULL drop, INT → BIGINT above 2^31, rename and DEFAULT reports."""
    table = create_items(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    sync(project)

    mysql_db.execute("ALTER TABLE items DROP COLUMN a, MODIFY b BIGINT")
    mysql_db.execute(f"UPDATE items SET b = {BIG}, updated_at = '2026-01-01' WHERE id = 2")
    dry = project.cli("sync", "pipeline", "-p", "p", "--dry-run", check=True)
    assert 'ALTER COLUMN "b" TYPE BIGINT' in dry.stdout
    assert 'ALTER COLUMN "a" DROP NOT NULL' in dry.stdout
    assert column_types(pg)["a"] == ("integer", "NO")  # the dry run changed nothing
    log = sync(project)
    assert "column b widened from INTEGER to BIGINT" in log
    assert "column a is no longer in the source: made nullable and kept" in log
    assert column_types(pg)["b"] == ("bigint", "YES")
    assert column_types(pg)["a"] == ("integer", "YES")
    assert pg.execute("SELECT a, b FROM items WHERE id = 2") == [(None, BIG)]
    assert pg.execute("SELECT a, b FROM items WHERE id = 3") == [(3, 3)]

    mysql_db.execute("ALTER TABLE items RENAME COLUMN b TO c")
    touch(mysql_db, "4", "2026-02-01")
    log = sync(project)
    assert "column b is no longer in the source: kept; column c new (a rename?)" in log
    assert pg.execute("SELECT b, c FROM items WHERE id = 4") == [(None, 4)]

    mysql_db.execute("ALTER TABLE items ADD COLUMN d INT NOT NULL DEFAULT 7")
    touch(mysql_db, "5", "2026-03-01")
    log = sync(project)
    assert "column d was added in MySQL with a DEFAULT" in log
    assert f"'watermark reset -t {table}'" in log
    assert pg.execute("SELECT d FROM items WHERE id IN (5, 6) ORDER BY id") == [(7,), (None,)]

    mysql_db.execute("ALTER TABLE items MODIFY c VARCHAR(20)")
    touch(mysql_db, "6", "2026-04-01")
    failed = project.cli("sync", "pipeline", "-p", "p")
    assert failed.returncode == 6
    assert "target column items.c is BIGINT but the source column c is now VARCHAR(20)" in (
        failed.stderr
    )


def test_drift_through_the_redshift_double_swaps_columns(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    """Guards Redshift's add-copy-swap: ALTER COLUMN TYPE is only for VARCHAR there."""
    table = create_items(mysql_db)
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: HYBRID})
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    _, run = load_through_double(project, pg, s3_bucket, [table])
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message

    mysql_db.execute("ALTER TABLE items DROP COLUMN a, MODIFY b BIGINT")
    mysql_db.execute(f"UPDATE items SET b = {BIG}, updated_at = '2026-01-01' WHERE id = 2")
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    statements, run = load_through_double(project, pg, s3_bucket, [table])
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message
    swaps = [s for s in statements if re.match(r"ALTER TABLE .* (ADD|DROP|RENAME) COLUMN", s)]
    assert len(swaps) == 6, statements  # add, drop, rename for b and for a
    assert not [s for s in statements if "ALTER COLUMN" in s and "TYPE BIGINT" in s]
    assert any(s.startswith("UPDATE") and 'CAST("b" AS BIGINT)' in s for s in statements)
    for sql in statements:  # golden: one Redshift statement each
        assert len(sqlglot.parse(sql.replace(" SORTKEY AUTO", ""), read="redshift")) == 1, sql
    assert column_types(pg)["b"] == ("bigint", "YES")
    assert column_types(pg)["a"] == ("integer", "YES")
    assert pg.execute("SELECT a, b FROM items WHERE id = 2") == [(None, BIG)]
    assert pg.execute("SELECT a, b FROM items WHERE id = 3") == [(3, 3)]
