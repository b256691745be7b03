"""The full sync (backup + load) into PostgreSQL through the CLI (SPEC §6)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.test_mysql_types import create_every_type
from tests.support.databases import MySQLDatabase, PgSchema, closed_port
from tests.support.pipelines import Project, make_project
from tests.support.s3_server import S3Bucket

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def create_orders(db: MySQLDatabase, rows: int, table: str = "orders") -> str:
    db.execute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY, amount DECIMAL(12,2), note VARCHAR(40), "
        "updated_at DATETIME(6) NOT NULL, KEY ix (updated_at, id))"
    )
    db.execute(
        f"INSERT INTO {table} SELECT seq, seq * 1.5, CONCAT('n', seq), "
        f"'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}"
    )
    return f"{db.name}.{table}"


def sync(project: Project, table: str, *extra: str) -> str:
    return project.cli("sync", "pipeline", "-p", "p", "-t", table, *extra, check=True).stderr


def checksum_mysql(db: MySQLDatabase, table: str = "orders") -> tuple[int, str]:
    rows = db.execute(
        f"SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, amount, note))) FROM {table}"
    )[0]
    return int(rows[0]), str(rows[1])


def checksum_pg(pg: PgSchema, table: str = "orders") -> tuple[int, str]:
    # Same checksum as MariaDB's, computed in Python over the target rows.
    import zlib

    rows = pg.execute(f"SELECT id, amount, note FROM {table}")
    total = sum(zlib.crc32("|".join(str(v) for v in r).encode()) for r in rows)
    return len(rows), str(total)


def test_every_type_lands_with_exact_values(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table, cfg = create_every_type(mysql_db)
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    got = {r[0]: r for r in pg.execute("SELECT * FROM every_type ORDER BY id")}
    names = [
        r[0]
        for r in pg.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'every_type' ORDER BY ordinal_position",
            (pg.name,),
        )
    ]
    row = dict(zip(names, got[1], strict=True))
    assert row["biu"] == Decimal("18446744073709551615")
    assert row["dec38"] == Decimal("9999999999999999999999999999.9999999999")
    assert row["dt6"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert row["vc"] == "😀" * 8
    assert row["ch"] == "😀" * 4
    assert row["tm6"] == "838:59:59.000001"
    assert bytes(row["bl"]) == bytes(range(256))
    assert row["b1"] is True and row["b10"] == 1023
    assert row["js"] == {"k": [1, 2, "é"]}
    assert len(row["lt"]) == 70000  # PostgreSQL's TEXT: Redshift's 65,535 bytes do not apply
    low = dict(zip(names, got[2], strict=True))
    assert low["vc"] == "ab"  # NUL stripped
    assert low["tm"] == "-838:59:59"
    assert low["dec38"] == Decimal("-9999999999999999999999999999.9999999999")
    nulls = dict(zip(names, got[3], strict=True))
    assert all(v is None for k, v in nulls.items() if k != "id")
    types = dict(
        pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'every_type'",
            (pg.name,),
        )
    )
    assert types["biu"] == "numeric" and types["js"] == "jsonb" and types["bl"] == "bytea"


def test_updates_and_inserts_merge_exactly(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 5000)
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 700}}}, pg=pg
    )
    sync(project, table)
    assert checksum_pg(pg) == checksum_mysql(mysql_db)
    rng = random.Random(7)
    changed = ", ".join(str(i) for i in rng.sample(range(1, 5001), 1000))
    mysql_db.execute(
        "UPDATE orders SET amount = amount + 1, note = CONCAT('u', id), "
        f"updated_at = '2026-01-01' + INTERVAL id MICROSECOND WHERE id IN ({changed})"
    )
    mysql_db.execute(
        "INSERT INTO orders SELECT 5000 + seq, seq, 'new', '2026-02-01' FROM seq_1_to_500"
    )
    sync(project, table)
    assert checksum_pg(pg) == checksum_mysql(mysql_db)
    dupes = pg.execute("SELECT id FROM orders GROUP BY id HAVING COUNT(*) > 1")
    assert dupes == []
    wm = project.watermark(table)
    assert wm["backup_s3_files"] == []
    assert wm["redshift_state"]["total_rows"] == wm["mysql_state"]["total_rows"] == 6500


def test_append_table_gets_each_row_once(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute("CREATE TABLE events (id INT PRIMARY KEY, kind VARCHAR(10))")
    mysql_db.execute("INSERT INTO events SELECT seq, 'a' FROM seq_1_to_1000")
    table = f"{mysql_db.name}.events"
    cfg = {"cdc_strategy": "id_only", "cdc_id_column": "id", "write_mode": "append"}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    mysql_db.execute("INSERT INTO events SELECT 1000 + seq, 'b' FROM seq_1_to_300")
    sync(project, table)
    sync(project, table)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM events") == [(1300, 1300)]


def test_crash_after_commit_before_watermark_loads_nothing_twice(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 2000)
    cfg = {**HYBRID, "write_mode": "append"}  # append: a second load would duplicate
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.env["BACKUP_TEST_FAULT"] = "after_load_commit"
    crashed = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert crashed.returncode == -9
    assert pg.execute("SELECT COUNT(*) FROM orders") == [(2000,)]
    assert len(project.watermark(table)["backup_s3_files"]) == 1  # the watermark lags
    del project.env["BACKUP_TEST_FAULT"]
    out = sync(project, table)
    assert "repaired without loading again" in out
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(2000, 2000)]
    wm = project.watermark(table)
    assert wm["backup_s3_files"] == [] and len(wm["processed_s3_files"]) == 1


def test_crash_after_upload_before_watermark_leaves_an_orphan_never_loaded(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 1000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.env["BACKUP_TEST_FAULT"] = "after_upload"
    assert project.cli("sync", "pipeline", "-p", "p", "-t", table).returncode == -9
    del project.env["BACKUP_TEST_FAULT"]
    sync(project, table)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(1000, 1000)]
    files = sorted(project.stage_dir.rglob("*.parquet"))
    assert len(files) == 2  # the orphan stays for s3clean; it was never recorded or loaded
    assert len(project.watermark(table)["processed_s3_files"]) == 1


def test_strays_and_sibling_prefixes_are_never_loaded(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    orders = create_orders(mysql_db, 100)
    archive = create_orders(mysql_db, 50, table="orders_archive")
    project = make_project(tmp_path, mysql_db, {orders: HYBRID, archive: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "-t", archive, "--backup-only", check=True)
    project.cli("sync", "pipeline", "-p", "p", "-t", orders, "--backup-only", check=True)
    staged = Path(project.watermark(orders)["backup_s3_files"][0])
    stray = pa.table({"id": [999999], "amount": [Decimal("1.00")], "note": ["stray"]})
    pq.write_table(stray, staged.parent / "stray.parquet")
    sync(project, orders, "--redshift-only")
    assert pg.execute("SELECT COUNT(*), MAX(id) FROM orders") == [(100, 100)]
    assert pg.execute(
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = 'orders_archive'",
        (pg.name,),
    ) == [(0,)]


def test_full_sync_replace_twice_leaves_the_table_full(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 300)
    cfg = {"cdc_strategy": "full_sync", "full_sync_mode": "replace", "primary_key": ["id"]}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    sync(project, table)
    mysql_db.execute("DELETE FROM orders WHERE id > 250")
    sync(project, table)
    sync(project, table)
    assert pg.execute("SELECT COUNT(*), MAX(id) FROM orders") == [(250, 250)]


def test_redshift_only_never_needs_mysql(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 400)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "-t", table, "--backup-only", check=True)
    broken = make_project(
        tmp_path, mysql_db, {table: HYBRID}, pg=pg, source_extra={"port": closed_port()}
    )
    assert broken.cli("sync", "pipeline", "-p", "p", "-t", table).returncode == 2
    sync(broken, table, "--redshift-only")
    assert pg.execute("SELECT COUNT(*) FROM orders") == [(400,)]


def test_missing_target_schema_is_a_load_error_and_keeps_the_staged_files(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 300)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    missing = f"{pg.name}_later"
    path = project.config_dir / "connections.yml"
    path.write_text(path.read_text().replace(f"schema: {pg.name}", f"schema: {missing}"))
    out = project.cli("sync", "pipeline", "-p", "p", "-t", table)
    assert out.returncode == 6, out.stderr
    assert f"creating the load ledger {missing}.s3_backup_load_ledger" in out.stderr
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr
    assert len(project.watermark(table)["backup_s3_files"]) == 1  # staged, not lost
    pg.execute(f'CREATE SCHEMA "{missing}"')
    try:
        sync(project, table, "--redshift-only")
        assert pg.execute(f'SELECT COUNT(*) FROM "{missing}".orders') == [(300,)]
    finally:
        pg.execute(f'DROP SCHEMA "{missing}" CASCADE')


@pytest.mark.slow
def test_1200_staged_files_load_from_s3(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table = create_orders(mysql_db, 1200)
    cfg: dict[str, Any] = {"cdc_strategy": "id_only", "cdc_id_column": "id"}
    project = make_project(
        tmp_path, mysql_db, {table: cfg}, pg=pg, bucket=s3_bucket, backup_batch_size=1
    )
    project.cli("sync", "pipeline", "-p", "p", "-t", table, "--backup-only", check=True)
    assert len(project.watermark(table)["backup_s3_files"]) == 1200
    sync(project, table, "--redshift-only")
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(1200, 1200)]
    assert pg.execute("SELECT COUNT(*) FROM s3_backup_load_ledger") == [(1200,)]


def test_schema_evolution_adds_columns_widens_and_casts(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 100)
    # An existing target with other, compatible types: loaded with explicit casts.
    pg.execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DOUBLE PRECISION, note TEXT, "
        "updated_at TIMESTAMP)"
    )
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    sync(project, table)
    assert pg.execute("SELECT amount, note FROM orders WHERE id = 3") == [(4.5, "n3")]
    # The source gains a column and a longer VARCHAR.
    mysql_db.execute("ALTER TABLE orders ADD COLUMN city VARCHAR(30), MODIFY note VARCHAR(80)")
    mysql_db.execute(
        "UPDATE orders SET city = 'Zürich', note = REPEAT('x', 80), updated_at = '2026-01-01' "
        "WHERE id = 7"
    )
    sync(project, table)
    assert pg.execute("SELECT city, LENGTH(note) FROM orders WHERE id = 7") == [("Zürich", 80)]
    assert pg.execute("SELECT COUNT(*), COUNT(city) FROM orders") == [(100, 1)]
    columns = dict(pg.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'orders'", (pg.name,)))  # fmt: skip
    assert columns["city"] == "character varying"
    assert columns["id"] == "bigint"  # the operator's type is kept


def test_varchar_widening_on_a_table_we_created(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 10)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    sync(project, table)
    assert pg.execute(
        "SELECT character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'orders' AND column_name = 'note'",
        (pg.name,),
    ) == [(40,)]
    mysql_db.execute("ALTER TABLE orders MODIFY note VARCHAR(120)")
    mysql_db.execute("UPDATE orders SET note = REPEAT('é', 120), updated_at = '2027-01-01'")
    sync(project, table)
    assert pg.execute("SELECT COUNT(*) FROM orders WHERE note = REPEAT('é', 120)") == [(10,)]


def test_first_load_with_duplicate_keys_falls_back_to_merge(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 1000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    mysql_db.execute(
        "UPDATE orders SET note = 'newest', updated_at = '2026-01-01' + INTERVAL id MICROSECOND "
        "WHERE id <= 100"
    )
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    # Both files load at once into an empty table: ids 1..100 appear twice.
    out = sync(project, table, "--redshift-only")
    assert "duplicate keys in the files: merging through a staging table" in out
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(1000, 1000)]
    assert pg.execute("SELECT COUNT(*) FROM orders WHERE note = 'newest'") == [(100,)]


def test_first_load_without_duplicates_copies_straight_into_the_target(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = create_orders(mysql_db, 1000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    out = sync(project, table)
    assert "merging through a staging table" not in out
    assert pg.execute("SELECT COUNT(*) FROM orders") == [(1000,)]
