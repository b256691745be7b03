"""The watermark names only the newest loaded files: a long history costs a run nothing (#13).

A table that loaded 1,500 files long ago: the next run keeps the newest 1,000 names,
counts the rest, and ``s3clean`` still knows every old file as loaded (never an orphan).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from src.core.simple_watermark_manager import PROCESSED_FILES_KEPT
from tests.integration.test_faults import HYBRID, parcels
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import Project, make_project


def add_old_files(project: Project, table: str, files: int) -> list[Path]:
    """Stage ``files`` copies of the table's file, named earlier, listed as loaded."""
    wm_path = next((project.stage_dir / "watermarks" / "v2").glob("*.json"))
    doc = json.loads(wm_path.read_text())
    (real,) = doc["processed_s3_files"]
    stem = re.sub(r"_\d{8}_\d{6}_.*$", "", Path(real).name)  # <slug>_<time>_<run>_…
    old = [Path(real).with_name(f"{stem}_20240101_{n:06d}_old_00000_000.parquet") for n in
           range(files)]  # fmt: skip
    for path in old:
        shutil.copy(real, path)
    doc["processed_s3_files"] = [str(p) for p in old] + doc["processed_s3_files"]
    doc["mysql_state"]["s3_files_created"] = len(doc["processed_s3_files"])
    wm_path.write_text(json.dumps(doc))
    return old


def test_the_loaded_list_is_bounded_and_old_files_stay_known_as_loaded(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 100)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    old = add_old_files(project, table, 1500)
    mysql_db.execute("INSERT INTO parcels VALUES (101, 'new', '2025-02-01')")
    project.cli("sync", "pipeline", "-p", "p", check=True)

    wm = project.watermark(table)
    assert len(wm["processed_s3_files"]) == PROCESSED_FILES_KEPT
    assert wm["metadata"]["loaded_files_forgotten"] == 1502 - PROCESSED_FILES_KEPT
    assert wm["mysql_state"]["s3_files_created"] == 1502  # every file, forgotten or not
    listed = json.loads(project.cli("watermark", "list", "-p", "p", "--json", check=True).stdout)
    assert listed[0]["files_loaded"] == 1502
    shown = project.cli("watermark", "get", "-t", table, "-p", "p", check=True).stdout
    assert "Processed S3 Files (loaded to Redshift): 1,502" in shown
    assert "502 older ones are counted, not listed" in shown, shown
    scan = json.loads(project.cli("s3clean", "list", "-t", table, "--json", check=True).stdout)
    assert scan["counts"]["loaded"] == 1502 and scan["counts"]["orphan"] == 0, scan["counts"]

    stray = old[0].with_name(old[0].name.replace("_20240101_", "_20990101_"))
    shutil.copy(old[0], stray)  # newer than anything forgotten, in no list: an orphan
    scan = json.loads(project.cli("s3clean", "list", "-t", table, "--json", check=True).stdout)
    assert scan["counts"]["orphan"] == 1
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels") == [(101, 101)]
