"""Re-extract rows by primary key into staged files (``verify --repair``).

The rows ``verify`` found missing or different in the target are read again
from MySQL by key, converted like every backup (:mod:`src.backup.arrow_convert`)
and staged as ordinary files of the table: each uploaded file is recorded in
the watermark's ``backup_s3_files``, so the normal load (ledger, merge, one
transaction) puts them in the target. The watermark's position does not move:
these rows lie behind it. A key no longer in MySQL reads nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from src.backup.mysql_reader import make_reader
from src.backup.parquet_sink import ParquetSink, StagedFile
from src.backup.row_based import RowBasedBackupStrategy
from src.core.connections import ConnectionManager
from src.core.simple_watermark_manager import FileCheck, utc_now_iso
from src.core.table_run import TableRun
from src.utils.logging_setup import get_logger
from src.utils.naming import quote_mysql
from src.utils.stage_keys import data_file_name, new_execution_id, partition_path

log = get_logger("backup")
_KEYS_PER_QUERY = 500
_ROWS_PER_FILE = 100_000


@dataclass
class ExtractResult:
    """What a re-extraction staged."""

    rows: int = 0
    files: int = 0


def extract_by_key(
    run: TableRun,
    strategy: RowBasedBackupStrategy,
    keys: Iterable[tuple[Any, ...]],
    key_columns: list[str],
) -> ExtractResult:
    """Stage the current MySQL rows of ``keys`` (values of ``key_columns``) as table files."""
    schema = strategy.schema
    result = ExtractResult()
    wm = run.watermarks.read()
    state = wm.mysql_state
    position = json.dumps(
        {
            "last_timestamp": state.last_timestamp,
            "last_id": state.last_id,
            "last_key": state.last_key,
            "initial_pass": wm.metadata.initial_pass,
        }
    )
    started = dt.datetime.now(dt.UTC)
    # Its own id: two extractions in one run (a repair, then a quarantine's rows) must
    # never write the same file name, which the ledger already holds after the first.
    extraction = new_execution_id()

    def uploaded(staged: StagedFile) -> None:
        wm.backup_s3_files.append(staged.uri)
        wm.file_checks[staged.uri] = FileCheck(sha256=staged.sha256, etag=staged.etag)
        wm.mysql_state.last_updated = utc_now_iso()
        wm.refresh_counts()
        run.watermarks.write(wm)
        result.files += 1
        log.info("repair file staged", table=run.table, file=staged.uri, rows=staged.rows)

    # The statement is a pyformat template: a ``%`` in a name is doubled.
    match = " AND ".join(f"{quote_mysql(c).replace('%', '%%')} = %s" for c in key_columns)
    select = f"SELECT {schema.select_list()} FROM {schema.sql_table()}"
    manager = ConnectionManager(run.app)
    file_no = 0
    with (
        manager.source_endpoint(run.pipeline.source) as endpoint,
        # PyMySQL: few rows, and zero dates need no second read.
        make_reader(
            manager.mysql_endpoint(run.pipeline.source, endpoint), schema, prefer="pymysql"
        ) as reader,
        ParquetSink(
            run.stage,
            schema.arrow_schema,
            compression=run.pipeline.s3.compression,
            schema_json=schema.to_json(),
            on_uploaded=uploaded,
            footer_position=lambda _: position,
            statistics_columns=[schema.column(c).target_name for c in key_columns],
        ) as sink,
    ):
        for batch_keys in _batches(keys, _KEYS_PER_QUERY):
            where = " OR ".join([f"({match})"] * len(batch_keys))
            params = tuple(v for key in batch_keys for v in key)
            for batch in reader.read(f"{select} WHERE {where}", params):
                sink.write(batch)
                result.rows += batch.num_rows
            if sink.rows_in_file >= _ROWS_PER_FILE:
                sink.close_file(_file_key(run, started, extraction, file_no), None)
                file_no += 1
        sink.close_file(_file_key(run, started, extraction, file_no), None)
    return result


def _file_key(run: TableRun, started: dt.datetime, extraction: str, file_no: int) -> str:
    name = data_file_name(
        run.pipeline.source,
        run.source_schema,
        run.source_table,
        started,
        extraction,
        0,
        file_no,
    )
    prefix = run.data_prefix
    if run.pipeline.s3.partition_strategy == "datetime":
        prefix += partition_path(started.date())
    return prefix + name


def _batches(items: Iterable[tuple[Any, ...]], size: int) -> Iterable[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
