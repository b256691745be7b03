"""``verify`` and ``verify --repair`` through the Redshift double: Redshift SQL end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.config.configuration_manager import ConfigurationManager
from src.pipeline.verify.repair import RepairRequest
from src.pipeline.verify.run import VerifyOptions, run_verify
from tests.integration.test_mysql_types import create_every_type
from tests.integration.test_redshift_load import (
    _connect_factory,
    assert_golden,
    load_through_double,
    redshift_project,
)
from tests.integration.test_verify import HYBRID, damage, ids, parcels
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project
from tests.support.redshift_double import RedshiftDouble
from tests.support.s3_server import S3Bucket


def verify_double(
    project: Project, pg: PgSchema, bucket: S3Bucket, table: str, **options: Any
) -> tuple[Any, list[str]]:
    app = ConfigurationManager(project.config_dir, environ=project.env).load().app
    seen: list[RedshiftDouble] = []
    report = run_verify(
        app,
        "p",
        [table],
        VerifyOptions(**options),
        connect=lambda: _connect_factory(pg, bucket, seen),
    )
    return report, [s for double in seen for s in double.statements]


def test_verify_and_repair_through_the_double(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table = parcels(mysql_db, 3000)
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: HYBRID})
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    _, run = load_through_double(project, pg, s3_bucket, [table])
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message
    report, statements = verify_double(project, pg, s3_bucket, table, max_rows_in_memory=100)
    assert report.exit_code == 0, report
    checksums = [s for s in statements if "STRTOL(SUBSTRING(MD5(" in s]
    assert checksums, statements
    assert_golden(statements, needed=frozenset({"Select"}))
    damage(mysql_db)
    report, _ = verify_double(project, pg, s3_bucket, table, max_rows_in_memory=100)
    result = report.tables[table]
    assert report.exit_code == 4
    assert ids(result.missing_in_target.model_dump()) == [4001, 4002]
    assert ids(result.extra_in_target.model_dump()) == [5, 6, 2500]
    assert ids(result.different.model_dump()) == [9, 1700]
    report, statements = verify_double(
        project, pg, s3_bucket, table, repair=RepairRequest(), max_rows_in_memory=100
    )
    assert report.tables[table].status == "repaired", report.tables[table]
    assert any(s.lstrip().startswith("DELETE FROM") for s in statements)
    assert_golden(statements, needed=frozenset({"Copy", "Delete", "Insert", "Select"}))
    report, _ = verify_double(project, pg, s3_bucket, table)
    assert report.exit_code == 0, report.tables[table]


def test_every_type_verifies_equal_through_the_double(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table, cfg = create_every_type(mysql_db)
    project = redshift_project(tmp_path, mysql_db, pg, s3_bucket, {table: cfg})
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    load_through_double(project, pg, s3_bucket, [table])
    report, statements = verify_double(project, pg, s3_bucket, table)
    result = report.tables[table]
    assert report.exit_code == 0, result
    assert result.method == "checksum" and result.source_rows == 3
    assert_golden(statements, needed=frozenset({"Select"}))
