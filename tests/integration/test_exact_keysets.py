"""Exact keysets for any key, and no silent append (issue #9, items 1 and 4).

Every test runs the real CLI against MariaDB and PostgreSQL and compares the
target with the source row by row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

COMPOSITE = {
    "cdc_strategy": "hybrid",
    "cdc_timestamp_column": "updated_at",
    "cdc_id_column": "a",
    "processing": {"batch_size": 3},
}


def create_pairs(db: MySQLDatabase) -> str:
    """``pairs (a, b)``: groups of ten rows sharing ``(updated_at, a)``."""
    db.execute(
        "CREATE TABLE pairs (a INT NOT NULL, b INT NOT NULL, v VARCHAR(20), "
        "updated_at DATETIME(6) NOT NULL, PRIMARY KEY (a, b), KEY ix (updated_at, a))"
    )
    db.execute(
        "INSERT INTO pairs SELECT seq DIV 10, seq MOD 10, 'v0', "
        "'2025-01-01' + INTERVAL (seq DIV 10) SECOND FROM seq_0_to_99"
    )
    return f"{db.name}.pairs"


def rows_of(db: MySQLDatabase, pg: PgSchema, table: str) -> tuple[list, list]:
    source = db.execute(f"SELECT a, b, v FROM {table.split('.')[1]} ORDER BY a, b")
    target = pg.execute(f"SELECT a, b, v FROM {table.split('.')[1]} ORDER BY a, b")
    return [tuple(r) for r in source], [tuple(r) for r in target]


def sync(project: Project, table: str, *extra: str) -> None:
    project.cli("sync", "pipeline", "-p", "p", "-t", table, *extra, check=True)


def test_composite_key_group_split_by_chunks_and_a_limit_loses_nothing(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the keyset tail: ``(ts, a)`` alone skips the rest of a group at a chunk edge.

    Chunks of 3 rows cut every group of ten equal ``(updated_at, a)`` rows, on
    the first run and on the incremental path, where a ``--limit`` stops the
    run inside the group. Without the primary-key columns after the id in the
    keyset, rows of each group are never read.
    """
    table = create_pairs(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: COMPOSITE}, pg=pg)
    sync(project, table, "--limit", "5")
    sync(project, table)
    source, target = rows_of(mysql_db, pg, table)
    assert target == source and len(target) == 100
    # The incremental path: a whole group moves to one new (ts, a), changed.
    mysql_db.execute("UPDATE pairs SET v = 'v1', updated_at = '2026-01-01' WHERE a IN (3, 7)")
    sync(project, table, "--limit", "4")
    wm = project.watermark(table)["mysql_state"]
    assert (wm["last_id"], wm["last_key"]) == (3, {"b": 3})  # stopped inside the group
    sync(project, table)
    source, target = rows_of(mysql_db, pg, table)
    assert target == source
    assert sum(1 for row in target if row[2] == "v1") == 20


def test_id_only_and_paginate_walk_a_composite_key(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the keyset tail for id_only and full_sync paginate (id = first key column)."""
    table = create_pairs(mysql_db)
    id_only = {"cdc_strategy": "id_only", "cdc_id_column": "a", "processing": {"batch_size": 4}}
    project = make_project(tmp_path, mysql_db, {table: id_only}, pg=pg)
    sync(project, table, "--limit", "6")
    sync(project, table)
    source, target = rows_of(mysql_db, pg, table)
    assert target == source and len(target) == 100

    paginate = {"cdc_strategy": "full_sync", "full_sync_mode": "paginate",
                "processing": {"batch_size": 7}}  # fmt: skip
    other = make_project(tmp_path / "pg", mysql_db, {table: paginate}, pg=pg)
    pg.execute("DROP TABLE pairs")  # a second project (stage) starting over on this target
    pg.execute("DELETE FROM s3_backup_load_ledger")
    sync(other, table, "--max-chunks", "2")
    sync(other, table)
    source, target = rows_of(mysql_db, pg, table)
    assert target == source


def test_hybrid_without_a_unique_key_is_a_configuration_error(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """A keyset over a non-unique ``(ts, id)`` is refused, with what to set."""
    mysql_db.execute("CREATE TABLE loose (id INT, updated_at DATETIME(6), v INT)")
    mysql_db.execute("INSERT INTO loose VALUES (1, '2025-01-01', 1), (1, '2025-01-01', 2)")
    table = f"{mysql_db.name}.loose"
    cfg = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    for args in ((), ("--dry-run",)):
        result = project.cli("sync", "pipeline", "-p", "p", *args)
        assert result.returncode == 1, result.stderr
        assert "no primary key in MySQL; set primary_key" in result.stderr
    assert not (project.stage_dir / "incremental").exists()
    assert project.cli("config", "validate").returncode == 0  # offline: cannot know
    checked = project.cli("config", "validate", "--check-sources")
    assert checked.returncode == 1
    assert f"pipelines/p.yml: tables.{table}: table {table}: hybrid orders rows" in checked.stderr
    fixed = make_project(
        tmp_path / "ok", mysql_db, {table: {**cfg, "primary_key": ["id", "v"]}}, pg=pg
    )
    assert fixed.cli("config", "validate", "--check-sources").returncode == 0
    # Its first run walks the configured key: no PRIMARY index to force (MySQL would refuse).
    dry = fixed.cli("sync", "pipeline", "-p", "p", "--dry-run")
    assert "reading in primary-key order" in dry.stdout and "FORCE INDEX" not in dry.stdout
    synced = fixed.cli("sync", "pipeline", "-p", "p")
    assert synced.returncode == 0, synced.stderr
    assert pg.execute("SELECT id, v FROM loose ORDER BY v") == [(1, 1), (1, 2)]


@pytest.mark.parametrize("write_mode", [None, "append"])
def test_a_table_without_primary_key_is_never_appended_silently(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, write_mode: str | None
) -> None:
    """Guards resolve_write_mode: no key and no explicit append is a configuration error."""
    mysql_db.execute("CREATE TABLE logs (msg VARCHAR(20), at DATETIME(6) NOT NULL)")
    mysql_db.execute("INSERT INTO logs VALUES ('a', '2025-01-01'), ('b', '2025-01-02')")
    table = f"{mysql_db.name}.logs"
    cfg = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at"}
    if write_mode:
        cfg["write_mode"] = write_mode
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    result = project.cli("sync", "pipeline", "-p", "p")
    if write_mode is None:
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("✗")]
        assert len(errors) == 1 and "has no primary key" in errors[0]
        assert "write_mode: append" in errors[0]
        assert not (project.stage_dir / "incremental").exists()
    else:
        assert result.returncode == 0, result.stderr
        assert pg.execute("SELECT COUNT(*) FROM logs") == [(2,)]


def test_a_date_cursor_keeps_its_position_so_append_never_repeats(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the DATE cursor in the watermark: without it every run re-reads the window."""
    mysql_db.execute("CREATE TABLE days (msg VARCHAR(20), d DATE NOT NULL)")
    mysql_db.execute("INSERT INTO days SELECT CONCAT('m', seq), '2025-01-01' + INTERVAL seq DAY "
                     "FROM seq_1_to_30")  # fmt: skip
    table = f"{mysql_db.name}.days"
    cfg = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "d", "write_mode": "append",
           "processing": {"batch_size": 7}}  # fmt: skip
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    assert project.watermark(table)["mysql_state"]["last_timestamp"] == "2025-01-31T00:00:00.000000"
    mysql_db.execute("INSERT INTO days VALUES ('new', '2025-03-01')")
    sync(project, table)
    sync(project, table)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT msg) FROM days") == [(31, 31)]
