"""The watermark's own timestamp is seen by the sync and by ``verify`` (issue #28, items 3-4).

A run that reads the rows at its window's newest timestamp before the source's
clock has passed it (plus a second: statements take their NOW() before they
commit) marks that group open, and the next run without a cap reads it again;
``verify`` compares every row at or below the keyset position. Real CLI,
MariaDB and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def create(db: MySQLDatabase, when: str, rows: int = 20) -> str:
    """``b (id, v, updated_at DATETIME(0))``: ``rows`` rows sharing ``updated_at = when``."""
    db.execute(
        "CREATE TABLE b (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, "
        "updated_at DATETIME NOT NULL, KEY ix (updated_at, id))"
    )
    db.execute(f"INSERT INTO b SELECT seq, 0, {when} FROM seq_1_to_{rows}")
    return f"{db.name}.b"


def target_v(pg: PgSchema) -> dict[int, int]:
    return dict(pg.execute("SELECT id, v FROM b"))  # type: ignore[arg-type]


def test_a_same_second_update_below_the_last_key_is_read_by_the_next_run(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Row 3 changes within the second the newest synced rows carry (``DATETIME(0)``).

    ``(ts > T OR (ts = T AND id > 20))`` never reads it; the open group is read
    again. The group's second lies ahead of the source's clock, so the test does
    not depend on how fast the CLI starts.
    """
    table = create(mysql_db, "NOW() + INTERVAL 30 SECOND")
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.sync(table)
    state = project.watermark(table)["mysql_state"]
    assert (state["last_id"], state["group_open"]) == (20, True)
    assert project.verify(table)[0] == 0
    mysql_db.execute("UPDATE b SET v = 99 WHERE id = 3")  # updated_at stays in that second
    code, result = project.verify(table)
    assert (code, result["different"]["keys"]) == (4, [{"id": 3}])  # the boundary is compared
    again = project.sync(table)
    assert again["rows_extracted"] == 20  # the open group, read again
    assert target_v(pg)[3] == 99
    assert project.verify(table)[0] == 0


def test_a_closed_group_is_not_read_again(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Rows whose second the source's clock has long passed: the next run reads nothing."""
    table = create(mysql_db, "'2025-01-01 00:00:00'")
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.sync(table)
    assert project.watermark(table)["mysql_state"]["group_open"] is False
    assert project.sync(table)["rows_extracted"] == 0
    assert not project.watermark(table)["backup_s3_files"]


def test_capped_runs_inside_an_open_group_move_on_then_read_it_whole(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """A ``--limit`` smaller than the open group resumes exactly (never stuck at its start);
    the first run without a cap reads the group again from its first row."""
    table = create(mysql_db, "'2025-01-01 00:00:00'", rows=30)
    cfg = {**HYBRID, "processing": {"batch_size": 4}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.sync(table)  # the first run (in primary-key order)
    mysql_db.execute("UPDATE b SET updated_at = NOW() + INTERVAL 30 SECOND")
    ids = []
    for _ in range(5):
        project.sync(table, "--limit", "7")
        ids.append(project.watermark(table)["mysql_state"]["last_id"])
    assert ids == [7, 14, 21, 28, 30]
    mysql_db.execute("UPDATE b SET v = 5 WHERE id = 2")
    assert project.sync(table)["rows_extracted"] == 30
    assert target_v(pg) == {i: 5 if i == 2 else 0 for i in range(1, 31)}


def test_a_table_whose_rows_share_one_timestamp_is_compared_and_repaired(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """A dump-loaded table: every row at one old timestamp, a row changed without touching it.

    ``verify`` compares all of them (never "equal" over 0 rows), finds the
    change and ``--repair`` mends it.
    """
    table = create(mysql_db, "'2024-05-01 08:00:00'", rows=500)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.sync(table)
    mysql_db.execute("INSERT INTO b VALUES (501, 0, NOW() + INTERVAL 1 HOUR)")
    text = project.cli("verify", "-p", "p", "-t", table)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "compared 500 rows up to 2024-05-01 08:00:00 / id 500; 1 newer rows" in text.stdout
    mysql_db.execute("UPDATE b SET v = 7 WHERE id = 250")
    assert project.sync(table)["rows_extracted"] == 1  # the new row only: 250 is not seen
    code, result = project.verify(table)
    assert (code, result["different"]["keys"]) == (4, [{"id": 250}])
    assert result["source_rows"] == 501
    code, result = project.verify(table, "--repair")
    assert (code, result["status"]) == (0, "repaired")
    assert target_v(pg)[250] == 7
    assert project.verify(table)[0] == 0


def test_a_group_left_open_stays_open_through_capped_runs_inside_it(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Rows of the group an earlier run read while it was open may have changed since: a capped
    run that resumes inside it keeps it open (its own clock says closed), so the first run
    without a cap reads it again from its first row."""
    table = create(mysql_db, "'2025-02-01 00:00:00'", rows=30)
    cfg = {**HYBRID, "processing": {"batch_size": 4}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.sync(table)
    path = project.watermark_path(table)
    doc = json.loads(path.read_text())
    doc["mysql_state"].update(last_id=10, group_open=True)  # as a capped run left it, open
    path.write_text(json.dumps(doc))
    project.sync(table, "--limit", "5")
    state = project.watermark(table)["mysql_state"]
    assert (state["last_id"], state["group_open"]) == (15, True)
    assert project.sync(table)["rows_extracted"] == 30  # the whole group, read again


def test_an_append_table_never_reads_an_open_group_again(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Re-read rows would be appended a second time: an append table resumes exactly."""
    table = create(mysql_db, "NOW() + INTERVAL 30 SECOND")
    project = make_project(tmp_path, mysql_db, {table: {**HYBRID, "write_mode": "append"}}, pg=pg)
    project.sync(table)
    assert project.watermark(table)["mysql_state"]["group_open"] is True
    assert project.sync(table)["rows_extracted"] == 0
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM b") == [(20, 20)]
