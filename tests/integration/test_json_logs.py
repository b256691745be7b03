"""Under --json-logs every stderr line is JSON (issue #10, 7); Rust's panic text never
reaches stderr, in either mode, unless --debug (#12, 4)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project


def zero_date_project(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> Project:
    """A hybrid table with a zero date (connectorx panics on it), RUST_BACKTRACE=1 set."""
    mysql_db.execute("CREATE TABLE s (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, d DATE)")
    mysql_db.execute("INSERT INTO s SELECT seq, '2025-01-01' + INTERVAL seq SECOND, '2025-02-01' "
                     "FROM seq_1_to_100")  # fmt: skip
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("UPDATE s SET d = '0000-00-00' WHERE id = 50")
    cfg = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
    project = make_project(tmp_path, mysql_db, {f"{mysql_db.name}.s": cfg}, pg=pg)
    project.env["RUST_BACKTRACE"] = "1"  # the noisiest case: a whole backtrace on fd 2
    return project


def test_every_stderr_line_is_json_even_when_connectorx_panics(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards native_stderr: connectorx's panic hook writes to fd 2 behind Python's back."""
    project = zero_date_project(tmp_path, mysql_db, pg)
    result = project.cli("--json-logs", "sync", "pipeline", "-p", "p", "--reader", "connectorx")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # each line is JSON
    assert "panicked at" not in result.stderr and "stack backtrace" not in result.stderr
    assert any(e["event"].startswith("✓ ") and e["level"] == "info" for e in events)
    assert any("cannot decode a date natively" in e["event"] for e in events)
    assert pg.execute("SELECT COUNT(*), COUNT(d) FROM s") == [(100, 99)]
    failed = project.cli("--json-logs", "sync", "pipeline", "-p", "nope")
    lines = [json.loads(line) for line in failed.stderr.splitlines()]
    assert failed.returncode == 1
    assert lines[-1]["level"] == "error" and lines[-1]["event"].startswith("Error: ")


def test_rust_panic_text_stays_off_stderr_in_text_mode_unless_debug(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    project = zero_date_project(tmp_path, mysql_db, pg)
    table = f"{mysql_db.name}.s"
    run = ("sync", "pipeline", "-p", "p", "--reader", "connectorx", "--backup-only")
    result = project.cli(*run)
    assert result.returncode == 0, result.stderr
    assert "cannot decode a date natively" in result.stderr  # our one line says it
    for noise in ("panicked at", "stack backtrace", "RUST_BACKTRACE", "rust_begin_unwind"):
        assert noise not in result.stderr, result.stderr
    project.cli("watermark", "reset", "-t", table, "-p", "p", "-y", check=True)
    debug = project.cli("--debug", *run)
    assert debug.returncode == 0 and "panicked at" in debug.stderr  # shown when asked
