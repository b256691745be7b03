"""What every sync checks (verify_after_load) and --detect-deletes, in the run report (#11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from tests.integration.test_verify import HYBRID, parcels
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import ROOT, Project, make_project

SCHEMA = json.loads((ROOT / "docs" / "run_report.schema.json").read_text())


def sync(project: Project, *extra: str) -> tuple[int, dict[str, Any]]:
    result = project.cli("sync", "pipeline", "-p", "p", "--json-output", "-", *extra)
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    return result.returncode, report


def more_rows(db: MySQLDatabase, first: int, last: int) -> None:
    db.execute(
        f"INSERT INTO parcels SELECT seq, 'more', 1, 1, '2025-02-01' + INTERVAL seq SECOND "
        f"FROM seq_{first}_to_{last}"
    )


def lose_row(pg: PgSchema, key: int, event: str) -> None:
    """A trigger (``lose_one``) that makes the target skip the row ``key`` on ``event``."""
    pg.execute(
        "CREATE FUNCTION lose_one() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN IF NEW.id = {key} THEN RETURN NULL; END IF; RETURN NEW; END $$"
    )
    pg.execute(
        f"CREATE TRIGGER lose_one BEFORE {event} ON parcels FOR EACH ROW "
        "EXECUTE FUNCTION lose_one()"
    )


def test_every_sync_counts_the_window_it_loaded(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 200)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    code, report = sync(project)
    check = report["table_results"][table]["verification"]
    assert code == 0 and check["status"] == "equal" and check["method"] == "counts"
    assert check["source_rows"] == check["target_rows"] == 199  # below the new watermark
    more_rows(mysql_db, 1001, 1050)
    code, report = sync(project)
    check = report["table_results"][table]["verification"]
    assert (check["source_rows"], check["compared_up_to"]["from"]) == (50, "2025-01-01T00:03:20")
    _, report = sync(project)  # nothing new: nothing to check
    assert report["table_results"][table]["verification"] is None


def test_the_window_count_finds_a_row_the_load_lost(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards verify._counts: a window of dense keys is counted within the source's keys.

    A trigger makes the target drop one row of the next window as it is merged, and
    the target holds a row of the window's time whose key lies past every source key
    (a row deleted at the source). Counting the whole window, the two cancel out;
    counting within the source's keys (appended rows: dense), the lost row shows.
    """
    table = parcels(mysql_db, 100)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project)[0] == 0
    lose_row(pg, 110, "INSERT")
    pg.execute("INSERT INTO parcels VALUES (5000, 'gone', 1, 1, '2025-02-01 00:01:50')")
    more_rows(mysql_db, 101, 120)
    code, report = sync(project)
    result = report["table_results"][table]
    check = result["verification"]
    assert code == 0 and check["method"] == "counts" and check["status"] == "different", check
    assert check["target_rows"] == check["source_rows"] - 1 == 19
    assert "verify_after_load" in result["warnings"][0]


