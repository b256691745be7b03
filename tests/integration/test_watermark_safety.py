"""A watermark ahead of the source, a lost watermark, and honest operator views (issue #9, 6-8).

Through the CLI against real MariaDB and PostgreSQL, local stage.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from src.utils.naming import split_table_name
from src.utils.stage_keys import watermark_key
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import SCOPE, Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def create_orders(db: MySQLDatabase, rows: int = 50) -> str:
    db.execute("CREATE TABLE orders (id INT PRIMARY KEY, v INT, updated_at DATETIME(6) NOT NULL)")
    db.execute(
        "INSERT INTO orders SELECT seq, seq, '2025-01-01' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{rows}"
    )
    return f"{db.name}.orders"


def watermark_path(project: Project, table: str) -> Path:
    return project.stage_dir / watermark_key(SCOPE, *split_table_name(table), "pg")


def failed_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("✗")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def sync(project: Project, *extra: str) -> subprocess.CompletedProcess[str]:
    return project.cli("sync", "pipeline", "-p", "p", *extra)


def test_a_watermark_ahead_of_the_source_stops_the_run_loudly(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards check_position: a position past MAX(cursor) is exit 4, never a silent stall."""
    table = create_orders(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project).returncode == 0
    path = watermark_path(project, table)
    doc = json.loads(path.read_text())
    doc["mysql_state"]["last_timestamp"] = "2030-01-01T00:00:00.000000"
    path.write_text(json.dumps(doc))  # a hand edit
    mysql_db.execute("INSERT INTO orders VALUES (51, 51, '2025-06-01')")
    result = sync(project)
    assert result.returncode == 4, result.stderr
    line = failed_line(result)
    assert "the watermark is ahead of the source" in line
    assert "updated_at = 2030-01-01 00:00:00.000000" in line
    assert "MAX(updated_at) on the source is 2025-06-01 00:00:00.000000" in line
    assert f"'watermark set -t {table} -p p --timestamp" in line
    dry = sync(project, "--dry-run")
    assert dry.returncode == 4 and "ahead of the source" in dry.stderr

    refused = project.cli("watermark", "set", "-t", table, "--timestamp", "2031-01-01 00:00:00")
    assert refused.returncode == 1, refused.stderr
    assert "refused: the new position" in refused.stderr and "--force" in refused.stderr
    assert json.loads(path.read_text())["mysql_state"]["last_timestamp"].startswith("2030")
    back = project.cli("watermark", "set", "-t", table, "--timestamp", "2025-01-01 00:00:50")
    assert back.returncode == 0, back.stderr
    assert sync(project).returncode == 0
    assert pg.execute("SELECT COUNT(*) FROM orders") == [(51,)]
    forced = project.cli("watermark", "set", "-t", table, "--id", "5000", "--timestamp",
                         "2031-01-01 00:00:00", "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr


def test_id_only_ahead_of_an_emptied_source(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards check_position for id cursors, and for a source with no row left."""
    table = create_orders(mysql_db)
    cfg = {"cdc_strategy": "id_only", "cdc_id_column": "id"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    assert sync(project).returncode == 0
    mysql_db.execute("DELETE FROM orders")  # e.g. a restored, older source
    result = sync(project)
    assert result.returncode == 4
    assert "id = 50, but MAX(id) on the source is NULL (no row)" in failed_line(result)


def test_a_lost_watermark_of_a_merge_table_is_rebuilt_from_the_ledger(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the lost-watermark check and rebuild: no silent reload, the position comes back."""
    table = create_orders(mysql_db)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 20}}}, pg=pg
    )
    assert sync(project, "--limit", "30").returncode == 0
    mysql_db.execute("UPDATE orders SET v = -1, updated_at = '2026-01-01' WHERE id = 3")
    assert sync(project).returncode == 0  # completes the first pass
    assert sync(project).returncode == 0  # reads the update
    path = watermark_path(project, table)
    before = json.loads(path.read_text())
    path.unlink()  # the watermark is lost; the staged files stay

    result = sync(project)
    assert result.returncode == 4, result.stderr
    line = failed_line(result)
    assert f"table {table} has no watermark" in line
    assert f"lists {len(before['processed_s3_files'])} loaded files" in line
    assert f"'watermark rebuild -t {table} -p p'" in line
    assert "--reinitialize" in line
    assert not path.exists()  # nothing was read or recorded

    rebuilt = project.cli("watermark", "rebuild", "-t", table)
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = json.loads(path.read_text())
    for key in ("last_timestamp", "last_id", "last_key"):
        assert after["mysql_state"][key] == before["mysql_state"][key]
    assert after["processed_s3_files"] == before["processed_s3_files"]
    again = project.cli("watermark", "rebuild", "-t", table)
    assert again.returncode == 1 and "has a watermark" in again.stderr

    mysql_db.execute("INSERT INTO orders VALUES (51, 51, '2026-02-01')")
    report = json.loads(sync(project, "--json-output", "-").stdout)
    assert report["table_results"][table]["rows_extracted"] == 1
    source = mysql_db.execute("SELECT id, v FROM orders ORDER BY id")
    assert pg.execute("SELECT id, v FROM orders ORDER BY id") == [tuple(r) for r in source]


def test_a_wiped_stage_of_an_append_table_needs_an_explicit_reinitialize(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards the lost-watermark check for append tables, where a reload duplicates every row."""
    mysql_db.execute("CREATE TABLE logs (msg VARCHAR(20), at DATETIME(6) NOT NULL)")
    mysql_db.execute("INSERT INTO logs SELECT CONCAT('m', seq), '2025-01-01' + INTERVAL seq "
                     "SECOND FROM seq_1_to_40")  # fmt: skip
    table = f"{mysql_db.name}.logs"
    cfg = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at", "write_mode": "append"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    assert sync(project).returncode == 0
    shutil.rmtree(project.stage_dir)  # the bucket emptied

    result = sync(project)
    assert result.returncode == 4
    assert "has no watermark" in failed_line(result)
    assert pg.execute("SELECT COUNT(*) FROM logs") == [(40,)]
    rebuild = project.cli("watermark", "rebuild", "-t", table)
    assert rebuild.returncode == 4
    assert "cannot be rebuilt" in rebuild.stderr and "--reinitialize" in rebuild.stderr

    reset = project.cli("watermark", "reset", "-t", table, "--reinitialize", "-y")
    assert reset.returncode == 0, reset.stderr
    assert "Deleted 40 rows of the append-mode target table" in reset.stdout
    assert sync(project).returncode == 0
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT msg) FROM logs") == [(40, 40)]


def test_operator_views_after_a_first_pass_stop(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """``watermark get`` and ``--dry-run`` show the resumed primary-key pass, never ``None``."""
    table = create_orders(mysql_db, 500)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 100}}}, pg=pg
    )
    project.backup(table, "--limit", "300")
    get = project.cli("watermark", "get", "-t", table, check=True).stdout
    assert "resumes the first run, read in primary-key order, after primary key 300" in get
    assert "starts at the beginning of the table" not in get
    dry = project.cli("sync", "pipeline", "-p", "p", "--dry-run", check=True).stdout
    assert "first run, reading in primary-key order" in dry
    assert f"`{mysql_db.name}`.`orders`.`id` > 300 ORDER BY" in dry
    assert "after key 300 up to 2025-01-01 00:08:20" in dry
    assert "None" not in dry

    fresh = make_project(tmp_path / "fresh", mysql_db, {table: HYBRID}, pg=pg)
    dry = fresh.cli("sync", "pipeline", "-p", "p", "--dry-run", check=True).stdout
    assert "after the start of the table up to" in dry and "None" not in dry
