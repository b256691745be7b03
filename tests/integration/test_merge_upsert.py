"""PostgreSQL merges by MERGE (15+) or INSERT … ON CONFLICT, falling back to the sort (#13)."""

from __future__ import annotations

import time
from pathlib import Path

from src.load.merge import Upsert
from src.load.targets.postgres import PostgresDialect
from src.utils.naming import quote_pg_table
from tests.integration.test_faults import HYBRID, parcels
from tests.integration.test_quarantine import source_rows, target_rows
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project

REFUSED = "upsert refused; merging by delete and insert"


def row_changes(pg: PgSchema, kind: str = "n_tup_del") -> tuple[int, int]:
    """(rows updated, rows deleted — or ``kind``) in the target table since it was created."""
    for _ in range(50):  # a finished backend's counters reach the shared stats at its exit
        found = pg.execute(
            f"SELECT n_tup_upd, {kind}, n_tup_ins FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND relname = 'parcels'",
            (pg.name,),
        )
        if found and found[0][2]:
            return int(found[0][0]), int(found[0][1])
        time.sleep(0.1)
    raise AssertionError("no statistics for the target table")


def reloptions(pg: PgSchema) -> list[str] | None:
    """The target table's storage options (``None``: the defaults)."""
    found = pg.execute(
        "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'parcels'",
        (pg.name,),
    )
    return found[0][0]


