"""The backup stage through the CLI against real MariaDB (SPEC §5, §8)."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from tests.support.databases import MySQLDatabase
from tests.support.pipelines import make_project
from tests.support.s3_server import S3Bucket
from tests.support.sshd import SshdServer

ROOT = Path(__file__).resolve().parents[2]
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
TS_ONLY = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"}
ID_ONLY = {"cdc_strategy": "id_only", "cdc_id_column": "id"}


def create_events(db: MySQLDatabase, table: str = "events") -> str:
    db.execute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY AUTO_INCREMENT, "
        "updated_at DATETIME(6) NULL, v VARCHAR(20), KEY ix (updated_at, id))"
    )
    return f"{db.name}.{table}"


def insert_rows(db: MySQLDatabase, rows: list[tuple[Any, ...]], table: str = "events") -> None:
    db.executemany(f"INSERT INTO {table} (id, updated_at, v) VALUES (%s, %s, %s)", rows)


def staged_ids(project: Any, table: str) -> list[int]:
    staged = project.staged_table(table)
    return [] if staged.num_rows == 0 else staged.column("id").to_pylist()


@pytest.mark.parametrize("strategy", [HYBRID, TS_ONLY], ids=["hybrid", "timestamp_only"])
def test_ten_thousand_equal_timestamps_across_chunks(
    tmp_path: Path, mysql_db: MySQLDatabase, strategy: dict[str, str]
) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-03-01 10:00:00.123456', 'x' FROM seq_1_to_10000"
    )
    cfg = {**strategy, "processing": {"batch_size": 999}}
    project = make_project(tmp_path, mysql_db, {table: cfg})
    project.backup(table)
    ids = staged_ids(project, table)
    assert len(ids) == 10_000
    assert sorted(ids) == list(range(1, 10_001))
    # Nothing new: a second run stages nothing and keeps the position.
    before = project.watermark(table)["mysql_state"]
    project.backup(table)
    after = project.watermark(table)
    assert after["mysql_state"]["total_rows"] == 10_000
    assert after["mysql_state"]["last_timestamp"] == before["last_timestamp"]
    assert len(staged_ids(project, table)) == 10_000


@pytest.mark.parametrize("strategy", [HYBRID, TS_ONLY], ids=["hybrid", "timestamp_only"])
@pytest.mark.parametrize("chunk", [1, 2])
def test_microsecond_boundaries_split_across_chunks(
    tmp_path: Path, mysql_db: MySQLDatabase, strategy: dict[str, str], chunk: int
) -> None:
    table = create_events(mysql_db)
    insert_rows(
        mysql_db,
        [
            (1, "2025-03-01 10:00:00.000001", "a"),
            (2, "2025-03-01 10:00:00.000002", "b"),
            (3, "2025-03-01 10:00:00.000002", "c"),
            (4, "2025-03-01 10:00:00.000003", "d"),
        ],
    )
    project = make_project(
        tmp_path, mysql_db, {table: {**strategy, "processing": {"batch_size": chunk}}}
    )
    project.backup(table)
    assert sorted(staged_ids(project, table)) == [1, 2, 3, 4]
    assert project.watermark(table)["mysql_state"]["last_timestamp"] == "2025-03-01T10:00:00.000003"


@pytest.mark.parametrize("lookback", [0, 3600])
def test_late_commit_needs_lookback(tmp_path: Path, mysql_db: MySQLDatabase, lookback: int) -> None:
    table = create_events(mysql_db)
    insert_rows(mysql_db, [(i, f"2025-03-01 10:00:0{i}", "v") for i in range(1, 6)])
    cfg = {**HYBRID, "lookback_seconds": lookback, "write_mode": "merge"}
    project = make_project(tmp_path, mysql_db, {table: cfg})
    project.backup(table)
    # A transaction that started earlier commits now, with an older timestamp.
    insert_rows(mysql_db, [(100, "2025-03-01 10:00:02.5", "late")])
    project.backup(table)
    ids = staged_ids(project, table)
    if lookback:
        assert 100 in ids  # re-read window catches it (the merge absorbs the overlap)
    else:
        assert 100 not in ids


def test_a_lookback_run_never_moves_the_watermark_back(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    """Guards ``advances`` in the backup stage: re-read rows behind the watermark stay behind it.

    A lookback run stopped by ``--limit`` has read only rows before the stored
    position; recording their position would move the watermark backwards.
    """
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-03-01' + INTERVAL seq SECOND, 'v' FROM seq_1_to_100"
    )
    project = make_project(tmp_path, mysql_db, {table: HYBRID})
    project.backup(table)
    before = project.watermark(table)["mysql_state"]
    assert before["last_timestamp"] == "2025-03-01T00:01:40.000000"
    cfg = {**HYBRID, "lookback_seconds": 50, "processing": {"batch_size": 5}}
    again = make_project(tmp_path, mysql_db, {table: cfg})
    again.backup(table, "--limit", "10")  # re-reads ids 50-59 only
    after = again.watermark(table)["mysql_state"]
    assert (after["last_timestamp"], after["last_id"]) == (
        before["last_timestamp"],
        before["last_id"],
    )
    assert after["total_rows"] == 110


def test_limit_runs_resume_exactly(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-01-01' + INTERVAL (seq DIV 7) SECOND, 'x' FROM seq_1_to_1000"
    )
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 128}}}
    )
    totals = []
    for _ in range(3):
        result = project.backup(table, "--limit", "300")
        assert "300 rows extracted" in result.stderr
        assert "stopped by --limit" in result.stderr
        totals.append(project.watermark(table)["mysql_state"]["total_rows"])
    assert totals == [300, 600, 900]
    project.backup(table)
    ids = staged_ids(project, table)
    assert sorted(ids) == list(range(1, 1001))


def test_max_chunks_and_rows_per_file(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) SELECT seq, NOW(6), 'x' FROM seq_1_to_1000"
    )
    project = make_project(
        tmp_path,
        mysql_db,
        {table: {**ID_ONLY, "processing": {"batch_size": 300}}},
        backup_batch_size=250,
    )
    project.backup(table, "--max-chunks", "2")
    wm = project.watermark(table)
    assert wm["mysql_state"]["total_rows"] == 600
    assert wm["mysql_state"]["last_id"] == 600
    project.backup(table)
    wm = project.watermark(table)
    assert sorted(staged_ids(project, table)) == list(range(1, 1001))
    assert wm["mysql_state"]["s3_files_created"] == len(wm["backup_s3_files"])
    import pyarrow.parquet as pq

    sizes = [pq.ParquetFile(uri).metadata.num_rows for uri in wm["backup_s3_files"]]
    assert max(sizes) <= 250
    assert sum(sizes) == 1000
    # Row groups record the min/max of the key column only (the others cost encoding time).
    group = pq.ParquetFile(wm["backup_s3_files"][0]).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).is_stats_set for i in range(3)}
    assert stats == {"id": True, "updated_at": False, "v": False}
    assert group.column(0).statistics.min == 1


def test_hostile_table_and_column_names(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    name = 'we`ir"d;t'
    mysql_db.execute(
        'CREATE TABLE `we``ir"d;t` (id INT PRIMARY KEY, `co``l"x;` VARCHAR(10), '
        "updated_at DATETIME NOT NULL)"
    )
    mysql_db.execute(
        "INSERT INTO `we``ir\"d;t` VALUES (1, 'a', '2025-01-01'), (2, 'b', '2025-01-02')"
    )
    table = f"{mysql_db.name}.{name}"
    project = make_project(tmp_path, mysql_db, {table: ID_ONLY})
    project.backup(table)
    staged = project.staged_table(table)
    assert staged.column('co`l"x;').to_pylist() == ["a", "b"]
    for uri in project.watermark(table)["backup_s3_files"]:
        assert "`" not in uri and '"' not in uri and ";" not in uri


@pytest.mark.parametrize("reader", ["connectorx", "pymysql"])
def test_backup_through_ssh_tunnel_to_s3(
    tmp_path: Path, mysql_db: MySQLDatabase, sshd: SshdServer, s3_bucket: S3Bucket, reader: str
) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-01-01' + INTERVAL seq SECOND, CONCAT('v', seq) FROM seq_1_to_5000"
    )
    tunnel = {"ssh_tunnel": sshd.tunnel()}
    project = make_project(
        tmp_path,
        mysql_db,
        {table: {**HYBRID, "processing": {"batch_size": 1000}}},
        bucket=s3_bucket,
        source_extra=tunnel,
    )
    project.backup(table, "--reader", reader)
    staged = project.staged_table(table)
    assert sorted(staged.column("id").to_pylist()) == list(range(1, 5001))
    assert pc.sum(pc.equal(staged.column("v"), "v4242")).as_py() == 1
    keys = s3_bucket.keys("incremental/")
    assert len(keys) == len(project.watermark(table)["backup_s3_files"])
    assert all(k.startswith(f"incremental/src_{mysql_db.name}_events/") for k in keys)


def test_both_readers_stage_identical_data(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    seed = runpy.run_path(str(ROOT / "scripts" / "seed_demo.py"))["seed"]
    seed(3000, mysql_db.name, mysql_db.host, mysql_db.port, mysql_db.user, mysql_db.password)
    table = f"{mysql_db.name}.parcels"
    cfg = {**HYBRID, "processing": {"batch_size": 700}}
    staged = {}
    for reader in ("connectorx", "pymysql"):
        project = make_project(tmp_path / reader, mysql_db, {table: cfg})
        project.backup(table, "--reader", reader)
        staged[reader] = project.staged_table(table)
    assert staged["connectorx"].num_rows == 3000
    assert staged["connectorx"].equals(staged["pymysql"])


@pytest.mark.parametrize(
    ("strategy", "zero_at"),
    [(HYBRID, 105_000), (ID_ONLY, 105_000), (ID_ONLY, 115_000), (TS_ONLY, 105_000)],
    ids=["hybrid-mid-chunk", "id_only-mid-chunk", "id_only-chunk-start", "timestamp_only"],
)
def test_zero_date_switches_connectorx_to_dates_as_text(
    tmp_path: Path, mysql_db: MySQLDatabase, strategy: dict[str, Any], zero_at: int
) -> None:
    """connectorx reads dates natively until a zero date, then on from there as text.

    Chunks of 110,000 rows are read in batches of 50,000: a zero date at row
    105,000 ends the read after a whole batch is written (the run continues after
    it); at row 115,000 it fails the first batch of the second chunk (read again).
    """
    mysql_db.execute(
        "CREATE TABLE shipments (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
        "shipped DATE, KEY ix (updated_at, id))"
    )
    mysql_db.execute(
        "INSERT INTO shipments SELECT seq, '2025-03-01' + INTERVAL (seq DIV 7) SECOND, "
        "'2025-03-02' FROM seq_1_to_120000"
    )
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # zero dates need a permissive mode
        cur.execute("UPDATE shipments SET shipped = '0000-00-00' WHERE id = %s", [zero_at])
    table = f"{mysql_db.name}.shipments"
    cfg = {**strategy, "processing": {"batch_size": 110_000}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, backup_batch_size=50_000)
    out = project.backup(table, "--reader", "connectorx")
    assert out.stderr.count("connectorx cannot decode a date natively") == 1, out.stderr
    staged = project.staged_table(table).sort_by("id")
    assert staged.column("id").to_pylist() == list(range(1, 120_001))  # none lost or repeated
    shipped = staged.column("shipped")
    assert shipped.null_count == 1 and shipped[zero_at - 1].as_py() is None
    assert project.watermark(table)["mysql_state"]["total_rows"] == 120_000


def test_custom_sql_with_bound_placeholders(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    table = create_events(mysql_db)
    insert_rows(mysql_db, [(i, f"2025-03-01 10:00:{i:02d}", "keep" if i % 2 else "x")
                           for i in range(1, 41)])  # fmt: skip
    query = (
        "SELECT id, updated_at, v FROM events WHERE v = 'keep' AND id > COALESCE({last_id}, 0) "
        "ORDER BY id LIMIT {limit}"
    )
    cfg = {"cdc_strategy": "custom_sql", "custom_query": query, "cdc_id_column": "id",
           "processing": {"batch_size": 7}}  # fmt: skip
    project = make_project(tmp_path, mysql_db, {table: cfg})
    project.backup(table)
    assert staged_ids(project, table) == list(range(1, 41, 2))
    assert project.watermark(table)["mysql_state"]["last_id"] == 39
    insert_rows(mysql_db, [(41, "2025-03-02", "keep"), (42, "2025-03-02", "x")])
    project.backup(table)
    assert staged_ids(project, table)[-1] == 41
    assert len(staged_ids(project, table)) == 21


def test_unix_timestamps_and_additional_where(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    mysql_db.execute(
        "CREATE TABLE ev (id INT PRIMARY KEY, changed INT UNSIGNED NOT NULL, kind VARCHAR(5))"
    )
    rows = [(i, 1_700_000_000 + i // 3, "a" if i % 4 else "skip") for i in range(1, 101)]
    mysql_db.executemany("INSERT INTO ev VALUES (%s, %s, %s)", rows)
    table = f"{mysql_db.name}.ev"
    cfg = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "changed", "cdc_id_column": "id",
           "additional_where": "kind <> 'skip'", "processing": {"batch_size": 10}}  # fmt: skip
    project = make_project(tmp_path, mysql_db, {table: cfg})
    project.backup(table)
    assert sorted(staged_ids(project, table)) == [i for i in range(1, 101) if i % 4]
    wm = project.watermark(table)["mysql_state"]
    assert wm["last_timestamp"] == "2023-11-14T22:13:53.000000"  # epoch 1700000033, as UTC
    assert wm["last_id"] == 100  # the first pass ends at (hi, MAX(id)); id 100 is filtered
    mysql_db.execute("INSERT INTO ev VALUES (101, 1700000040, 'a')")
    project.backup(table)
    assert staged_ids(project, table)[-1] == 101


def test_full_sync_paginate_resumes(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    mysql_db.execute("CREATE TABLE dim (code INT PRIMARY KEY, name VARCHAR(10))")
    mysql_db.execute("INSERT INTO dim SELECT seq, CONCAT('n', seq) FROM seq_1_to_250")
    table = f"{mysql_db.name}.dim"
    cfg = {"cdc_strategy": "full_sync", "full_sync_mode": "paginate",
           "processing": {"batch_size": 100}}  # fmt: skip
    project = make_project(tmp_path, mysql_db, {table: cfg})
    project.backup(table, "--max-chunks", "1")
    assert project.watermark(table)["mysql_state"]["last_id"] == 100
    project.backup(table)
    staged = project.staged_table(table).column("code").to_pylist()
    assert staged == list(range(1, 251))
    # The pass is complete: the next run reads the whole table again.
    assert project.watermark(table)["mysql_state"]["last_id"] is None
    project.backup(table)
    assert project.staged_table(table).num_rows == 500


def test_cdc_ordering_must_be_the_keyset_order(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    table = create_events(mysql_db)
    cfg = {**HYBRID, "cdc_ordering": ["id", "updated_at"]}
    result = make_project(tmp_path, mysql_db, {table: cfg}).cli("config", "validate")
    assert result.returncode == 1
    assert "cdc_ordering must be ['updated_at', 'id'] for hybrid" in result.stderr
    ok = make_project(tmp_path / "ok", mysql_db, {table: {**HYBRID,
                      "cdc_ordering": ["updated_at", "id"]}})  # fmt: skip
    assert ok.cli("config", "validate").returncode == 0


def test_first_run_reads_in_primary_key_order_and_resumes(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-01-01' + INTERVAL (1000 - seq) SECOND, 'a' FROM seq_1_to_1000"
    )
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 100}}}
    )
    first = project.backup(table, "--limit", "300")
    assert "first run: reading in primary-key order" in first.stderr
    wm = project.watermark(table)
    hi = wm["metadata"]["initial_pass"]["hi"]
    assert wm["metadata"]["initial_pass"]["last_pk"] == 300
    assert wm["mysql_state"]["last_timestamp"] is None
    # Meanwhile a staged row changes (its ts moves past hi) and rows arrive.
    mysql_db.execute("UPDATE events SET v = 'changed', updated_at = '2030-01-01' WHERE id = 5")
    insert_rows(mysql_db, [(1001, "2030-01-02", "new")])
    project.backup(table)  # resumes the pass with the same hi
    wm = project.watermark(table)
    assert wm["metadata"]["initial_pass"] is None
    assert wm["mysql_state"]["last_timestamp"] == hi
    assert wm["mysql_state"]["last_id"] == 1001
    project.backup(table)  # an ordinary incremental run: the changed and the new row
    staged = project.staged_table(table)
    ids = staged.column("id").to_pylist()
    assert sorted(set(ids)) == list(range(1, 1002))
    assert ids.count(5) == 2 and staged.column("v").to_pylist()[ids.index(5, 300)] == "changed"


def test_watermark_set_ends_a_first_pass(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    table = create_events(mysql_db)
    mysql_db.execute(
        "INSERT INTO events (id, updated_at, v) "
        "SELECT seq, '2025-01-01' + INTERVAL seq SECOND, 'a' FROM seq_1_to_500"
    )
    project = make_project(
        tmp_path, mysql_db, {table: {**HYBRID, "processing": {"batch_size": 100}}}
    )
    project.backup(table, "--limit", "200")
    assert project.watermark(table)["metadata"]["initial_pass"]["last_pk"] == 200
    project.cli("watermark", "set", "-t", table, "-p", "p", "--timestamp",
                "2025-01-01 00:04:00", "--id", "0", check=True)  # fmt: skip
    assert project.watermark(table)["metadata"]["initial_pass"] is None
    project.backup(table)  # an ordinary run from the operator's position: ts > 00:04:00
    ids = staged_ids(project, table)
    assert sorted(set(ids)) == list(range(1, 201)) + list(range(240, 501))
