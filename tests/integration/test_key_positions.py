"""A keyset position of any key type (issue #28, item 1).

The watermark keeps the whole keyset position, each value typed losslessly, so a
run stopped inside a group of equal timestamps resumes exactly on VARCHAR, BINARY,
DECIMAL and DATE keys, ``id_only`` advances on a VARCHAR key, and the order is
MySQL's own (``_ci`` collations, PAD SPACE, accents). Every test runs the real CLI
against MariaDB and PostgreSQL and compares the target with the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "k"}

# (column type, 200 distinct key values as SQL over seq 0..199)
KEY_TYPES = {
    "varchar": ("VARCHAR(20)", "CONCAT('key-', LPAD(seq, 4, '0'))"),
    "binary16": ("BINARY(16)", "UNHEX(MD5(seq))"),
    "decimal": ("DECIMAL(12,3)", "seq * 1.125 - 100"),
    "date": ("DATE", "'2020-01-01' + INTERVAL seq DAY"),
    "double": ("DOUBLE", "seq / 7 - 3.5"),  # compared as DOUBLE with its shortest repr
}


def sync(project: Project, table: str, *extra: str) -> str:
    return project.cli("sync", "pipeline", "-p", "p", "-t", table, *extra, check=True).stderr


def same_rows(db: MySQLDatabase, pg: PgSchema, name: str, key: str = "k") -> list[Any]:
    """Source and target rows as text, each ordered by its own text (equal when synced)."""
    source = db.execute(f"SELECT HEX({key}), v FROM {name}")
    target = pg.execute(f"SELECT {key}, v FROM {name}")
    return [sorted(map(str, source)), sorted(map(str, target))]


def source_rows(db: MySQLDatabase, name: str) -> list[tuple[Any, ...]]:
    return sorted(db.execute(f"SELECT k, v FROM {name}"))


def target_rows(pg: PgSchema, name: str, kind: str) -> list[tuple[Any, ...]]:
    rows = pg.execute(f"SELECT k, v FROM {name}")
    if kind == "binary16":
        rows = [(bytes(k), v) for k, v in rows]
    return sorted(rows)


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_hybrid_key_of_any_type_resumes_inside_a_tie_group(
    kind: str, tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """200 rows updated in one second, read 7 at a time and stopped by ``--limit``.

    Without the key in the watermark, the next run continues after the
    timestamp alone and the rest of the group is never read (193 of 200 lost).
    """
    col_type, values = KEY_TYPES[kind]
    mysql_db.execute(
        f"CREATE TABLE keyed (k {col_type} NOT NULL PRIMARY KEY, v INT NOT NULL, "
        "updated_at DATETIME NOT NULL, KEY ix (updated_at, k))"
    )
    mysql_db.execute(
        f"INSERT INTO keyed SELECT {values}, 0, '2025-01-01 00:00:00' FROM seq_0_to_199"
    )
    table = f"{mysql_db.name}.keyed"
    cfg = {**HYBRID, "processing": {"batch_size": 7}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    mysql_db.execute("UPDATE keyed SET v = 1, updated_at = '2025-06-01 12:00:00'")
    sync(project, table, "--limit", "7")
    state = project.watermark(table)["mysql_state"]
    assert state["last_id"] is not None, state  # the key of the last row read is kept
    sync(project, table)
    assert target_rows(pg, "keyed", kind) == source_rows(mysql_db, "keyed")
    assert {v for _, v in target_rows(pg, "keyed", kind)} == {1}


def test_id_only_on_a_varchar_key_advances_and_append_is_never_stuck(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """The second run reads 0 rows; an append table's second run does not re-append."""
    mysql_db.execute("CREATE TABLE codes (k VARCHAR(20) NOT NULL PRIMARY KEY, v INT)")
    mysql_db.execute("INSERT INTO codes SELECT CONCAT('c', seq), seq FROM seq_1_to_50")
    table = f"{mysql_db.name}.codes"
    cfg = {"cdc_strategy": "id_only", "cdc_id_column": "k", "write_mode": "append"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table, "--json-output", str(tmp_path / "first.json"))
    assert project.watermark(table)["mysql_state"]["last_id"] == "c9"  # MySQL's max, as text
    sync(project, table, "--json-output", str(tmp_path / "second.json"))
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["table_results"][table]["rows_extracted"] == 0
    # 'D1' sorts after 'c9' in MySQL's _ci collation and before it in Python's order:
    # comparing the position with MAX(k) in Python would call it ahead of the source.
    mysql_db.execute("INSERT INTO codes VALUES ('D1', 100), ('c99', 99)")
    report = project.sync(table)
    assert sorted(pg.execute("SELECT k, v FROM codes")) == sorted(
        mysql_db.execute("SELECT k, v FROM codes")
    )
    # verify_after_load counts the window: PostgreSQL orders the text key otherwise, so it
    # counts the target's rows by MySQL's keys (by its own order: 0 of 2, a warning).
    assert report["verification"]["status"] == "equal", report
    assert report["warnings"] == []
    verified = project.cli("verify", "-p", "p", "-t", table, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["tables"][table]["status"] == "equal"


# Values equal under utf8mb4_unicode_ci / latin1_swedish_ci: case, accents, trailing spaces.
CI_GROUPS = [["a", "A", "á", "a ", "À"], ["b", "B ", "b  "], ["é", "e", "E"], ["z", "Z"]]


@pytest.mark.parametrize(
    "charset", ["utf8mb4 COLLATE utf8mb4_unicode_ci", "latin1 COLLATE latin1_swedish_ci"]
)
def test_ci_key_boundaries_inside_collation_groups(
    charset: str, tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """``cdc_id_column: code`` under a ``_ci`` collation, chunks of 2 cutting every group.

    The rows of one group compare equal in MySQL, so the position after
    ``'A '`` must continue with the rest of ``'a'``'s group in MySQL's order
    (never Python's), by the primary key after it.
    """
    mysql_db.execute(
        f"CREATE TABLE ci (code VARCHAR(10) CHARACTER SET {charset} NOT NULL, n INT NOT NULL, "
        "v INT NOT NULL, updated_at DATETIME NOT NULL, PRIMARY KEY (n), KEY ix (updated_at, code))"
    )
    rows = [(code, n) for n, code in enumerate(c for group in CI_GROUPS for c in group)]
    mysql_db.executemany(
        "INSERT INTO ci VALUES (%s, %s, 0, '2025-01-01 00:00:00')", [(c, n) for c, n in rows]
    )
    table = f"{mysql_db.name}.ci"
    cfg = {**HYBRID, "cdc_id_column": "code", "processing": {"batch_size": 2}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)  # the first run reads in primary-key order
    assert sorted(pg.execute("SELECT n, code FROM ci")) == sorted(
        mysql_db.execute("SELECT n, code FROM ci")
    )
    # The incremental walk, (updated_at, code, n): one chunk a run, so every boundary is a
    # position resumed from the watermark.
    mysql_db.execute("UPDATE ci SET v = 1, updated_at = '2025-02-01 00:00:00'")
    for _ in range((len(rows) + 1) // 2):
        sync(project, table, "--max-chunks", "1")
    assert pg.execute("SELECT COUNT(*) FROM ci WHERE v = 1") == [(len(rows),)]


@pytest.mark.parametrize(
    ("col_type", "why"),
    [("ENUM('x','y','a')", "ENUM sorts by its definition order"), ("SET('b','a')", "SET sorts")],
)
def test_a_key_type_that_cannot_be_exact_is_refused_before_anything_is_staged(
    col_type: str, why: str, tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute(
        f"CREATE TABLE odd (k {col_type} NOT NULL PRIMARY KEY, updated_at DATETIME NOT NULL)"
    )
    mysql_db.execute("INSERT INTO odd VALUES ('a', '2025-01-01')")
    table = f"{mysql_db.name}.odd"
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    result = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("Error:") == 1 and why in result.stderr
    assert not (project.stage_dir / "incremental").exists()
