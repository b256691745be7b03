"""A first run with ``--parallel`` on a new target schema (issue #29, item 1).

Every table's load creates the shared ledger ``IF NOT EXISTS`` at the same
moment; PostgreSQL lets all but one fail on its catalog's unique index. Real CLI,
MariaDB and PostgreSQL; ``PARALLEL_FIRST_RUNS`` rounds (default 5 in CI; the issue's
soak is 20), each on a fresh schema and stage.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.databases import MySQLDatabase, pg_schema
from tests.support.pipelines import make_project

TABLES = 8
ROUNDS = int(os.environ.get("PARALLEL_FIRST_RUNS", "5"))


def test_a_parallel_first_run_on_a_new_schema_creates_the_ledger_once(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    tables = {}
    for n in range(TABLES):
        mysql_db.execute(f"CREATE TABLE t{n} (id INT PRIMARY KEY, updated_at DATETIME NOT NULL)")
        mysql_db.execute(f"INSERT INTO t{n} SELECT seq, '2025-01-01' FROM seq_1_to_10")
        tables[f"{mysql_db.name}.t{n}"] = {
            "cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id",
        }  # fmt: skip
    for round_ in range(ROUNDS):
        with pg_schema() as fresh:
            project = make_project(tmp_path / str(round_), mysql_db, tables, pg=fresh)
            result = project.cli("sync", "pipeline", "-p", "p", "--parallel", str(TABLES))
            assert result.returncode == 0, f"round {round_}: {result.stderr}"
            loaded = fresh.execute("SELECT COUNT(*) FROM s3_backup_load_ledger")
            assert loaded == [(TABLES,)]
