"""The real Redshift loader end to end through the Redshift test double (SPEC §6, §11).

MySQL → backup stage (CLI) → S3 server → ``COPY … FORMAT AS PARQUET MANIFEST``
executed by the double → merge → ledger. Every statement the loader emits is
also checked as golden SQL: it parses with sqlglot's Redshift dialect to
exactly one statement of the expected kind, and COPY uses only allowlisted
options.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import structlog
from sqlglot import exp

from src.config.configuration_manager import ConfigurationManager
from src.pipeline.sync_runner import SyncOptions, run_sync
from tests.integration.test_mysql_types import create_every_type
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project
from tests.support.redshift_double import RedshiftDouble, redshift_double_connect
from tests.support.s3_server import S3Bucket

ROLE = "arn:aws:iam::123456789012:role/redshift-copy"
COPY_OPTIONS = {"IAM_ROLE", "CREDENTIALS", "MANIFEST", "FORMAT", "AS", "PARQUET",
                "SERIALIZETOJSON", "STATUPDATE", "ACCEPTINVCHARS"}  # fmt: skip
S3_SECRET = "S3cr3t-Key-for-copy-9d8c"


@contextmanager
def _connect_factory(pg: PgSchema, bucket: S3Bucket, seen: list[RedshiftDouble]) -> Iterator[Any]:
    double = redshift_double_connect(
        {"host": pg.host, "port": pg.port, "user": pg.user, "dbname": pg.database},
        bucket.client,
        pg.name,
    )
    seen.append(double)
    try:
        yield double
    finally:
        double.close()


def redshift_project(
    root: Path,
    db: MySQLDatabase,
    pg: PgSchema,
    bucket: S3Bucket,
    tables: dict[str, dict[str, Any]],
    iam_role: str | None = ROLE,
) -> Project:
    project = make_project(root, db, tables, pg=pg, bucket=bucket)
    path = project.config_dir / "connections.yml"
    text = path.read_text().replace("type: postgres", "type: redshift")
    if iam_role:
        text = text.replace(
            "      type: redshift", f"      type: redshift\n      iam_role: {iam_role}"
        )
    path.write_text(text)
    project.env["AWS_SECRET_ACCESS_KEY"] = S3_SECRET
    return project


def load_through_double(
    project: Project, pg: PgSchema, bucket: S3Bucket, tables: list[str]
) -> tuple[list[str], Any]:
    app = ConfigurationManager(project.config_dir, environ=project.env).load().app
    seen: list[RedshiftDouble] = []
    run = run_sync(
        app,
        "p",
        tables,
        SyncOptions(redshift_only=True),
        connect=lambda: _connect_factory(pg, bucket, seen),
    )
    statements = [s for double in seen for s in double.statements]
    return statements, run


def assert_golden(
    statements: list[str],
    needed: frozenset[str] = frozenset({"Create", "Copy", "Insert", "Delete"}),
) -> None:
    """Each statement: one Redshift statement of a known kind; COPY options allowlisted."""
    kinds = set()
    for sql in statements:
        if re.match(r"\s*(SET|SELECT pg_last_copy_count)", sql, re.I):
            continue
        # sqlglot's redshift dialect fails on SORTKEY AUTO (FIELD_NOTES); it is checked
        # by the double's DDL rules instead, and parsed here without that clause.
        parsable = sql.replace(" SORTKEY AUTO", "")
        parsed = sqlglot.parse(parsable, read="redshift")
        assert len(parsed) == 1, sql
        node = parsed[0]
        assert node is not None
        kinds.add(type(node).__name__)
        assert isinstance(
            node,
            exp.Create | exp.Insert | exp.Delete | exp.Select | exp.Drop | exp.Copy | exp.Alter
            | exp.Command | exp.Commit,
        ), (type(node), sql)  # fmt: skip
        if sql.lstrip().upper().startswith("COPY"):
            assert isinstance(node, exp.Copy), sql
            words = set(re.findall(r"\b[A-Z_]{2,}\b", re.sub(r"'[^']*'", "''", sql)))
            words -= {"COPY", "FROM"}
            assert words <= COPY_OPTIONS, words - COPY_OPTIONS
            for banned in ("TRUNCATECOLUMNS", "EMPTYASNULL", "ROUNDEC", "MAXERROR", "REGION"):
                assert banned not in sql
        assert not sql.lstrip().upper().startswith("TRUNCATE"), sql
    assert needed <= kinds, kinds


def test_every_type_lands_through_the_double(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table, cfg = create_every_type(mysql_db)
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: cfg})
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    statements, run = load_through_double(project, pg, s3_bucket, [table])
    outcome = run.outcomes[table]
    assert outcome.status == "success", outcome.error_message
    assert outcome.load.rows == 3
    assert_golden(statements)
    create = next(s for s in statements if s.startswith("CREATE TABLE") and "every_type" in s)
    assert '"biu" DECIMAL(20,0)' in create
    assert '"vc" VARCHAR(32)' in create  # VARCHAR(8) utf8mb4: sized in bytes
    assert '"ch" VARCHAR(16)' in create
    assert '"bl" VARBYTE(65535)' in create
    assert "DISTSTYLE AUTO SORTKEY AUTO" in create
    names = [r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'every_type' ORDER BY ordinal_position", (pg.name,))]  # fmt: skip
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in pg.execute("SELECT * FROM every_type")}
    top = rows[1]
    assert top["biu"] == Decimal("18446744073709551615")
    assert top["dec38"] == Decimal("9999999999999999999999999999.9999999999")
    assert top["dt6"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert top["vc"] == "😀" * 8
    assert top["tm6"] == "838:59:59.000001"
    assert bytes(top["bl"]) == bytes(range(256))
    assert json.loads(top["js"]) == {"k": [1, 2, "é"]}
    assert rows[2]["vc"] == "ab"
    assert all(v is None for k, v in rows[3].items() if k != "id")


def test_merge_through_the_double_with_keys_and_credentials(
    tmp_path: Path,
    mysql_db: MySQLDatabase,
    pg: PgSchema,
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mysql_db.execute(
        "CREATE TABLE orders (id INT PRIMARY KEY, `190_time` INT, note VARCHAR(10), "
        "updated_at DATETIME(6) NOT NULL)"
    )
    mysql_db.execute(
        "INSERT INTO orders SELECT seq, seq, 'a', '2025-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_2000"
    )
    table = f"{mysql_db.name}.orders"
    cfg = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
           "cdc_id_column": "id", "processing": {"batch_size": 500}}  # fmt: skip
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: cfg}, iam_role=None)
    keys = {table: {"distkey": "id", "sortkey": {"type": "compound", "columns": ["190_time"]}}}
    (project.root / "redshift_keys.json").write_text(json.dumps(keys))
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    with structlog.testing.capture_logs() as logs:
        statements, run = load_through_double(project, pg, s3_bucket, [table])
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message
    create = next(s for s in statements if s.startswith("CREATE TABLE") and "orders" in s)
    assert 'DISTSTYLE KEY DISTKEY("id") COMPOUND SORTKEY("col_190_time")' in create
    mysql_db.execute(
        "UPDATE orders SET note = 'b', updated_at = '2026-01-01' + INTERVAL id MICROSECOND "
        "WHERE id % 3 = 0"
    )
    mysql_db.execute("INSERT INTO orders VALUES (2001, 1, 'new', '2026-02-01')")
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    more, run = load_through_double(project, pg, s3_bucket, [table])
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(2001, 2001)]
    assert pg.execute("SELECT COUNT(*) FROM orders WHERE note = 'b'") == [(666,)]
    assert_golden(statements + more)
    copies = [s for s in statements + more if s.startswith("COPY")]
    assert copies and all("CREDENTIALS" in s for s in copies)
    # The executed COPY carries the key; no log line or output ever does.
    logged = json.dumps(logs, default=str) + capsys.readouterr().err
    assert S3_SECRET not in logged
    assert "aws_secret_access_key=***" in logged


def test_copy_failure_is_a_load_error_and_nothing_is_committed(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(4))")
    mysql_db.execute("INSERT INTO t VALUES (1, 'abcd')")
    table = f"{mysql_db.name}.t"
    project = redshift_project(
        tmp_path,
        mysql_db,
        pg,
        s3_bucket,
        {table: {"cdc_strategy": "id_only", "cdc_id_column": "id"}},
        iam_role="not-a-role-arn",  # Redshift refuses the COPY
    )
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    _, run = load_through_double(project, pg, s3_bucket, [table])
    outcome = run.outcomes[table]
    assert (outcome.status, outcome.exit_code) == ("failed", 6)
    assert "COPY" in (outcome.error_message or "")
    assert pg.execute("SELECT COUNT(*) FROM t") == [(0,)]
    assert len(project.watermark(table)["backup_s3_files"]) == 1
