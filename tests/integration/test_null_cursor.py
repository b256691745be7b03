"""Rows whose cursor is NULL, decided out loud (issue #28, item 2): include, error, exclude.

No cursor reaches a row whose cursor column is NULL. ``include`` (the default
of a merge table) reads them by primary key in every run's last pass; ``error``
(the default of an append table) fails before anything is staged; ``exclude``
leaves them out and ``verify`` says how many. Real CLI, MariaDB, PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project

STRATEGIES = {
    "hybrid": {
        "cdc_strategy": "hybrid",
        "cdc_timestamp_column": "updated_at",
        "cdc_id_column": "id",
    },
    "timestamp_only": {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"},
    "id_only": {"cdc_strategy": "id_only", "cdc_id_column": "seq_no"},
}


def create(db: MySQLDatabase) -> str:
    """300 rows, every fifth (60) with a NULL ``updated_at`` and a NULL ``seq_no``."""
    db.execute(
        "CREATE TABLE n (id INT NOT NULL PRIMARY KEY, seq_no INT NULL, v INT NOT NULL, "
        "updated_at DATETIME NULL, KEY ix (updated_at, id), KEY sx (seq_no))"
    )
    db.execute(
        "INSERT INTO n SELECT seq, IF(seq % 5 = 0, NULL, seq), 0, "
        "IF(seq % 5 = 0, NULL, '2025-01-01' + INTERVAL seq SECOND) FROM seq_1_to_300"
    )
    return f"{db.name}.n"


def same(db: MySQLDatabase, pg: PgSchema) -> bool:
    source = sorted(db.execute("SELECT id, v FROM n"))
    return sorted(pg.execute("SELECT id, v FROM n")) == source and len(source) == 300


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_include_reads_null_cursor_rows_every_run(
    strategy: str, tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """The default of a merge table: every row arrives, and so do later changes of NULL rows."""
    table = create(mysql_db)
    cfg = {**STRATEGIES[strategy], "processing": {"batch_size": 50}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    first = project.sync(table)
    assert same(mysql_db, pg), first
    code, result = project.verify(table)
    assert (code, result["source_rows"], result["null_cursor_rows"]) == (0, 300, 0)
    mysql_db.execute("UPDATE n SET v = 1 WHERE id IN (5, 10)")  # changed, still NULL
    again = project.sync(table)
    assert again["rows_extracted"] == 60  # the NULL pass, read again
    assert same(mysql_db, pg)
    assert project.verify(table)[0] == 0


def test_a_null_pass_cut_by_a_cap_resumes(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """``--max-chunks`` inside the NULL pass: its place is kept, the next run goes on."""
    table = create(mysql_db)
    cfg = {**STRATEGIES["hybrid"], "processing": {"batch_size": 40}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.sync(table, "--max-chunks", "7")  # the first pass (6 chunks), 1 NULL chunk
    assert project.watermark(table)["metadata"]["null_pass"] == {"last_pk": [200]}
    assert project.sync(table)["rows_extracted"] == 20  # the rest of the pass
    assert project.watermark(table)["metadata"]["null_pass"] is None
    assert same(mysql_db, pg)


def test_error_fails_before_anything_is_staged(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """``error`` (set, or an append table's default) names the column and the count."""
    table = create(mysql_db)
    append = {**STRATEGIES["hybrid"], "write_mode": "append"}
    for n, cfg in enumerate(({**STRATEGIES["hybrid"], "null_cursor": "error"}, append)):
        project = make_project(tmp_path / str(n), mysql_db, {table: cfg}, pg=pg)
        result = project.cli("sync", "pipeline", "-p", "p", "-t", table)
        assert result.returncode == 4, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "60 rows have a NULL updated_at" in errors[0], errors
        assert not (project.stage_dir / "incremental").exists()


def test_exclude_leaves_them_out_and_verify_says_how_many(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create(mysql_db)
    cfg = {**STRATEGIES["hybrid"], "null_cursor": "exclude"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    assert project.sync(table)["rows_extracted"] == 240
    code, result = project.verify(table)
    assert (code, result["source_rows"], result["null_cursor_rows"]) == (0, 240, 60)
    assert any("60 rows whose updated_at is NULL are not compared" in n for n in result["notes"])


def test_include_on_an_append_table_is_a_configuration_error(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create(mysql_db)
    cfg = {**STRATEGIES["hybrid"], "write_mode": "append", "null_cursor": "include"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    result = project.cli("config", "validate")
    assert result.returncode == 1
    assert "null_cursor: include reads the rows whose cursor is NULL again" in result.stderr
