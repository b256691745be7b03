"""``verify --repair`` under the table's lock, racing a sync both ways round (issue #29, item 4).

A repair compares and mends holding the table's lock: one started while a sync
runs exits 7 (not 4, "staged files are not loaded yet"), a sync started while a
repair runs exits 7, and a key the source regains between the comparison and
the delete is kept. Each race is driven at a fault point (``BACKUP_TEST_PAUSE``).
Real CLI, MariaDB and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def synced(tmp_path: Path, db: MySQLDatabase, pg: PgSchema) -> tuple[Project, str]:
    db.execute("CREATE TABLE r (id INT PRIMARY KEY, v INT, updated_at DATETIME NOT NULL)")
    db.execute("INSERT INTO r SELECT seq, 0, '2025-01-01' FROM seq_1_to_100")
    table = f"{db.name}.r"
    project = make_project(tmp_path, db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "-t", table, check=True)
    return project, table


def test_a_repair_that_meets_a_running_sync_exits_7(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project, table = synced(tmp_path, mysql_db, pg)
    mysql_db.execute("UPDATE r SET v = 1, updated_at = '2025-02-01' WHERE id <= 10")
    sync = project.paused("before_load_commit", "sync", "pipeline", "-p", "p", "-t", table)
    code, result = project.verify(table, "--repair")
    assert (code, result["exit_code"]) == (7, 7), result
    assert "locked by another run" in result["error"]
    assert project.resume(sync, "before_load_commit")[0] == 0


def test_a_sync_that_meets_a_running_repair_exits_7_and_a_regained_key_is_kept(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project, table = synced(tmp_path, mysql_db, pg)
    mysql_db.execute("DELETE FROM r WHERE id IN (5, 6)")  # extra in the target
    repair = project.paused("before_repair_delete", "verify", "-p", "p", "-t", table,
                            "--repair", "--json")  # fmt: skip
    blocked = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert blocked.returncode == 7, blocked.stderr
    # Between the comparison and the delete, key 5 comes back at the source.
    mysql_db.execute("INSERT INTO r VALUES (5, 0, '2025-01-01')")
    code, out, err = project.resume(repair, "before_repair_delete")
    assert code == 0, err
    assert json.loads(out)["tables"][table]["repair"]["rows_deleted"] == 1
    assert sorted(k for (k,) in pg.execute("SELECT id FROM r WHERE id IN (5, 6)")) == [5]
    assert project.verify(table)[0] == 0
