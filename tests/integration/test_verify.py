"""``verify`` on real MariaDB and PostgreSQL: the keys it names, and the ones it must not (#11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_mysql_types import create_every_type
from tests.support.databases import MySQLDatabase, PgSchema, closed_port
from tests.support.pipelines import Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def parcels(db: MySQLDatabase, rows: int) -> str:
    db.execute(
        "CREATE TABLE parcels (id INT PRIMARY KEY, note VARCHAR(40), amount DECIMAL(10,2), "
        "weight DOUBLE, updated_at DATETIME(6) NOT NULL, KEY (updated_at, id))"
    )
    db.execute(
        "INSERT INTO parcels SELECT seq, CONCAT('ünï ', seq), seq / 7, seq / 3, "
        f"'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}"
    )
    return f"{db.name}.parcels"


def verify(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.cli("verify", "-p", "p", "--json", *args)
    assert result.returncode in (0, 4), result.stderr
    return result.returncode, json.loads(result.stdout)


def sync(project: Project, table: str) -> None:
    project.cli("sync", "pipeline", "-p", "p", "-t", table, check=True)


def ids(found: dict[str, Any]) -> list[int]:
    return sorted(k["id"] for k in found["keys"])


@pytest.fixture
def synced(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> tuple[Project, str]:
    table = parcels(mysql_db, 3000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    sync(project, table)
    return project, table


def damage(db: MySQLDatabase) -> None:
    """The three things a cursor cannot see, and one it must not be blamed for."""
    db.execute("DELETE FROM parcels WHERE id IN (5, 6, 2500)")  # hard deletes
    db.execute("UPDATE parcels SET note = 'silent' WHERE id IN (9, 1700)")  # cursor untouched
    db.execute(  # committed late, with an old cursor value
        "INSERT INTO parcels VALUES (4001, 'late', 1, 1, '2025-01-01 00:00:03'), "
        "(4002, 'late', 1, 1, '2025-01-01 00:10:00')"
    )
    # Changed and inserted after the last sync: not differences, not synced yet.
    db.execute("UPDATE parcels SET note = 'new', updated_at = '2030-01-01' WHERE id IN (20, 21)")
    db.execute("INSERT INTO parcels VALUES (5000, 'new', 1, 1, '2030-01-01')")


@pytest.mark.parametrize("leaf_rows", ["10000", "100"])
def test_verify_names_deleted_silent_and_late_rows_only(
    synced: tuple[Project, str], mysql_db: MySQLDatabase, leaf_rows: str
) -> None:
    project, table = synced
    code, report = verify(project, "--max-rows-in-memory", leaf_rows)
    assert code == 0, report
    assert report["tables"][table]["status"] == "equal"
    assert report["tables"][table]["source_rows"] == 3000  # at or below the watermark
    damage(mysql_db)
    code, report = verify(project, "--max-rows-in-memory", leaf_rows)
    result = report["tables"][table]
    assert (code, report["status"], result["status"]) == (4, "different", "different")
    assert ids(result["missing_in_target"]) == [4001, 4002]
    assert ids(result["extra_in_target"]) == [5, 6, 2500]
    assert ids(result["different"]) == [9, 1700]
    assert result["not_synced_yet"] == 2
    assert result["missing_in_target"]["count"] == 2
    if leaf_rows == "100":
        assert result["segments_compared"] > 1  # the key range was split
        assert result["rows_fetched"] < 2 * 3000


def test_verify_text_output_and_keys_only(
    synced: tuple[Project, str], mysql_db: MySQLDatabase
) -> None:
    project, table = synced
    damage(mysql_db)
    text = project.cli("verify", "-p", "p", "-t", table)
    assert text.returncode == 4, text.stderr
    assert "different" in text.stdout and "{'id': 5}" in text.stdout
    _, report = verify(project, "--keys-only")
    result = report["tables"][table]
    assert ids(result["different"]) == []  # values are not compared
    assert ids(result["extra_in_target"]) == [5, 6, 2500]
    assert result["columns_compared"] == ["id"]
    _, report = verify(project, "--columns", "amount")
    assert ids(report["tables"][table]["different"]) == []  # note is not compared
    _, report = verify(project, "--columns", "note")
    assert ids(report["tables"][table]["different"]) == [9, 1700]


def test_grace_leaves_out_rows_near_the_watermark(
    synced: tuple[Project, str], mysql_db: MySQLDatabase
) -> None:
    project, table = synced
    mysql_db.execute("UPDATE parcels SET note = 'silent' WHERE id = 2990")
    _, report = verify(project)
    assert ids(report["tables"][table]["different"]) == [2990]
    code, report = verify(project, "--grace", "60")
    assert code == 0, report
    assert report["tables"][table]["source_rows"] == 2999 - 60


def test_every_type_verifies_equal(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> None:
    table, cfg = create_every_type(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    code, report = verify(project)
    result = report["tables"][table]
    assert code == 0, result
    assert result["source_rows"] == result["target_rows"] == 3
    mysql_db.execute("UPDATE every_type SET fl = 0.5, js = '{\"k\": 2}' WHERE id = 2")
    mysql_db.execute("UPDATE every_type SET bl = 'x' WHERE id = 1")
    code, report = verify(project)
    assert code == 4 and ids(report["tables"][table]["different"]) == [1, 2]


def test_composite_key_and_renamed_column(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute(
        "CREATE TABLE legs (k1 INT, k2 VARCHAR(10), `190_time` INT, ts DATETIME NOT NULL, "
        "PRIMARY KEY (k1, k2))"
    )
    mysql_db.execute(
        "INSERT INTO legs SELECT seq % 7, CONCAT(CHAR(65 + seq % 26), 'é', seq), seq, "
        "'2025-01-01' FROM seq_1_to_400"
    )
    table = f"{mysql_db.name}.legs"
    cfg = HYBRID | {"cdc_timestamp_column": "ts", "cdc_id_column": "k1", "target_name": "leg_copy"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    mysql_db.execute("UPDATE legs SET ts = '2024-12-31'")  # keep every row below the watermark
    pg.execute("UPDATE leg_copy SET ts = '2024-12-31'")
    code, report = verify(project)
    assert code == 0, report
    assert report["tables"][table]["source_rows"] == 400
    assert "190_time" in report["tables"][table]["columns_compared"]
    mysql_db.execute("UPDATE legs SET `190_time` = -1 WHERE k1 = 3 AND k2 = 'Dé3'")
    mysql_db.execute("DELETE FROM legs WHERE k1 = 0 AND k2 = 'Hé7'")
    code, report = verify(project, "--max-rows-in-memory", "100")
    result = report["tables"][table]
    assert code == 4
    assert result["different"]["keys"] == [{"k1": 3, "k2": "Dé3"}]
    assert result["extra_in_target"]["keys"] == [{"k1": 0, "k2": "Hé7"}]


def test_text_key_streams_in_codepoint_order(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    # utf8mb4_general_ci sorts 'a' before 'B'; PostgreSQL's C collation the other way round.
    mysql_db.execute(
        "CREATE TABLE tags (code VARCHAR(20) PRIMARY KEY, n INT) "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    )
    mysql_db.execute("INSERT INTO tags VALUES ('a', 1), ('B', 2), ('é', 3), ('Z ', 4), ('😀', 5)")
    table = f"{mysql_db.name}.tags"
    project = make_project(tmp_path, mysql_db, {table: {"cdc_strategy": "full_sync"}}, pg=pg)
    sync(project, table)
    # A target whose collation is linguistic, as many PostgreSQL clusters' default is.
    pg.execute('ALTER TABLE tags ALTER COLUMN code TYPE VARCHAR(20) COLLATE "und-x-icu"')
    code, report = verify(project)
    assert code == 0, report
    assert report["tables"][table]["method"] == "stream"
    mysql_db.execute("DELETE FROM tags WHERE code = 'B'")
    code, report = verify(project)
    assert report["tables"][table]["extra_in_target"]["keys"] == [{"code": "B"}]


def test_not_synced_and_unknown_table(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 10)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    code, report = verify(project)
    assert (code, report["tables"][table]["status"]) == (4, "not_ready")
    unknown = project.cli("verify", "-p", "p", "-t", "nope.nope")
    assert unknown.returncode == 1
    assert unknown.stderr.count("Error:") == 1
    usage = project.cli("verify", "-p", "p", "--force")
    assert usage.returncode == 1 and "--repair" in usage.stderr


def test_unreachable_source_exits_2(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> None:
    table = parcels(mysql_db, 10)
    project = make_project(
        tmp_path, mysql_db, {table: HYBRID}, pg=pg, source_extra={"port": closed_port()}
    )
    result = project.cli("verify", "-p", "p")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error:" in line]
    assert len(errors) == 1 and "MySQL source" in errors[0], result.stderr


def rows_of(project: Project, mysql_db: MySQLDatabase, pg: PgSchema) -> tuple[list, list]:
    """Both tables, read independently of verify (Python values, sorted by id)."""
    cols = "id, note, amount, weight, updated_at"
    source = [tuple(r) for r in mysql_db.execute(f"SELECT {cols} FROM parcels ORDER BY id")]
    target = [tuple(r) for r in pg.execute(f"SELECT {cols} FROM parcels ORDER BY id")]
    return source, target


def test_repair_makes_the_target_equal(
    synced: tuple[Project, str], mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project, table = synced
    damage(mysql_db)
    code, report = verify(project, "--repair", "--dry-run")
    repair = report["tables"][table]["repair"]
    assert code == 4 and repair["dry_run"]
    assert (repair["rows_reextracted"], repair["rows_deleted"]) == (4, 3)
    assert pg.execute("SELECT COUNT(*) FROM parcels")[0][0] == 3000  # nothing changed
    code, report = verify(project, "--repair")
    result = report["tables"][table]
    assert (code, result["status"]) == (0, "repaired"), result
    assert result["repair"]["rows_reextracted"] == 4
    assert result["repair"]["rows_deleted"] == 3
    assert result["repair"]["files_staged"] == 1
    loaded = pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger")[0][0]
    assert loaded >= 2  # the repair's file went through the ledger like any load
    code, report = verify(project)
    assert code == 0, report
    sync(project, table)  # the rows changed after the first sync
    source, target = rows_of(project, mysql_db, pg)
    assert source == target


def test_repair_deletion_guard_and_force(
    synced: tuple[Project, str], mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project, table = synced
    mysql_db.execute("DELETE FROM parcels WHERE id BETWEEN 1001 AND 1200")  # 6.7 % > 5 %
    code, report = verify(project, "--repair")
    result = report["tables"][table]
    assert (code, result["status"]) == (4, "different")
    assert "max_delete_fraction" in result["repair"]["refused"]
    assert result["repair"]["rows_deleted"] == 0
    assert pg.execute("SELECT COUNT(*) FROM parcels")[0][0] == 3000
    code, report = verify(project, "--repair", "--force")
    assert (code, report["tables"][table]["repair"]["rows_deleted"]) == (0, 200)
    assert pg.execute("SELECT COUNT(*) FROM parcels")[0][0] == 2800


def test_soft_delete_marks_rows(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> None:
    table = parcels(mysql_db, 100)
    cfg = HYBRID | {"delete_mode": "soft"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    mysql_db.execute("DELETE FROM parcels WHERE id IN (3, 4)")
    code, report = verify(project, "--repair")
    assert code == 0, report
    assert report["tables"][table]["repair"]["rows_marked_deleted"] == 2
    marked = pg.execute("SELECT id FROM parcels WHERE _deleted_at IS NOT NULL ORDER BY id")
    assert [r[0] for r in marked] == [3, 4]
    code, report = verify(project)
    assert code == 0, report  # marked rows are not extra any more


def test_a_repair_killed_before_commit_deletes_nothing(
    synced: tuple[Project, str], mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project, table = synced
    damage(mysql_db)
    project.env["BACKUP_TEST_FAULT"] = "before_load_commit"
    killed = project.cli("verify", "-p", "p", "--repair")
    assert killed.returncode == -9, killed.stderr
    # The re-extracted rows and the deletes are one transaction: neither happened.
    assert pg.execute("SELECT COUNT(*) FROM parcels WHERE id IN (5, 6, 2500)")[0][0] == 3
    assert pg.execute("SELECT COUNT(*) FROM parcels WHERE id IN (4001, 4002)")[0][0] == 0
    del project.env["BACKUP_TEST_FAULT"]
    code, report = verify(project)
    assert report["tables"][table]["status"] == "not_ready"  # the staged repair file waits
    project.cli("sync", "pipeline", "-p", "p", "-t", table, "--redshift-only", check=True)
    code, report = verify(project, "--repair")
    assert (code, report["tables"][table]["status"]) == (0, "repaired"), report
    assert report["tables"][table]["repair"]["rows_deleted"] == 3
    code, report = verify(project)
    assert code == 0, report
