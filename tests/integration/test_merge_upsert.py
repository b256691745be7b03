"""PostgreSQL merges with one INSERT … ON CONFLICT DO UPDATE, falling back to the sort (#13)."""

from __future__ import annotations

import time
from pathlib import Path

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
    update_first(mysql_db, 100)
    out = project.cli("sync", "pipeline", "-p", "p", check=True)
    assert REFUSED in out.stderr  # no constraint for ON CONFLICT (id)
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
