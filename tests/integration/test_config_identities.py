"""Identifiers that cannot collide, one owner per target table and watermark (issue #9, 2-3).

Checked when the configuration loads, so ``config validate`` and every
command refuse them with exit 1 before anything is read or written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import SCOPE, Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def errors_of(project: Project, *args: str) -> str:
    result = project.cli(*(args or ("config", "validate")))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("Error:") == 1, result.stderr
    return result.stderr


def create(db: MySQLDatabase, name: str) -> str:
    db.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)")
    db.execute(f"INSERT INTO {name} VALUES (1, '2025-01-01')")
    return f"{db.name}.{name}"


def test_names_differing_after_the_63rd_byte_are_refused_for_postgres(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the target's identifier limit: PostgreSQL would make both one table."""
    small, escape = create(mysql_db, "small"), create(mysql_db, "escape")
    tables = {
        small: {**HYBRID, "target_name": "z" * 63 + "_small"},
        escape: {**HYBRID, "target_name": "z" * 63 + "_escape"},
    }
    project = make_project(tmp_path, mysql_db, tables, pg=pg)
    stderr = errors_of(project)
    assert f"pipelines/p.yml: tables.{small}: table '{'z' * 63}_small' becomes 69 bytes" in stderr
    assert "over the target's 63-byte limit" in stderr
    assert f"tables.{escape}" in stderr
    sync = project.cli("sync", "pipeline", "-p", "p")
    assert sync.returncode == 1
    assert pg.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                      (pg.name,)) == [(0,)]  # fmt: skip


def test_a_configured_target_name_follows_the_naming_rules(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards target_table_name: a configured name is lowercased and checked like a derived one."""
    table = create(mysql_db, "orders")
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "target_name": "Big\tName"}})
    assert "contains the control character '\\t'" in errors_of(project)
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "target_name": "x" * 200}})
    assert "becomes 200 bytes as a target name" in errors_of(project)
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "target_name": "Orders_V2"}},
                           pg=pg)  # fmt: skip
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert pg.execute("SELECT COUNT(*) FROM orders_v2") == [(1,)]


def test_two_entries_folding_to_one_target_table_are_refused(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    """Guards the one-owner check for target tables (in one file)."""
    a, b = create(mysql_db, "a"), create(mysql_db, "b")
    tables = {a: {**HYBRID, "target_name": "same"}, b: {**HYBRID, "target_name": "SAME"}}
    stderr = errors_of(make_project(tmp_path, mysql_db, tables))
    assert f"pipelines/p.yml: tables.{b}: loads into the same target table" in stderr
    assert f"as pipelines/p.yml: tables.{a}" in stderr


def test_two_pipelines_sharing_a_watermark_are_refused(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    """Guards the one-owner check for watermark documents (across files)."""
    table = create(mysql_db, "orders")
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "target_name": "copy_one"}})
    second = {
        "pipeline": {"name": "q", "source": SCOPE, "target": "pg"},
        "tables": {table: {**HYBRID, "target_name": "copy_two"}},
    }
    (project.config_dir / "pipelines" / "q.yml").write_text(yaml.safe_dump(second))
    stderr = errors_of(project)
    assert f"pipelines/q.yml: tables.{table}: shares the watermark watermarks/v2/" in stderr
    assert f"with pipelines/p.yml: tables.{table}" in stderr
    for args in (("watermark", "list"), ("sync", "pipeline", "-p", "p")):
        assert "shares the watermark" in errors_of(project, *args)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a/../b/", "contains a '..' segment"),
        ("a\\b/", "contains a backslash"),
        ("a\x00b/", "contains the control character"),
        ("p" * 5000 + "/", "over S3's 1024-byte limit"),
        ("p" * 300 + "/", "over the 255-byte file name limit of a local stage"),
    ],
    ids=["dotdot", "backslash", "nul", "5000", "segment"],
)
def test_bad_isolation_prefixes_are_refused_by_config_validate(
    tmp_path: Path, mysql_db: MySQLDatabase, prefix: str, expected: str
) -> None:
    """Guards the prefix checks: refused when the configuration loads, not mid-sync."""
    table = create(mysql_db, "orders")
    project = make_project(
        tmp_path, mysql_db, {table: HYBRID}, pipeline_extra={"s3": {"isolation_prefix": prefix}}
    )
    stderr = errors_of(project)
    assert "pipelines/p.yml: pipeline.s3.isolation_prefix:" in stderr or expected in stderr
    assert expected in stderr
    assert "Traceback" not in stderr


def test_a_column_name_over_the_postgres_limit_is_a_data_error_naming_it(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the column limit of the target: nothing staged under a name PostgreSQL truncates."""
    long_name = "c" * 64
    mysql_db.execute(
        f"CREATE TABLE wide (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, {long_name} INT)"
    )
    table = f"{mysql_db.name}.wide"
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    result = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert result.returncode == 4, result.stderr
    assert f"column '{long_name}' of table {table} becomes 64 bytes" in result.stderr
    assert not (project.stage_dir / "incremental").exists()
