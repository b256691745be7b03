"""A run whose lock is taken away just before its load commits commits nothing (issue #29, item 5).

The load checks the lock right before ``COMMIT``: the run is paused at that
moment (``BACKUP_TEST_PAUSE``), another owner takes the lock, and the run must
roll back its rows and ledger entries and exit 7. Real CLI, MariaDB, PostgreSQL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from src.utils.naming import split_table_name
from src.utils.stage_keys import lock_key
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import SCOPE, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def test_a_lock_taken_away_before_the_commit_commits_nothing(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute("CREATE TABLE o (id INT PRIMARY KEY, updated_at DATETIME NOT NULL)")
    mysql_db.execute("INSERT INTO o SELECT seq, '2025-01-01' FROM seq_1_to_100")
    table = f"{mysql_db.name}.o"
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    run = project.paused("before_load_commit", "sync", "pipeline", "-p", "p", "-t", table)
    lock = project.stage_dir / lock_key(SCOPE, *split_table_name(table), "pg")
    now = time.time()
    thief = {"owner": "sync_other", "host": "h", "pid": 1, "acquired_at": now,
             "expires_at": now + 600}  # fmt: skip
    lock.write_text(json.dumps(thief))  # an operator's delete and another run's create
    code, _, stderr = project.resume(run, "before_load_commit")
    assert code == 7, stderr
    assert "lost its lock" in stderr
    assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(0,)]
    assert pg.execute("SELECT COUNT(*) FROM o") == [(0,)]  # created before the load: empty
    assert json.loads(lock.read_text())["owner"] == "sync_other"  # never released by the loser
