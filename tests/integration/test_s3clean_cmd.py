"""``s3clean list|clean`` through the real CLI (SPEC §4): exact prefix, >1000 files, filters."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from src.utils.naming import split_table_name
from src.utils.stage_keys import data_file_name
from tests.integration.test_load_stage import HYBRID, create_orders
from tests.integration.test_watermark_cmd import cli_with_input, error_line, hold_lock
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import SCOPE, Project, make_project
from tests.support.s3_server import S3Bucket

LOADED, AWAITING, ORPHAN = "aaaa0001", "bbbb0002", "cccc0003"


def counts(project: Project, table: str, *args: str) -> dict[str, int]:
    result = project.cli("s3clean", "list", "-t", table, "--json", *args, check=True)
    return dict(json.loads(result.stdout)["counts"])


def put_watermark(project: Project, table: str, doc: dict[str, Any]) -> None:
    from src.utils.stage_keys import watermark_key

    assert project.bucket is not None
    key = watermark_key(SCOPE, *split_table_name(table), "pg")
    project.bucket.client.put_object(Bucket=project.bucket.name, Key=key, Body=json.dumps(doc))


def test_1200_staged_files_on_s3(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    orders = create_orders(mysql_db, 10)
    archive = create_orders(mysql_db, 5, table="orders_archive")
    project = make_project(
        tmp_path, mysql_db, {orders: HYBRID, archive: HYBRID}, pg=pg, bucket=s3_bucket
    )
    project.cli("sync", "pipeline", "-p", "p", check=True)
    client, bucket = s3_bucket.client, s3_bucket.name

    # 1,200 more files of orders: 1,000 loaded, 150 awaiting load, 50 orphans.
    wm = project.watermark(orders)
    (first,) = wm["processed_s3_files"]
    key0 = first.split("/", 3)[3]
    prefix = key0.rsplit("/", 1)[0] + "/"
    body = client.get_object(Bucket=bucket, Key=key0)["Body"].read()
    schema, name = split_table_name(orders)
    start = dt.datetime(2025, 1, 1)

    def key(suffix: str, chunk: int) -> str:
        run = f"sync_20250101_000000_{suffix}"
        return prefix + data_file_name(SCOPE, schema, name, start, run, chunk, 0)

    sizes = ((LOADED, 1000), (AWAITING, 150), (ORPHAN, 50))
    groups = {s: [key(s, i) for i in range(n)] for s, n in sizes}
    every = [k for keys in groups.values() for k in keys]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=body), every))
    uri = f"s3://{bucket}/"
    # Loaded before the real file; 1,001 names: the oldest one is forgotten on reading.
    wm["processed_s3_files"] = [uri + k for k in groups[LOADED]] + wm["processed_s3_files"]
    wm["backup_s3_files"] = [uri + k for k in groups[AWAITING]]
    put_watermark(project, orders, wm)
    archive_wm = project.watermark(archive)
    archive_prefix = archive_wm["processed_s3_files"][0].split("/", 3)[3].rsplit("/", 1)[0] + "/"
    archive_keys = s3_bucket.keys(archive_prefix)
    assert len(archive_keys) == 1
    assert archive_prefix.startswith(prefix.rstrip("/"))  # a substring match would take them

    # list: every page, exact prefix, three groups.
    listed = json.loads(project.cli("s3clean", "list", "-t", orders, "--json", check=True).stdout)
    assert listed["counts"] == {"loaded": 1001, "awaiting": 150, "quarantined": 0, "orphan": 50}
    assert listed["listed"] == 1201
    names = [f["key"] for group in listed["files"].values() for f in group]
    assert all(k.startswith(prefix) for k in names) and not set(names) & set(archive_keys)
    assert {f["key"] for f in listed["files"]["orphan"]} == set(groups[ORPHAN])
    text = project.cli("s3clean", "list", "-t", orders, "--show-timestamps", check=True).stdout
    assert (
        "✅ Loaded (in processed_s3_files, or older than the names it keeps): 1,001 files" in text
    )
    assert "📦 Awaiting load (in backup_s3_files): 150 files" in text
    assert "👻 Orphans (in no watermark list; never loaded): 50 files" in text
    assert text.count(" UTC\n") == 1201
    assert counts(project, orders, "--pattern", f"*_{ORPHAN}_*") == {
        "loaded": 0,
        "awaiting": 0,
        "quarantined": 0,
        "orphan": 50,
    }
    assert counts(project, orders, "--older-than", "7d") == {
        "loaded": 0,
        "awaiting": 0,
        "quarantined": 0,
        "orphan": 0,
    }

    # dry run and a declined prompt delete nothing.
    dry = project.cli("s3clean", "clean", "-t", orders, "--dry-run", check=True).stdout
    assert "Dry run: would delete 1,051 files (1,001 loaded, 50 orphans)" in dry
    assert "Kept 150 files awaiting load" in dry
    no = cli_with_input(project, "n\n", "s3clean", "clean", "-t", orders)
    assert no.returncode == 1 and "Delete 1,051 files from" in no.stderr
    assert no.stderr.strip().splitlines()[-1].startswith("Error: clean not confirmed")
    assert len(s3_bucket.keys(prefix)) == 1201

    # --force: 1,051 deletes (two batches: the server refuses more than 1000), lists pruned.
    done = project.cli("s3clean", "clean", "-t", orders, "--force")
    assert done.returncode == 0, done.stderr
    assert "Deleted 1,051 files (1,001 loaded, 50 orphans)" in done.stdout
    assert (
        "Removed from the watermark: 1,000 from processed_s3_files, 1 from loaded_files_forgotten"
        in done.stdout
    ), done.stdout
    assert "Kept 150 files awaiting load" in done.stdout
    assert sorted(s3_bucket.keys(prefix)) == sorted(groups[AWAITING])
    after = project.watermark(orders)
    assert after["processed_s3_files"] == []
    assert after["backup_s3_files"] == wm["backup_s3_files"]
    assert after["mysql_state"]["s3_files_created"] == 150

    # --include-unloaded (confirmed with "y") deletes files awaiting load that match.
    yes = cli_with_input(
        project,
        "y\n",
        "s3clean",
        "clean",
        "-t",
        orders,
        "--include-unloaded",
        "--pattern",
        f"*_{AWAITING}_0000[0-9]_*",
    )
    assert yes.returncode == 0, yes.stderr
    assert "Deleted 10 files (0 loaded, 0 orphans, 10 awaiting load)" in yes.stdout
    assert len(project.watermark(orders)["backup_s3_files"]) == 140
    assert len(s3_bucket.keys(prefix)) == 140

    # the sibling orders_archive is untouched.
    assert s3_bucket.keys(archive_prefix) == archive_keys
    assert project.watermark(archive) == archive_wm


def test_filters_orphans_and_lock_on_local_stage(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    orders = create_orders(mysql_db, 100)
    archive = create_orders(mysql_db, 5, table="orders_archive")
    project = make_project(tmp_path, mysql_db, {orders: HYBRID, archive: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    (loaded,) = project.watermark(orders)["processed_s3_files"]
    archive_files = sorted(project.stage_dir.rglob("*orders_archive*.parquet"))
    now = time.time()
    ages = {"old": 10 * 86400, "mid": 2 * 3600, "new": 0}
    for label, age in ages.items():
        orphan = Path(loaded).with_name(f"orphan_{label}.parquet")
        shutil.copy(loaded, orphan)
        os.utime(orphan, (now - age, now - age))
    os.utime(loaded, (now - ages["old"], now - ages["old"]))

    assert counts(project, orders) == {"loaded": 1, "awaiting": 0, "quarantined": 0, "orphan": 3}
    assert counts(project, orders, "--older-than", "7d") == {
        "loaded": 1,
        "awaiting": 0,
        "quarantined": 0,
        "orphan": 1,
    }
    assert counts(project, orders, "--older-than", "1h") == {
        "loaded": 1,
        "awaiting": 0,
        "quarantined": 0,
        "orphan": 2,
    }
    assert counts(project, orders, "--older-than", "30m", "--pattern", "orphan_*") == {
        "loaded": 0,
        "awaiting": 0,
        "quarantined": 0,
        "orphan": 2,
    }
    bad = project.cli("s3clean", "list", "-t", orders, "--older-than", "7x")
    assert bad.returncode == 1
    assert error_line(bad).startswith("Error: --older-than '7x' is not an age")

    with hold_lock(project, orders):
        held = project.cli("s3clean", "clean", "-t", orders, "--force")
        assert held.returncode == 7
        assert "sync_test_holder" in error_line(held)
        seen = project.cli("s3clean", "list", "-t", orders)
        assert seen.returncode == 0 and "lock is held by sync_test_holder" in seen.stderr
    assert counts(project, orders) == {"loaded": 1, "awaiting": 0, "quarantined": 0, "orphan": 3}

    old = project.cli("s3clean", "clean", "-t", orders, "--force", "--older-than", "7d")
    assert old.returncode == 0, old.stderr
    assert "Deleted 2 files (1 loaded, 1 orphan)" in old.stdout
    assert not Path(loaded).exists()
    assert project.watermark(orders)["processed_s3_files"] == []
    left = sorted(p.name for p in Path(loaded).parent.iterdir())
    assert left == ["orphan_mid.parquet", "orphan_new.parquet"]
    project.cli("s3clean", "clean", "-t", orders, "--force", "--pattern", "*_mid.*", check=True)
    assert sorted(p.name for p in Path(loaded).parent.iterdir()) == ["orphan_new.parquet"]
    assert sorted(project.stage_dir.rglob("*orders_archive*.parquet")) == archive_files
    nothing = project.cli("s3clean", "clean", "-t", orders, "--force", "--older-than", "1d")
    assert nothing.returncode == 0 and "Deleted 0 files" in nothing.stdout
