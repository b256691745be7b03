"""A corrupt staged file is quarantined, not a dead end (#12 item 5).

The load sets the file aside, loads the table's other files and exits 4 naming
the file and ``verify --repair``, which re-extracts the rows and releases it.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pyarrow.parquet as pq

from src.utils.naming import split_table_name
from src.utils.stage_keys import watermark_key
from tests.integration.test_faults import HYBRID, errors, parcels
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import SCOPE, Project, make_project
from tests.support.s3_server import S3Bucket


def source_rows(db: MySQLDatabase) -> tuple[int, int]:
    rows = db.execute("SELECT id, note FROM parcels")
    return len(rows), sum(zlib.crc32(f"{i}|{n}".encode()) for i, n in rows)


def target_rows(pg: PgSchema) -> tuple[int, int]:
    rows = pg.execute("SELECT id, note FROM parcels")
    assert len(rows) == len({i for i, _ in rows}), "duplicate keys in the target"
    return len(rows), sum(zlib.crc32(f"{i}|{n}".encode()) for i, n in rows)


def staged_files(project: Project, table: str) -> list[Path]:
    return [Path(uri) for uri in project.watermark(table)["backup_s3_files"]]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_pages(path: Path) -> None:
    """Zero everything between the magic and the footer: the footer still reads."""
    data = path.read_bytes()
    footer_len = int.from_bytes(data[-8:-4], "little")
    end = len(data) - footer_len - 8
    path.write_bytes(data[:4] + bytes(end - 4) + data[end:])


def test_truncated_file_is_quarantined_the_rest_loads_and_verify_repair_mends_it(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 5000)
    cfg = {**HYBRID, "processing": {"batch_size": 500}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.backup(table)
    files = staged_files(project, table)
    assert len(files) == 10
    truncate(files[2])
    damage_pages(files[6])

    result = project.cli("sync", "pipeline", "-p", "p", "--json-output", "-")
    assert result.returncode == 4, result.stderr
    (line,) = errors(result.stderr)
    assert str(files[2]) in line and str(files[6]) in line, line
    assert f"verify -p p -t {table} --repair" in line and "other 8 files were loaded" in line
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["table_results"][table]["status"] == "failed"
    assert target_rows(pg)[0] == 4000  # every readable file loaded
    wm = project.watermark(table)
    assert wm["backup_s3_files"] == []
    assert [q["file"] for q in wm["quarantined_s3_files"]] == [str(files[2]), str(files[6])]
    assert wm["quarantined_s3_files"][0]["below"]["last_timestamp"]

    # Kept by s3clean until released; later runs succeed and remind.
    cleaned = project.cli("s3clean", "clean", "-t", table, "-p", "p", "--force", check=True)
    assert "Kept 2 files quarantined" in cleaned.stdout, cleaned.stdout
    assert files[2].exists() and files[6].exists()
    again = project.cli("sync", "pipeline", "-p", "p", check=True)
    assert "quarantined staged files await re-extraction" in again.stderr
    assert project.watermark(table)["redshift_state"]["status"] == "success"  # nothing staged
    listed = project.cli("watermark", "list", "-p", "p", "--json", check=True)
    assert json.loads(listed.stdout)[0]["files_quarantined"] == 2, listed.stdout

    repaired = project.cli("verify", "-p", "p", "-t", table, "--repair", "--json-output", "-")
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)["tables"][table]
    assert report["status"] == "repaired" and report["quarantine_released"] == 2
    assert target_rows(pg) == source_rows(mysql_db)
    assert "quarantined_s3_files" not in project.watermark(table)
    project.cli("s3clean", "clean", "-t", table, "-p", "p", "--force", check=True)
    assert not files[2].exists() and not files[6].exists()  # orphans once released


def test_quarantine_is_released_only_by_a_verify_that_covers_its_rows(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 2000)  # one row a second
    cfg = {**HYBRID, "processing": {"batch_size": 500}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.backup(table)
    truncate(staged_files(project, table)[-1])  # its last row is at the watermark itself
    assert project.cli("sync", "pipeline", "-p", "p").returncode == 4
    # Rows changed in the last 1000 s are not compared: the file's rows are not covered.
    project.cli("verify", "-p", "p", "-t", table, "--repair", "--grace", "1000", check=True)
    assert len(project.watermark(table)["quarantined_s3_files"]) == 1
    assert target_rows(pg)[0] < 2000
    # Compared up to the watermark; the row at it (never compared) is re-extracted by key.
    project.cli("verify", "-p", "p", "-t", table, "--repair", check=True)
    assert "quarantined_s3_files" not in project.watermark(table)
    assert target_rows(pg) == source_rows(mysql_db)


def test_a_snapshot_with_a_corrupt_file_never_replaces_the_target(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 3000)
    cfg = {"cdc_strategy": "full_sync", "full_sync_mode": "replace"}
    cfg["processing"] = {"batch_size": 1000}  # type: ignore[assignment]
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    mysql_db.execute("DELETE FROM parcels WHERE id > 2500")
    project.backup(table)
    truncate(staged_files(project, table)[0])
    result = project.cli("sync", "pipeline", "-p", "p", "--redshift-only")
    assert result.returncode == 4, result.stderr
    (line,) = errors(result.stderr)
    assert "the target was not replaced" in line, line
    assert target_rows(pg)[0] == 3000  # the previous snapshot, whole
    project.cli("sync", "pipeline", "-p", "p", check=True)  # a new snapshot
    assert target_rows(pg) == source_rows(mysql_db)
    assert "quarantined_s3_files" not in project.watermark(table)


def flip_bytes(path: Path, at: int, count: int = 64) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + count] = bytes(b ^ 0xFF for b in data[at : at + count])
    path.write_bytes(bytes(data))


def quarantined_then_repaired(
    project: Project, table: str, bad: Path, reason: str, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """One bad file of ten: quarantined with ``reason``, the rest load, ``--repair`` mends it."""
    result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 4, result.stderr
    (line,) = errors(result.stderr)
    assert str(bad) in line and reason in line, line
    assert target_rows(pg)[0] == 4500  # the other nine files
    repaired = project.cli("verify", "-p", "p", "-t", table, "--repair", "--json-output", "-")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["tables"][table]["quarantine_released"] == 1
    assert target_rows(pg) == source_rows(mysql_db)


def test_a_changed_footer_is_caught_by_the_digest_recorded_at_staging(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """A footer that still parses (a digit of its recorded position changed): no page CRC
    covers it; the SHA-256 recorded in the watermark when the file was staged does."""
    table = parcels(mysql_db, 5000)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 500}}}, pg=pg
    )
    project.backup(table)
    bad = staged_files(project, table)[4]
    data = bytearray(bad.read_bytes())
    at = data.rindex(b'"last_pk": ') + len(b'"last_pk": ')  # the first pass's position
    data[at] = ord("1") if data[at] != ord("1") else ord("2")  # another digit: still JSON
    bad.write_bytes(bytes(data))
    quarantined_then_repaired(project, table, bad, "SHA-256", mysql_db, pg)


def test_flipped_bytes_in_a_data_page_fail_its_checksum(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """8 bytes flipped in the middle of the ``id`` column's page: snappy still decodes it (other
    ids, silently, without the CRC); the page's CRC catches it, also for a file whose digest
    was not recorded (staged by an earlier release)."""
    table = parcels(mysql_db, 5000)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 500}}}, pg=pg
    )
    project.backup(table)
    bad = staged_files(project, table)[4]
    chunk = pq.ParquetFile(bad).metadata.row_group(0).column(0)
    flip_bytes(bad, chunk.data_page_offset + chunk.total_compressed_size // 2, 8)

    doc_path = project.stage_dir / watermark_key(SCOPE, *split_table_name(table), "pg")
    doc = json.loads(doc_path.read_text())
    del doc["file_checks"]  # as an earlier release staged it
    doc_path.write_text(json.dumps(doc))
    quarantined_then_repaired(project, table, bad, "unreadable data", mysql_db, pg)


def test_a_staged_file_deleted_before_its_load_is_quarantined(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    """Not a blocker for the table's other files (exit 5 before): the rest loads, exit 4."""
    table = parcels(mysql_db, 5000)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 500}}}, pg=pg
    )
    project.backup(table)
    bad = staged_files(project, table)[4]
    bad.unlink()
    quarantined_then_repaired(project, table, bad, "missing from", mysql_db, pg)


def test_a_staged_object_replaced_on_s3_is_caught_by_its_etag(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    """On S3 the load compares the listing's ETag with the one the upload got, before it
    reads a byte (a Redshift COPY never passes the bytes through the tool)."""
    table = parcels(mysql_db, 5000)
    cfg = {**HYBRID, "processing": {"batch_size": 500}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg, bucket=s3_bucket)
    project.backup(table)
    uri = project.watermark(table)["backup_s3_files"][4]
    key = uri.split("/", 3)[3]
    client = s3_bucket.client
    data = bytearray(client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read())
    at = data.rindex(b'"last_pk": ') + len(b'"last_pk": ')
    data[at] = ord("1") if data[at] != ord("1") else ord("2")  # still a whole Parquet file
    client.put_object(Bucket=s3_bucket.name, Key=key, Body=bytes(data))
    result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 4, result.stderr
    (line,) = errors(result.stderr)
    assert uri in line and "changed since it was staged (ETag" in line, line
    assert target_rows(pg)[0] == 4500
