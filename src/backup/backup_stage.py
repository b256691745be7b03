"""The backup stage for one table: MySQL chunks → Parquet files → stage, resumable.

One run fixes its window once (SPEC §5), then reads chunk after chunk with
the table's strategy (:mod:`src.backup.chunk_loop`). After each file is
uploaded and verified, one atomic watermark write records it together with
the position of its last row: the watermark never points past a row that is
not in a recorded file.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.backup.chunk_loop import ChunkLoop
from src.backup.mysql_reader import DEFAULT_BATCH_SIZE, make_reader
from src.backup.mysql_schema import TableSchema, TypePolicy, load_table_schema
from src.backup.parquet_sink import ParquetSink, StagedFile
from src.backup.row_based import Position, PrimaryKeyPass, RowBasedBackupStrategy, Window
from src.config.settings import (
    AppConfig,
    PipelineConfig,
    TableConfig,
    resolve_chunk_size,
    resolve_rows_per_file,
)
from src.core.connections import ConnectionManager
from src.core.simple_watermark_manager import SimpleWatermarkManager, Watermark, utc_now_iso
from src.errors import DataError
from src.utils.logging_setup import get_logger
from src.utils.naming import (
    data_file_name,
    partition_path,
    quote_mysql,
    quote_mysql_table,
    split_table_name,
    table_data_prefix,
)

log = get_logger("backup")


@dataclass
class BackupResult:
    """What one table's backup run did (counts are for this run only)."""

    table: str
    rows: int = 0
    files: int = 0
    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0
    zero_dates: int = 0
    nul_chars: int = 0
    truncated: int = 0
    null_cursor_rows: int = 0
    estimated_rows: int = 0
    reader: str = ""
    stopped_by: str | None = None  # "limit" | "max_chunks" | None (window exhausted)

    @property
    def rows_per_second(self) -> float:
        """Throughput of the run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BackupPlan:
    """What a run will do, fixed at its start (also what ``--dry-run`` prints)."""

    schema: TableSchema
    strategy: RowBasedBackupStrategy
    window: Window
    start: Position
    chunk_size: int
    chunk_source: str
    rows_per_file: int
    rows_per_file_source: str
    estimated_rows: int

    @property
    def nothing_to_do(self) -> bool:
        """An empty cursor range: the table has no row a cursor can reach."""
        incremental = self.strategy.kind not in ("full_sync", "custom_sql")
        return incremental and self.window.hi_ts is None and self.window.hi_id is None


@dataclass(frozen=True)
class BackupOptions:
    """Caps and identity of one run."""

    execution_id: str
    limit: int | None = None
    max_chunks: int | None = None
    reader: str = "auto"


def type_policy(table: TableConfig) -> TypePolicy:
    """The table's value policies (SPEC §7)."""
    return TypePolicy(
        decimal_overflow=table.decimal_overflow,
        oversize_text=table.oversize_text,
        zero_dates=table.zero_dates,
        nul_chars=table.nul_chars,
    )