def synced(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> tuple[str, Project]:
    """1,000 parcels, synced once."""
    table = parcels(mysql_db, 1000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    return table, project


def update_first(mysql_db: MySQLDatabase, rows: int, note: str = "CONCAT('u', id)") -> None:
    mysql_db.execute(
        f"UPDATE parcels SET note = {note}, updated_at = updated_at + INTERVAL 1 YEAR "
        f"WHERE id <= {rows}"
    )


def test_changed_rows_are_upserted_in_place(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    _, project = synced(tmp_path, mysql_db, pg)
    pg.execute("ALTER TABLE parcels ADD COLUMN flag INT DEFAULT 7")
    pg.execute("UPDATE parcels SET flag = 1")
    update_first(mysql_db, 100)
    mysql_db.execute("INSERT INTO parcels VALUES (1001, 'new', '2026-02-01')")
    out = project.cli("sync", "pipeline", "-p", "p", check=True)
    assert REFUSED not in out.stderr, out.stderr
    assert target_rows(pg) == source_rows(mysql_db)
    updated, deleted = row_changes(pg)
    assert deleted == 0 and updated >= 1100  # 1000 by hand, 100 by the upsert
    # A target column the files do not carry gets its default, as a re-inserted row would.
    flags = dict(pg.execute("SELECT flag, COUNT(*) FROM parcels GROUP BY flag"))
    assert flags == {1: 900, 7: 101}


def test_a_key_twice_in_one_load_falls_back_to_the_newest_row(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table, project = synced(tmp_path, mysql_db, pg)
    for version in ("first", "second"):  # two staged versions of the same rows, one load
        update_first(mysql_db, 10, f"'{version}'")
        project.backup(table)
    out = project.cli("sync", "pipeline", "-p", "p", check=True)
    assert REFUSED in out.stderr
    assert target_rows(pg) == source_rows(mysql_db)
    assert pg.execute("SELECT DISTINCT note FROM parcels WHERE id <= 10") == [("second",)]


def test_a_target_without_a_unique_key_is_merged_by_delete_and_insert(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    pg.execute("CREATE TABLE parcels (id INT NOT NULL, note VARCHAR(200), updated_at TIMESTAMP)")
    _, project = synced(tmp_path, mysql_db, pg)  # loaded into the table as it is
    pg.execute("INSERT INTO parcels SELECT * FROM parcels WHERE id = 5")  # a key twice
    update_first(mysql_db, 100)
    out = project.cli("sync", "pipeline", "-p", "p", check=True)
    assert REFUSED in out.stderr  # no constraint for ON CONFLICT (id), so no MERGE either
    assert target_rows(pg) == source_rows(mysql_db)  # and no key twice


def test_a_merged_table_keeps_room_on_its_pages_for_the_updates(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    # MERGE_FILLFACTOR: the table the load creates leaves 10 % of each page free, so an
    # upserted row's new version stays on its page (a HOT update: no new index entry).
    _, project = synced(tmp_path, mysql_db, pg)
    assert reloptions(pg) == ["fillfactor=90"]
    mysql_db.execute(
        "UPDATE parcels SET note = CONCAT(REPEAT('u', 160), id), "  # longer: no page's
        "updated_at = updated_at + INTERVAL 1 YEAR WHERE id % 20 = 7"  # slack holds it
    )
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert target_rows(pg) == source_rows(mysql_db)
    assert row_changes(pg, "n_tup_hot_upd") == (50, 50)


def test_an_appended_table_keeps_the_default_fill(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 100)
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "write_mode": "append"}}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert target_rows(pg) == source_rows(mysql_db)
    assert reloptions(pg) is None


def test_merge_and_on_conflict_leave_the_same_rows(pg: PgSchema) -> None:
    # The two statements the upsert runs (MERGE from PostgreSQL 15, ON CONFLICT before
    # it), on the same staged rows: a composite key, a name with a quote in it, a cast
    # staged column and a target column the files lack (set to its default).
    for name in ("a", "b"):
        pg.execute(
            f'CREATE TABLE {name} (k INT, "k""2" TEXT, v TEXT, extra INT DEFAULT 7, '
            'PRIMARY KEY (k, "k""2"))'
        )
        pg.execute(f"INSERT INTO {name} VALUES (1, 'x', 'old', 1), (2, 'y', 'old', 1)")
    pg.execute('CREATE TABLE s (k INT, "k""2" TEXT, v INT)')
    pg.execute("INSERT INTO s VALUES (1, 'x', 10), (3, 'z', 30)")
    cols, pk = ["k", 'k"2', "v"], ["k", 'k"2']
    exprs = ['"k"', '"k""2"', 'CAST("v" AS TEXT)']
    staged = quote_pg_table(pg.name, "s")
    for name, statement in (("a", Upsert.on_conflict), ("b", Upsert.merge)):
        upsert = Upsert(quote_pg_table(pg.name, name), staged, cols, exprs, pk, ["extra"])
        pg.execute(statement(upsert))
    expected = [(1, "x", "10", 7), (2, "y", "old", 1), (3, "z", "30", 7)]
    assert pg.execute("SELECT * FROM a ORDER BY k") == expected
    assert pg.execute("SELECT * FROM b ORDER BY k") == expected
    # Keys only: a staged key already there changes nothing, a new one is inserted.
    for name in ("c", "d"):
        pg.execute(f"CREATE TABLE {name} (k INT PRIMARY KEY)")
        pg.execute(f"INSERT INTO {name} VALUES (1)")
    for name, statement in (("c", Upsert.on_conflict), ("d", Upsert.merge)):
        pg.execute(
            statement(Upsert(quote_pg_table(pg.name, name), staged, ["k"], ['"k"'], ["k"], []))
        )
    assert pg.execute("SELECT k FROM c ORDER BY k") == [(1,), (3,)]
    assert pg.execute("SELECT k FROM d ORDER BY k") == [(1,), (3,)]


def test_merge_takes_over_only_where_on_conflict_has_its_unique_index(pg: PgSchema) -> None:
    # MERGE would update every copy of a key the target holds twice; ON CONFLICT refuses
    # such a target (then the merge deletes and inserts). So MERGE only where the index
    # ON CONFLICT (key) takes as its arbiter exists: unique, immediate, whole-table, on
    # exactly the key columns (in any order; INCLUDE columns are not key columns).
    cases = [
        ("CREATE TABLE t1 (id INT PRIMARY KEY, v INT)", "t1", ["id"], True),
        ("CREATE TABLE t2 (a INT, b INT, PRIMARY KEY (b, a))", "t2", ["a", "b"], True),
        ('CREATE TABLE "q""t" (id INT PRIMARY KEY)', 'q"t', ["id"], True),
        ("CREATE TABLE t3 (id INT, v INT)", "t3", ["id"], False),
        ("CREATE TABLE t4 (a INT, b INT, UNIQUE (a))", "t4", ["a", "b"], False),
        ("CREATE TABLE t5 (a INT, b INT, UNIQUE (a, b))", "t5", ["a"], False),
        ("CREATE TABLE t6 (id INT, UNIQUE (id) DEFERRABLE)", "t6", ["id"], False),
        ("CREATE TABLE t7 (id INT, v INT)", "t7", ["id"], False),
        ("CREATE TABLE t8 (id INT, v INT)", "t8", ["id"], True),
    ]
    for ddl, *_ in cases:
        pg.execute(ddl)
    pg.execute("CREATE UNIQUE INDEX ON t7 (id) WHERE v > 0")  # partial
    pg.execute("CREATE UNIQUE INDEX ON t8 (id) INCLUDE (v)")
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            found = {
                table: PostgresDialect().merges_by_key(cur, quote_pg_table(pg.name, table), pk)
                for _, table, pk, _ in cases
            }
    finally:
        conn.close()
    assert found == {table: merges for _, table, _, merges in cases}
