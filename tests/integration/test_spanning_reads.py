"""Without a load alongside, one query reads on across chunks (chunk_loop.SPAN_ROWS).

In-process, with ``SPAN_ROWS`` made small so that a 100-row table takes several
queries whose ends fall inside chunks: a chunk then takes the rest of a
query's last batch and the next query's first rows. Every row must be staged
once, in key order, and the caps must stop at exactly their row.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import src.backup.chunk_loop as chunk_loop
from src.config.configuration_manager import ConfigurationManager
from src.pipeline.sync_runner import SyncOptions, run_sync
from tests.support.databases import MySQLDatabase
from tests.support.pipelines import Project, make_project

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def _backup(project: Project, table: str, **options: object) -> list[int]:
    """One in-process ``--backup-only`` run; the ids it staged, file by file in order."""
    app = ConfigurationManager(project.config_dir, environ=project.env).load().app
    before = (
        set(project.watermark(table)["backup_s3_files"])
        if _has_watermark(project, table)
        else set()
    )
    run = run_sync(app, "p", [table], SyncOptions(backup_only=True, **options))  # type: ignore[arg-type]
    assert run.outcomes[table].status == "success", run.outcomes[table].error_message
    ids: list[int] = []
    for uri in project.watermark(table)["backup_s3_files"]:
        if uri not in before:
            ids += [int(v) for v in pq.read_table(uri).column("id").to_pylist()]
    return ids


def _has_watermark(project: Project, table: str) -> bool:
    try:
        project.watermark(table)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.parametrize("reader", ["connectorx", "pymysql"])
def test_a_query_spanning_chunks_stages_every_row_once_in_order(
    tmp_path: Path, mysql_db: MySQLDatabase, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(chunk_loop, "SPAN_ROWS", 23)  # queries of 23 rows, chunks of 5
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
                     "KEY ix (updated_at, id))")  # fmt: skip
    mysql_db.execute("INSERT INTO t SELECT seq, '2025-01-01' + INTERVAL (seq DIV 4) SECOND "
                     "FROM seq_1_to_100")  # fmt: skip
    table = f"{mysql_db.name}.t"
    cfg = {**HYBRID, "processing": {"batch_size": 5}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, backup_batch_size=7)
    limits: list[int] = []  # every query's LIMIT, sent ahead or not
    read = chunk_loop.ChunkLoop._read

    def spy(loop: chunk_loop.ChunkLoop, query: object, rows: int, start: bool = False) -> object:
        limits.append(rows)
        return read(loop, query, rows, start)  # type: ignore[arg-type]

    monkeypatch.setattr(chunk_loop.ChunkLoop, "_read", spy)

    # The first run (primary-key order): stopped by --limit inside a query and a chunk,
    # then by --max-chunks, then to the end.
    assert _backup(project, table, reader=reader, limit=37) == list(range(1, 38))
    assert _backup(project, table, reader=reader, max_chunks=3) == list(range(38, 53))
    assert _backup(project, table, reader=reader) == list(range(53, 101))
    # The incremental walk ((updated_at, id) order): 60 new rows, 4 to a timestamp.
    mysql_db.execute("INSERT INTO t SELECT seq, '2026-01-01' + INTERVAL (seq DIV 4) SECOND "
                     "FROM seq_101_to_160")  # fmt: skip
    assert _backup(project, table, reader=reader) == list(range(101, 161))
    assert _backup(project, table, reader=reader) == []
    assert limits and min(limits) > 0, limits  # a cap ends the run: no LIMIT 0 sent ahead