def test_a_small_window_of_spread_keys_is_counted_by_its_keys(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards verify._counts' keyed count: a window of spread keys at most a 1000th of the
    table is counted in the target by its keys (no scan of the whole target), and a row
    the load lost still shows."""
    table = parcels(mysql_db, 20_000)
    mysql_db.execute("ANALYZE TABLE parcels")  # the source's row estimate sizes the rule
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project)[0] == 0
    lose_row(pg, 10007, "UPDATE")
    # 16 rows spread over the keys 7 … 18757: not dense, and 17 × 1,000 <= 20,000.
    mysql_db.execute(
        "UPDATE parcels SET note = 'changed', updated_at = '2025-03-01' + INTERVAL id SECOND "
        "WHERE id % 1250 = 7"
    )
    code, report = sync(project)
    check = report["table_results"][table]["verification"]
    assert code == 0 and check["method"] == "counts" and check["status"] == "different", check
    assert check["target_rows"] == check["source_rows"] - 1 >= 14, check
    keyed = f"the target counted the window's {check['source_rows']} keys"
    assert keyed in " ".join(check["notes"]), check
    pg.execute("DROP TRIGGER lose_one ON parcels")
    mysql_db.execute(
        "UPDATE parcels SET updated_at = '2025-04-01' + INTERVAL id SECOND WHERE id % 1250 = 7"
    )
    code, report = sync(project)
    check = report["table_results"][table]["verification"]
    assert code == 0 and check["status"] == "equal" and check["target_rows"] >= 15, check
    assert "keys" in " ".join(check["notes"]), check


def test_a_window_without_source_rows_does_not_scan_the_target(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Guards verify._counts' empty window: when every row a sync loaded shares the new
    watermark's timestamp (one bulk UPDATE), no source row lies in the window and the
    target is not counted. A target row of the window's time that the source lacks (a
    row deleted at the source, for --detect-deletes) shows only if the target is scanned.
    """
    table = parcels(mysql_db, 100)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project)[0] == 0
    mysql_db.execute(
        "UPDATE parcels SET note = 'bulk', updated_at = '2025-03-01' WHERE id % 10 = 3 OR id = 100"
    )
    pg.execute("INSERT INTO parcels VALUES (5000, 'gone', 1, 1, '2025-02-01')")
    code, report = sync(project)
    result = report["table_results"][table]
    check = result["verification"]
    assert code == 0 and result["rows_loaded"] == 11, result
    assert (check["status"], check["source_rows"], check["target_rows"]) == ("equal", 0, 0), check
    assert "no key to count in the target" in " ".join(check["notes"]), check
    assert pg.execute("SELECT COUNT(*) FROM parcels WHERE note = 'bulk'") == [(11,)]


def test_a_window_that_differs_warns_or_fails(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 100)
    cfg = HYBRID | {"verify_after_load": "checksum"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    assert sync(project)[0] == 0
    more_rows(mysql_db, 1001, 1020)
    # A row only the target has, inside the window the next sync loads.
    pg.execute("INSERT INTO parcels VALUES (9999, 'ghost', 1, 1, '2025-02-01 00:10:00')")
    code, report = sync(project)
    result = report["table_results"][table]
    assert code == 0 and result["status"] == "success"
    assert result["verification"]["extra_in_target"]["keys"] == [{"id": 9999}]
    assert "verify_after_load" in result["warnings"][0]
    project.cli(
        "watermark", "set", "-p", "p", "-t", table, "--timestamp", "2025-02-01 00:00:00", check=True
    )
    strict = cfg | {"verify_after_load_fails": True}
    project = make_project(tmp_path, mysql_db, {table: strict}, pg=pg)
    code, report = sync(project)
    assert code == 4, report
    assert "verify_after_load" in report["table_results"][table]["error_message"]


def test_detect_deletes_removes_rows_gone_from_mysql(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 300)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    assert sync(project)[0] == 0
    mysql_db.execute("DELETE FROM parcels WHERE id IN (7, 8)")
    code, report = sync(project, "--detect-deletes")
    deletes = report["table_results"][table]["deletes"]
    assert code == 0 and deletes["repair"]["rows_deleted"] == 2, deletes
    assert pg.execute("SELECT COUNT(*) FROM parcels WHERE id IN (7, 8)")[0][0] == 0
    mysql_db.execute("DELETE FROM parcels WHERE id BETWEEN 100 AND 130")  # > 5 %
    code, report = sync(project, "--detect-deletes")
    result = report["table_results"][table]
    # A refusal fails the table (a scheduler must see it), with the count and the way on.
    assert code == 4 and "--detect-deletes refused: 31 rows" in result["error_message"], result
    assert "--repair --force" in result["error_message"]
    assert pg.execute("SELECT COUNT(*) FROM parcels")[0][0] == 298  # nothing deleted