class TableBackup:
    """Runs the backup stage of one table (the caller holds the table's lock)."""

    def __init__(
        self,
        app: AppConfig,
        pipeline: PipelineConfig,
        table_name: str,
        watermarks: SimpleWatermarkManager,
        options: BackupOptions,
        on_progress: Callable[[BackupResult], None] | None = None,
    ) -> None:
        self.app = app
        self.pipeline = pipeline
        self.table_name = table_name
        self.table = pipeline.tables[table_name]
        self.schema_name, self.source_table = split_table_name(table_name)
        self.watermarks = watermarks
        self.options = options
        self.on_progress = on_progress
        self.connections = ConnectionManager(app)
        self.started = dt.datetime.now(dt.UTC)

    def run(self) -> BackupResult:
        """Stage every new row of the window (or up to the caps); return what was done."""
        result = BackupResult(self.table_name)
        begin = time.perf_counter()
        wm = self.watermarks.read()
        wm.mysql_state.status = "in_progress"
        wm.mysql_state.execution_id = self.options.execution_id
        wm.mysql_state.error = None
        wm.mysql_state.last_session_rows = 0
        wm.mysql_state.last_session_files = 0
        try:
            with self.connections.source_endpoint(self.pipeline.source) as endpoint:
                self._run(wm, endpoint, result)
        except BaseException as exc:
            wm.mysql_state.status = "failed"
            wm.mysql_state.error = str(exc) or type(exc).__name__
            wm.mysql_state.last_updated = utc_now_iso()
            self.watermarks.write(wm)
            raise
        finally:
            result.seconds = time.perf_counter() - begin
        if self.table.cdc_strategy == "full_sync" and result.stopped_by is None:
            # A completed full pass: the next run starts over from the first key.
            wm.mysql_state.last_id = None
            wm.mysql_state.last_timestamp = None
        wm.mysql_state.status = "success"
        wm.mysql_state.last_updated = utc_now_iso()
        self.watermarks.write(wm)
        return result

    def plan(self, conn: Any, wm: Watermark) -> BackupPlan:
        """Schema, strategy, window, start and sizes of a run (reads MySQL, changes nothing)."""
        schema = load_table_schema(
            conn, self.schema_name, self.source_table, type_policy(self.table)
        )
        strategy = RowBasedBackupStrategy(self.table, schema)
        with conn.cursor() as cur:
            window = strategy.window(cur)
            cur.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (self.schema_name, self.source_table),
            )
            row = cur.fetchone()
        if self.table.cdc_strategy == "full_sync" and self.table.full_sync_mode != "paginate":
            start = Position()  # every run reads the whole table
        else:
            start = strategy.start_position(wm.mysql_state.last_timestamp, wm.mysql_state.last_id)
        chunk_size, source = resolve_chunk_size(self.pipeline, self.table)
        rows_per_file, file_source = resolve_rows_per_file(self.app, self.pipeline, self.table)
        if strategy.kind == "timestamp_only":
            # Files end only at chunk ends, where groups of equal timestamps are whole.
            chunk_size = min(chunk_size, rows_per_file)
        if self.options.limit is not None:
            chunk_size = min(chunk_size, self.options.limit)
        return BackupPlan(
            schema=schema,
            strategy=strategy,
            window=window,
            start=start,
            chunk_size=chunk_size,
            chunk_source=source,
            rows_per_file=rows_per_file,
            rows_per_file_source=file_source,
            estimated_rows=int(row[0] or 0) if row else 0,
        )

    def _run(self, wm: Watermark, endpoint: Any, result: BackupResult) -> None:
        with self.connections.mysql(self.pipeline.source, endpoint) as conn:
            plan = self.plan(conn, wm)
        strategy, schema, window = plan.strategy, plan.schema, plan.window
        chunk_size, rows_per_file = plan.chunk_size, plan.rows_per_file
        result.null_cursor_rows = window.null_cursor_rows
        result.estimated_rows = plan.estimated_rows
        if window.null_cursor_rows:
            message = (
                f"table {self.table_name}: {window.null_cursor_rows} rows have a NULL cursor "
                "column and can never be picked up incrementally"
            )
            if self.table.null_cursor == "error":
                raise DataError(message + " (null_cursor: error)")
            log.warning(message)
        if plan.nothing_to_do:
            log.info("nothing to back up", table=self.table_name)
            return
        log.info(
            f"Using batch size: {chunk_size} ({plan.chunk_source})",
            table=self.table_name,
            rows_per_file=rows_per_file,
            rows_per_file_source=plan.rows_per_file_source,
        )
        reader_endpoint = self.connections.mysql_endpoint(self.pipeline.source, endpoint)
        pos = plan.start
        session_rows = 0
        pk_pass = self._pk_pass(wm, plan)
        walker: Any = strategy
        if pk_pass is not None:
            walker = pk_pass
            pos = Position(None, (wm.metadata.initial_pass or {}).get("last_pk"))
            log.info("first run: reading in primary-key order", table=self.table_name)

        def uploaded(staged: StagedFile) -> None:
            nonlocal session_rows
            session_rows += staged.rows
            state = wm.mysql_state
            if pk_pass is not None:
                hi, _ = strategy.watermark_values(Position(pk_pass.hi))
                wm.metadata.initial_pass = {"hi": hi, "last_pk": staged.position.id}
                last_ts, last_id = state.last_timestamp, state.last_id
            else:
                last_ts, last_id = strategy.watermark_values(staged.position)
            # A lookback run re-reads rows before the watermark: never move it backwards.
            if (last_ts or "", -1 if last_id is None else last_id) > (
                state.last_timestamp or "",
                -1 if state.last_id is None else state.last_id,
            ):
                if last_ts is not None:
                    state.last_timestamp = last_ts
                if last_id is not None:
                    state.last_id = last_id
            wm.backup_s3_files.append(staged.uri)
            state.total_rows += staged.rows
            state.last_session_rows = session_rows
            state.last_session_files += 1
            state.last_updated = utc_now_iso()
            self.watermarks.write(wm)
            result.files += 1
            result.bytes += staged.bytes
            log.info(
                "file staged",
                table=self.table_name,
                file=staged.uri,
                rows=staged.rows,
                bytes=staged.bytes,
            )

        stage = self.watermarks.stage  # one stage client per table run
        with (
            make_reader(
                reader_endpoint,
                schema,
                batch_size=min(chunk_size, DEFAULT_BATCH_SIZE),
                prefer=self.options.reader,  # type: ignore[arg-type]
            ) as reader,
            ParquetSink(
                stage,
                schema.arrow_schema,
                compression=self.pipeline.s3.compression,
                schema_json=schema.to_json(),
                on_uploaded=uploaded,
            ) as sink,
        ):
            result.reader = reader.name
            loop = ChunkLoop(
                reader,
                sink,
                walker,
                window,
                chunk_size=chunk_size,
                rows_per_file=rows_per_file,
                limit=self.options.limit,
                max_chunks=self.options.max_chunks,
                table_name=self.table_name,
                file_key=self._key,
                on_chunk=self.on_progress,
            )
            loop.run(pos, result)
        if pk_pass is not None and result.stopped_by is None:
            self._finish_pk_pass(wm, endpoint, strategy, pk_pass)

    def _pk_pass(self, wm: Watermark, plan: BackupPlan) -> PrimaryKeyPass | None:
        """The primary-key first pass, when this run starts or resumes one."""
        strategy = plan.strategy
        pk = self.table.primary_key or list(plan.schema.primary_key)
        if strategy.kind != "hybrid" or pk != [strategy.id_col]:
            return None
        stored = wm.metadata.initial_pass
        if stored is not None:
            return PrimaryKeyPass(strategy, strategy.ts_from_watermark(stored["hi"]))
        state = wm.mysql_state
        if state.last_timestamp is None and state.last_id is None:
            return PrimaryKeyPass(strategy, plan.window.hi_ts)
        return None

    def _finish_pk_pass(
        self, wm: Watermark, endpoint: Any, strategy: RowBasedBackupStrategy, pk_pass: Any
    ) -> None:
        """Every row with ``ts <= hi`` is staged: continue after ``(hi, MAX(id))``."""
        with self.connections.mysql(self.pipeline.source, endpoint) as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT MAX({quote_mysql(strategy.id_col or '')}) FROM "
                f"{quote_mysql_table(self.schema_name, self.source_table)}"
            )
            (top,) = cur.fetchone()
        hi, _ = strategy.watermark_values(Position(pk_pass.hi))
        wm.mysql_state.last_timestamp = hi
        wm.mysql_state.last_id = int(top) if top is not None else None
        wm.metadata.initial_pass = None

    def _key(self, chunk: int, file: int) -> str:
        s3 = self.pipeline.s3
        _, stage_cfg = self.app.stage_for(self.pipeline)
        prefix = table_data_prefix(
            stage_cfg.incremental_path,
            s3.isolation_prefix,
            self.pipeline.source,
            self.schema_name,
            self.source_table,
        )
        if s3.partition_strategy == "datetime":
            prefix += partition_path(self.started.date())
        name = data_file_name(
            self.pipeline.source,
            self.schema_name,
            self.source_table,
            self.started,
            self.options.execution_id,
            chunk,
            file,
        )
        return prefix + name
