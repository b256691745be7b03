"""Crash safety: SIGKILL at random moments and at every named fault point (SPEC §11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import ROOT, make_project


def test_random_kills_under_a_concurrent_writer() -> None:
    # The README's command, as an operator runs it.
    result = subprocess.run(
        [sys.executable, "-m", "tests.soak.kill_harness", "--kills", "10", "--seed", "20261125"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kills"] == 10
    assert summary["source_rows"] > 200_000


@pytest.mark.parametrize("point", ["after_upload", "mid_copy", "after_load_commit"])
def test_named_fault_points(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, point: str
) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT, updated_at DATETIME(6) NOT NULL)")
    mysql_db.execute(
        "INSERT INTO t SELECT seq, seq, '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_3000"
    )
    table = f"{mysql_db.name}.t"
    cfg = {
        "cdc_strategy": "hybrid",
        "cdc_timestamp_column": "updated_at",
        "cdc_id_column": "id",
        "write_mode": "append",  # append: anything loaded twice shows as a duplicate
        "processing": {"batch_size": 1000},
    }
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg, backup_batch_size=1000)
    project.env["BACKUP_TEST_FAULT"] = point
    assert project.cli("sync", "pipeline", "-p", "p").returncode == -9
    del project.env["BACKUP_TEST_FAULT"]
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id), SUM(v) FROM t") == [
        (3000, 3000, 3000 * 3001 // 2)
    ]
