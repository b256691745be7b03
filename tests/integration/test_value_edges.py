"""Values the load refused or ``verify`` got wrong (issue #28, item 5), end to end.

Tiny and huge doubles, a DECIMAL whose scale shrank at the source, JSON with
``\\u0000`` and with numbers beyond double range, ``NOT NULL DEFAULT
'0000-00-00'`` columns, a 3 MB BLOB into PostgreSQL, a primary key changed at
the source. Real CLI, MariaDB and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def sync(project: Project, table: str, *extra: str) -> Any:
    return project.cli("sync", "pipeline", "-p", "p", "-t", table, *extra)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def table_with(db: MySQLDatabase, columns: str, values: str) -> str:
    """``e (id, <columns>, updated_at)`` with rows ``values``."""
    db.execute(
        f"CREATE TABLE e (id INT NOT NULL PRIMARY KEY, {columns}, "
        "updated_at DATETIME NOT NULL DEFAULT '2025-01-01 00:00:00')"
    )
    if values:
        db.execute(f"INSERT INTO e (id, {columns.split()[0]}) VALUES {values}")
    return f"{db.name}.e"


def test_tiny_and_huge_doubles_verify(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = table_with(
        mysql_db,
        "d DOUBLE",
        "(1, 4.9e-324), (2, -4.9e-324), (3, 1.7976931348623157e308), (4, -2.2e-308), (5, 0)",
    )
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project, table).returncode == 0
    code, result = project.verify(table)
    assert (code, result["source_rows"]) == (0, 5), result
    mysql_db.execute("UPDATE e SET d = 9.9e-324 WHERE id = 1")
    code, result = project.verify(table)
    assert (code, result["different"]["keys"]) == (4, [{"id": 1}])


def test_a_decimal_whose_scale_shrank_is_reported_and_repaired(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """MySQL rounds 1.25 to 1.3 at ``DECIMAL(10,1)``: the target's 1.25 is not "equal"."""
    table = table_with(mysql_db, "amount DECIMAL(10,2)", "(1, 1.25), (2, 2.50)")
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project, table).returncode == 0
    mysql_db.execute("ALTER TABLE e MODIFY amount DECIMAL(10,1)")
    code, result = project.verify(table)
    assert (code, result["different"]["keys"]) == (4, [{"id": 1}]), result  # 2.50 = 2.5
    code, result = project.verify(table, "--repair")
    assert code == 0, result
    assert sorted(pg.execute("SELECT id, amount::text FROM e")) == [(1, "1.30"), (2, "2.50")]
    assert project.verify(table)[0] == 0


def test_json_with_a_nul_escape_loads_and_a_fixed_source_is_never_stuck(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """PostgreSQL's JSONB refuses ``\\u0000``: stripped as a NUL character is (nul_chars: strip)."""
    table = table_with(
        mysql_db,
        "doc JSON",
        r"""(1, '{"a": "x\\u0000y", "b": "\\\\u0000"}'), """
        r"""(2, '[1e308, 1.50, 12345678901234567890]')""",
    )
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    result = sync(project, table)
    assert result.returncode == 0, result.stderr
    docs = dict(pg.execute("SELECT id, doc::text FROM e"))
    assert docs[1] == '{"a": "xy", "b": "\\\\u0000"}'  # an escaped backslash is kept
    code, verified = project.verify(table)
    assert code == 0, verified  # 1e308 and 1.50 compare as the numbers they are
    pg.execute("DELETE FROM s3_backup_load_ledger")  # a second stage onto this target
    strict = make_project(
        tmp_path / "strict", mysql_db, {table: {**HYBRID, "nul_chars": "error"}}, pg=pg
    )
    failed = strict.cli("sync", "pipeline", "-p", "p", "--backup-only")
    assert failed.returncode == 4
    assert len(errors(failed.stderr)) == 1 and "doc" in errors(failed.stderr)[0]


def test_not_null_zero_date_columns_sync(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """A legacy ``NOT NULL DEFAULT '0000-00-00'`` column: zero dates become NULL in the target."""
    mysql_db.execute("SET SESSION sql_mode = ''")
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(
            "CREATE TABLE e (id INT NOT NULL PRIMARY KEY, "
            "d DATE NOT NULL DEFAULT '0000-00-00', t DATETIME NOT NULL DEFAULT '0000-00-00', "
            "updated_at DATETIME NOT NULL)"
        )
        cur.execute(
            "INSERT INTO e VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '2025-01-01'), "
            "(2, '2024-02-29', '2024-02-29 10:00:00', '2025-01-01')"
        )
    table = f"{mysql_db.name}.e"
    for reader in ("connectorx", "pymysql"):
        project = make_project(tmp_path / reader, mysql_db, {table: HYBRID}, pg=pg)
        pg.execute("DROP TABLE IF EXISTS e")
        pg.execute("DROP TABLE IF EXISTS s3_backup_load_ledger")
        result = sync(project, table, "--reader", reader)
        assert result.returncode == 0, result.stderr
        assert sorted(pg.execute("SELECT id, d FROM e"))[0] == (1, None)
        assert project.verify(table)[0] == 0


def test_a_3_mb_blob_loads_into_postgresql(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Redshift's 1,024,000-byte VARBYTE limit is Redshift's: a bytea takes 3 MB."""
    table = table_with(mysql_db, "b LONGBLOB", "(1, REPEAT('x', 3000000))")
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    result = sync(project, table)
    assert result.returncode == 0, result.stderr
    assert pg.execute("SELECT LENGTH(b) FROM e") == [(3000000,)]


def test_a_primary_key_changed_at_the_source_is_named_before_the_load(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """``(id)`` → ``(id, b)``: one Error line naming both keys and the way on; nothing loaded."""
    table = table_with(mysql_db, "b INT NOT NULL DEFAULT 0", "(1, 0), (2, 0)")
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project, table).returncode == 0
    mysql_db.execute("ALTER TABLE e DROP PRIMARY KEY, ADD PRIMARY KEY (id, b)")
    mysql_db.execute("INSERT INTO e (id, b, updated_at) VALUES (1, 1, '2025-02-01')")
    result = sync(project, table)
    lines = errors(result.stderr)
    assert result.returncode == 4, result.stderr
    assert len(lines) == 1 and "(id)" in lines[0] and "(id, b)" in lines[0], lines
    assert "--reinitialize" in lines[0]
    assert "duplicate key" not in result.stderr
    assert pg.execute("SELECT COUNT(*) FROM e") == [(2,)]
    # The way on, as the line says: rebuild the target.
    pg.execute("DROP TABLE e")
    reset = project.cli("watermark", "reset", "-t", table, "--reinitialize", "-y")
    assert reset.returncode == 0, reset.stderr
    assert sync(project, table).returncode == 0
    assert sorted(pg.execute("SELECT id, b FROM e")) == [(1, 0), (1, 1), (2, 0)]
