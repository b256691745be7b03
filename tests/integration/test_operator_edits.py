"""An operator's edits that cannot double rows, and errors that are one line (issue #29, 6-7).

``watermark set`` back, or ``reset``, on an append table refuses while its target holds
the rows that would be appended twice; a changed ``target_name`` is named with the way
on; a SQL error in ``additional_where`` is one ``Error:`` line. Real CLI, MariaDB,
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

APPEND = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at", "write_mode": "append"}
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "at", "cdc_id_column": "id"}


def events(db: MySQLDatabase) -> str:
    """``ev``: 100 rows, no primary key, one a second."""
    db.execute("CREATE TABLE ev (id INT NOT NULL, at DATETIME NOT NULL, KEY (at))")
    db.execute("INSERT INTO ev SELECT seq, '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_100")
    return f"{db.name}.ev"


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def sync(project: Project, table: str) -> None:
    project.cli("sync", "pipeline", "-p", "p", "-t", table, check=True)


def test_moving_an_append_table_back_is_refused_naming_the_rows(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = events(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: APPEND}, pg=pg)
    sync(project, table)
    before = project.watermark(table)["mysql_state"]["last_timestamp"]
    moved = project.cli("watermark", "set", "-t", table, "--timestamp", "2025-01-01 00:01:00")
    assert moved.returncode == 1, moved.stderr
    (line,) = errors(moved.stderr)
    assert "40 target rows lie past the new position" in line, line
    assert "--reinitialize" in line and "--force" in line
    assert project.watermark(table)["mysql_state"]["last_timestamp"] == before  # unchanged
    reset = project.cli("watermark", "reset", "-t", table, "-y")
    assert reset.returncode == 1 and "holds 100 rows" in reset.stderr, reset.stderr
    # The way on: --reinitialize deletes them first; the next sync appends each row once.
    project.cli("watermark", "reset", "-t", table, "--reinitialize", "-y", check=True)
    sync(project, table)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM ev") == [(100, 100)]
    forced = project.cli("watermark", "set", "-t", table, "--timestamp", "2025-01-01 00:01:00",
                         "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr  # the operator's call, said out loud


def test_a_changed_target_name_is_named_with_the_way_on(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Before: exit 0, "0 rows extracted", and the new table never created."""
    mysql_db.execute("CREATE TABLE o (id INT PRIMARY KEY, at DATETIME NOT NULL)")
    mysql_db.execute("INSERT INTO o SELECT seq, '2025-01-01' FROM seq_1_to_50")
    table = f"{mysql_db.name}.o"
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    sync(project, table)
    make_project(tmp_path, mysql_db, {table: {**HYBRID, "target_name": "orders_v2"}}, pg=pg)
    renamed = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert renamed.returncode == 1, renamed.stderr
    (line,) = errors(renamed.stderr)
    assert f"{pg.name}.o" in line and f"{pg.name}.orders_v2" in line, line
    assert f"watermark reset -t {table} -p p --reinitialize" in line
    project.cli("watermark", "reset", "-t", table, "--reinitialize", "-y", check=True)
    sync(project, table)
    assert pg.execute("SELECT COUNT(*) FROM orders_v2") == [(50,)]


def test_a_sql_error_in_additional_where_is_one_line(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute("CREATE TABLE o (id INT PRIMARY KEY, at DATETIME NOT NULL)")
    table = f"{mysql_db.name}.o"
    for where in ("no_such_column > 1", "id >"):
        project = make_project(
            tmp_path / str(len(where)), mysql_db, {table: {**HYBRID, "additional_where": where}},
            pg=pg,
        )  # fmt: skip
        result = project.cli("sync", "pipeline", "-p", "p", "-t", table)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = errors(result.stderr)
        assert f"table {table}: additional_where {where!r} is not valid in MySQL" in line, line
