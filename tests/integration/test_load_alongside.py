"""The load runs alongside the extract: the target fills while the backup goes on (#13).

Each pass is one load transaction (ledger rows, merge, watermark), so the
result is the same as a load after the extract; what differs is when the rows
arrive. Kill -9 at every point of a run with both stages is the fault soak's
(tests/integration/test_faults.py), which runs this path.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.integration.test_faults import HYBRID, parcels
from tests.integration.test_quarantine import source_rows, target_rows
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project

ROWS, PER_FILE = 60_000, 2_000


def test_the_target_fills_while_the_extract_goes_on(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, ROWS)
    config = {**HYBRID, "processing": {"batch_size": PER_FILE}}
    project = make_project(tmp_path, mysql_db, {table: config}, pg=pg, backup_batch_size=PER_FILE)
    out = project.cli("sync", "pipeline", "-p", "p", "--json-output", "-", check=True)
    assert target_rows(pg) == source_rows(mysql_db)
    wm = project.watermark(table)
    files = wm["processed_s3_files"]
    assert len(files) == ROWS // PER_FILE and wm["backup_s3_files"] == []
    assert wm["redshift_state"]["last_session_rows"] == ROWS  # every pass of the run
    (report,) = json.loads(out.stdout)["table_results"].values()
    assert (report["rows_extracted"], report["rows_loaded"]) == (ROWS, ROWS)
    # Ledger rows carry their transaction's time: a pass committed before the extract
    # staged its last file (a load after the extract commits once, after all of them).
    passes = pg.execute(
        "SELECT loaded_at, COUNT(*) FROM s3_backup_load_ledger GROUP BY 1 ORDER BY 1"
    )
    assert sum(n for _, n in passes) == len(files)
    first_commit = passes[0][0].replace(tzinfo=dt.UTC).timestamp()
    last_staged = max(Path(uri).stat().st_mtime for uri in files)
    assert len(passes) >= 2 and first_commit < last_staged, (passes, last_staged)


def test_a_big_chunk_is_read_in_several_queries_losing_no_row(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """With a load alongside, a chunk is read by key in queries of at most 100,000 rows
    (10,000 first, 25,000 while the load waits), which connectorx reads with the GIL
    released; the queries continue one another exactly (ties on the timestamp straddle
    their ends), and the first file, the first pass's, holds the first query's rows."""
    rows = 130_000
    mysql_db.execute(
        "CREATE TABLE parcels (id INT PRIMARY KEY, note VARCHAR(200), updated_at DATETIME(6) "
        "NOT NULL, KEY (updated_at, id))"
    )
    mysql_db.execute(
        "INSERT INTO parcels SELECT seq, CONCAT('n', seq), "
        f"'2025-01-01' + INTERVAL (seq DIV 7) SECOND FROM seq_1_to_{rows}"
    )
    table = f"{mysql_db.name}.parcels"
    config = {**HYBRID, "processing": {"batch_size": rows}}  # one chunk
    project = make_project(tmp_path, mysql_db, {table: config}, pg=pg, backup_batch_size=rows)

    def executed() -> int:
        ((_, value),) = mysql_db.execute("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'")
        return int(value)

    before = executed()
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert executed() - before >= 3  # 130,000 rows in queries of at most 100,000
    assert target_rows(pg) == source_rows(mysql_db)
    loaded = pg.execute("SELECT rows FROM s3_backup_load_ledger ORDER BY file_key")
    assert loaded[0] == (10_000,) and sum(n for (n,) in loaded) == rows, loaded


def test_a_failed_load_pass_stops_the_extract_early(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards LoadAlongside.waiting raising the pass's error: no whole extract for nothing.

    The target schema is missing, so the first pass fails creating the ledger; the
    extract stops at its next query instead of staging all 30 files, and what it
    staged stays staged for the next run, which loads it once the schema exists.
    """
    table = parcels(mysql_db, ROWS)
    config = {**HYBRID, "processing": {"batch_size": PER_FILE}}
    project = make_project(tmp_path, mysql_db, {table: config}, pg=pg, backup_batch_size=PER_FILE)
    connections = project.config_dir / "connections.yml"
    missing = f"{pg.name}_missing"
    connections.write_text(connections.read_text().replace(pg.name, missing))
    failed = project.cli("sync", "pipeline", "-p", "p")
    assert failed.returncode == 6, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f'schema "{missing}" does not exist' in errors[0]
    assert "load alongside the extract failed" not in failed.stderr  # one error, said once
    staged = project.watermark(table)["backup_s3_files"]
    assert 0 < len(staged) < ROWS // PER_FILE // 2, len(staged)
    pg.execute(f'CREATE SCHEMA "{missing}"')
    try:
        project.cli("sync", "pipeline", "-p", "p", check=True)
        rows = pg.execute(f'SELECT COUNT(*), COUNT(DISTINCT id) FROM "{missing}".parcels')
        assert rows == [(ROWS, ROWS)]
    finally:
        pg.execute(f'DROP SCHEMA "{missing}" CASCADE')
