"""Tests that fail without the mechanism they guard (issue #10, item 4).

Each docstring names its mechanism. Every test runs the real CLI against
MariaDB, PostgreSQL and a local stage; faults are SIGKILLs at named points.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from src.utils.naming import split_table_name
from src.utils.stage_keys import lock_key, watermark_key
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import ROOT, SCOPE, Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def create_t(db: MySQLDatabase, rows: int) -> str:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT, updated_at DATETIME(6) NOT NULL)")
    db.execute(f"INSERT INTO t SELECT seq, seq, '2025-01-01' + INTERVAL seq SECOND "
               f"FROM seq_1_to_{rows}")  # fmt: skip
    return f"{db.name}.t"


def stage_file(project: Project, table: str, kind: str) -> Path:
    key = {"watermark": watermark_key, "lock": lock_key}[kind]
    return project.stage_dir / key(SCOPE, *split_table_name(table), "pg")


def exactly_once(pg: PgSchema, rows: int) -> None:
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id), SUM(v) FROM t") == [
        (rows, rows, rows * (rows + 1) // 2)
    ]


@pytest.mark.parametrize("point", ["before_ledger_insert", "before_load_commit"])
def test_a_crash_inside_the_load_transaction_leaves_neither_rows_nor_ledger(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, point: str
) -> None:
    """Guards the ledger inside the load transaction (append: a reload would duplicate).

    Killed between the rows and the ledger insert, or between the ledger insert
    and the commit: the target holds neither, and the re-run loads every row
    once. With the ledger insert after the rows' commit, the first kill leaves
    rows without ledger entries, which the re-run loads again.
    """
    table = create_t(mysql_db, 3000)
    cfg = {**HYBRID, "write_mode": "append", "processing": {"batch_size": 1000}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg, backup_batch_size=1000)
    project.env["BACKUP_TEST_FAULT"] = point
    assert project.cli("sync", "pipeline", "-p", "p").returncode == -9
    del project.env["BACKUP_TEST_FAULT"]
    assert pg.execute("SELECT COUNT(*) FROM t") == [(0,)]
    assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(0,)]
    project.cli("sync", "pipeline", "-p", "p", check=True)
    exactly_once(pg, 3000)


def test_a_crash_in_the_middle_of_a_watermark_write_keeps_the_old_document(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the atomic watermark write (temp file, fsync, rename).

    The kill comes with half of the new document written; a write into the
    document itself would leave it torn, and the next run would stop on it.
    """
    table = create_t(mysql_db, 500)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    before = stage_file(project, table, "watermark").read_text()
    mysql_db.execute("INSERT INTO t VALUES (501, 501, '2026-01-01')")
    project.env["BACKUP_TEST_FAULT"] = "mid_put_bytes"
    assert project.cli("sync", "pipeline", "-p", "p").returncode == -9
    del project.env["BACKUP_TEST_FAULT"]
    assert stage_file(project, table, "watermark").read_text() == before
    project.cli("sync", "pipeline", "-p", "p", check=True)
    exactly_once(pg, 501)


def staged_so_far(doc: dict[str, Any]) -> list[str]:
    """Every file the watermark says the run staged, loaded or not."""
    return [*doc.get("processed_s3_files", []), *doc["backup_s3_files"]]


def test_a_run_that_loses_its_lock_stops_with_exit_7_and_writes_nothing_more(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards TableLock.confirm before every watermark write and load commit.

    While a run stages file after file, its lock is taken over (as a second
    run does with an expired lock). Without the check the first run goes on
    writing the watermark and loading, interleaved with the new holder.
    """
    table = create_t(mysql_db, 40_000)
    cfg = {**HYBRID, "processing": {"batch_size": 200}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    run = subprocess.Popen(
        [sys.executable, "-m", "src.cli.main", "--config-dir", str(project.config_dir),
         "sync", "pipeline", "-p", "p"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watermark, lock = stage_file(project, table, "watermark"), stage_file(project, table, "lock")
    deadline = time.monotonic() + 60
    staged: list[str] = []
    while time.monotonic() < deadline and len(staged) < 3:
        time.sleep(0.01)
        try:
            staged = staged_so_far(json.loads(watermark.read_text()))
        except (FileNotFoundError, ValueError):
            continue
    assert run.poll() is None, "the run ended before its lock could be taken"
    other = {"owner": "other_run", "host": socket.gethostname() + "-other", "pid": 1,
             "acquired_at": time.time(), "expires_at": time.time() + 3600}  # fmt: skip
    lock.write_text(json.dumps(other))  # taken over
    at_takeover = len(staged_so_far(json.loads(watermark.read_text())))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 7, stderr
    assert "this run lost its lock (now held by other_run" in stderr
    doc = json.loads(watermark.read_text())
    assert len(staged_so_far(doc)) <= at_takeover + 1  # one write may have been under way
    assert len(staged_so_far(doc)) < 40_000 // 200
    assert json.loads(lock.read_text())["owner"] == "other_run"  # not released: not ours
    # The load alongside the extract may have committed passes before the takeover;
    # never a file staged after it.
    if pg.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                  "AND table_name = 's3_backup_load_ledger'", (pg.name,)) == [(1,)]:  # fmt: skip
        loaded = pg.execute("SELECT file_key FROM s3_backup_load_ledger")
        assert len(loaded) <= at_takeover + 1


def test_ties_on_the_incremental_path_with_a_limit_inside_the_group(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the hybrid tie condition ``ts = t AND id > i`` on the incremental path.

    After the first run, twenty rows move to one new timestamp; chunks of 3
    and a ``--limit 4`` stop cut the group. With ``ts > t`` alone the rest of
    the group after each chunk edge is never read.
    """
    table = create_t(mysql_db, 100)
    cfg = {**HYBRID, "processing": {"batch_size": 3}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    mysql_db.execute("UPDATE t SET v = -v, updated_at = '2026-01-01' WHERE id % 5 = 0")
    project.cli("sync", "pipeline", "-p", "p", "--limit", "4", check=True)
    assert project.watermark(table)["mysql_state"]["last_id"] == 20  # inside the group
    project.cli("sync", "pipeline", "-p", "p", check=True)
    source = mysql_db.execute("SELECT id, v FROM t ORDER BY id")
    assert pg.execute("SELECT id, v FROM t ORDER BY id") == [tuple(r) for r in source]
    assert pg.execute("SELECT COUNT(*) FROM t WHERE v < 0") == [(20,)]
