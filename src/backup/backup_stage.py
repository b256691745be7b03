"""The backup stage for one table: MySQL chunks → Parquet files → stage, resumable.

One run fixes its window once (SPEC §5), then reads chunk after chunk with
the table's strategy (:mod:`src.backup.chunk_loop`). After each file is
uploaded and verified, one atomic watermark write records it together with
the position of its last row: the watermark never points past a row that is
not in a recorded file.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from src.backup.boundary import group_open
from src.backup.chunk_loop import ChunkLoop
from src.backup.keyset import Position, exact_value
from src.backup.mysql_reader import DEFAULT_BATCH_SIZE, make_reader
from src.backup.null_cursor_pass import NullCursorPass
from src.backup.parquet_sink import ParquetSink, StagedFile
from src.backup.plan import BackupOptions, BackupPlan, BackupResult, table_strategy
from src.backup.position_record import PositionRecord
from src.backup.primary_key_pass import PrimaryKeyPass
from src.backup.row_based import RowBasedBackupStrategy
from src.config.settings import (
    appends_rows,
    resolve_chunk_size,
    resolve_null_cursor,
    resolve_retries,
    resolve_rows_per_file,
)
from src.core.connections import ConnectionManager
from src.core.simple_watermark_manager import Watermark
from src.core.stage import LocalStage
from src.core.table_run import TableRun
from src.errors import DataError
from src.utils.logging_setup import get_logger
from src.utils.stage_keys import WATERMARK_PREFIX, data_file_name, partition_path

log = get_logger("backup")
_SHARED_TEMP_AGE_SECONDS = 3600.0


class TableBackup:
    """Runs the backup stage of one table (the caller holds the table's lock)."""

    def __init__(
        self,
        run: TableRun,
        options: BackupOptions,
        on_progress: Callable[[BackupResult], None] | None = None,
        *,
        on_staged: Callable[[], None] | None = None,
        load_waiting: Callable[[], bool] | None = None,
    ) -> None:
        """``on_staged()`` after each file is recorded; ``load_waiting()``: a load running
        alongside waits for files (then a file may end early, see ChunkLoop)."""
        self.run_context = run
        self.app = run.app
        self.pipeline = run.pipeline
        self.table_name = run.table
        self.table = run.config
        self.schema_name, self.source_table = run.source_schema, run.source_table
        self.watermarks = run.watermarks
        self.options = options
        self.on_progress = on_progress
        self.on_staged = on_staged
        self.load_waiting = load_waiting
        self.connections = ConnectionManager(run.app)
        self.started = dt.datetime.now(dt.UTC)
        self.result = BackupResult(self.table_name)

    def run(self) -> BackupResult:
        """Stage every new row of the window (or up to the caps); return what was done.

        On failure :attr:`result` still holds what the run recorded before it.
        """
        result = self.result = BackupResult(self.table_name)
        begin = time.perf_counter()
        self._sweep_leftovers()
        wm = self.watermarks.read()
        with self.watermarks.lock:  # the load may run alongside (src/pipeline/load_alongside.py)
            wm.mysql_state.status = "in_progress"
            wm.mysql_state.execution_id = self.options.execution_id
            wm.mysql_state.error = None
            wm.mysql_state.last_session_rows = 0
            wm.mysql_state.last_session_files = 0
        try:
            with self.connections.source_endpoint(self.pipeline.source) as endpoint:
                self._run(wm, endpoint, result)
        except BaseException as exc:
            self.watermarks.record_failure("mysql_state", exc)
            raise
        finally:
            result.seconds = time.perf_counter() - begin
        with self.watermarks.changing() as wm:
            if self.table.cdc_strategy == "full_sync" and result.stopped_by is None:
                # A completed full pass: the next run starts over from the first key.
                wm.mysql_state.last_id = None
                wm.mysql_state.last_timestamp = None
            wm.mysql_state.finish()
        return result

    def _sweep_leftovers(self) -> None:
        """Temp files of killed writes in a local stage: the table's own (its lock is held)
        and watermark temp files older than an hour (other tables write beside them)."""
        stage = self.watermarks.stage
        if not isinstance(stage, LocalStage):
            return  # S3 writes have no temp objects
        swept = stage.sweep_temp_files(self.run_context.data_prefix, 0)
        swept += stage.sweep_temp_files(WATERMARK_PREFIX, _SHARED_TEMP_AGE_SECONDS)
        if swept:
            log.info("removed temp files of killed writes", table=self.table_name, files=swept)

    def plan(self, conn: Any, wm: Watermark) -> BackupPlan:
        """Schema, strategy, window, start and sizes of a run (reads MySQL, changes nothing)."""
        strategy = table_strategy(self.app, self.pipeline, self.table_name, conn)
        schema = strategy.schema
        if self.table.cdc_strategy == "full_sync" and self.table.full_sync_mode != "paginate":
            start = Position()  # every run reads the whole table
        else:
            state = wm.mysql_state
            start = strategy.start_position(
                state.last_timestamp,
                state.last_id,
                state.last_key,
                reread_group=state.group_open and self._may_reread(),
            )
        with conn.cursor() as cur:
            window = strategy.window(cur, start)
            cur.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (self.schema_name, self.source_table),
            )
            row = cur.fetchone()
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

    def _may_reread(self) -> bool:
        """Whether this run may start by re-reading the rows at the watermark's timestamp.

        Only where rows read again replace themselves (a merge by key), and only
        in a run without a cap: a capped run resumes exactly, so a cap smaller
        than the group still moves on.
        """
        uncapped = self.options.limit is None and self.options.max_chunks is None
        return uncapped and not appends_rows(self.table)

    def position_ahead(self, plan: BackupPlan, wm: Watermark) -> str | None:
        """``"col = value, but MAX(col) … is hi"`` when the stored position is past the source."""
        state = wm.mysql_state
        strategy = plan.strategy
        stored = strategy.start_position(state.last_timestamp, state.last_id, state.last_key)
        if stored.ts_inclusive:  # lookback: compare the position itself
            stored = Position(strategy.ts_from_watermark(state.last_timestamp))
        ahead = strategy.ahead_of_source(stored, plan.window)
        if ahead is None:
            return None
        column, value, hi = ahead
        top = _shown(hi) if hi is not None else "NULL (no row)"
        return f"{column} = {_shown(value)}, but MAX({column}) on the source is {top}"

    def check_position(self, plan: BackupPlan, wm: Watermark) -> None:
        """DataError when the stored position is past the source's ``MAX(cursor)``."""
        ahead = self.position_ahead(plan, wm)
        if ahead is None:
            return
        name, pipeline = self.table_name, self.pipeline.name
        option = "--timestamp" if plan.strategy.ts_col else "--id"
        raise DataError(
            f"table {name}: the watermark is ahead of the source: it continues after "
            f"{ahead}, so no row would be read. If the source was restored or the position "
            f"set by hand, move it back with 'watermark set -t {name} -p {pipeline} "
            f"{option} …' or start over with 'watermark reset -t {name} -p {pipeline}'"
        )

    def _run(self, wm: Watermark, endpoint: Any, result: BackupResult) -> None:
        with self.connections.mysql(self.pipeline.source, endpoint) as conn:
            plan = self.plan(conn, wm)
        self.check_position(plan, wm)
        strategy, schema, window = plan.strategy, plan.schema, plan.window
        result.null_cursor_rows = window.null_cursor_rows
        result.estimated_rows = plan.estimated_rows
        null_pass = self._null_pass(plan)
        if plan.nothing_to_do and null_pass is None:
            log.info("nothing to back up", table=self.table_name)
            return
        log.info(
            f"Using batch size: {plan.chunk_size} ({plan.chunk_source})",
            table=self.table_name,
            rows_per_file=plan.rows_per_file,
            rows_per_file_source=plan.rows_per_file_source,
        )
        walker, pos = self.walk(wm, plan)
        pk_pass = walker if isinstance(walker, PrimaryKeyPass) else None
        if pk_pass is not None:
            log.info("first run: reading in primary-key order", table=self.table_name)
        record = PositionRecord(plan, wm, pk_pass, null_pass)
        session_rows = 0

        def uploaded(staged: StagedFile) -> None:
            nonlocal session_rows
            session_rows += staged.rows
            fields = record.fields(staged.position)
            with self.watermarks.changing() as doc:
                record.apply(doc, fields, staged, session_rows)
            if self.on_staged is not None:
                self.on_staged()
            result.files += 1
            result.bytes += staged.bytes
            log.info(
                "file staged",
                table=self.table_name,
                file=staged.uri,
                rows=staged.rows,
                bytes=staged.bytes,
            )

        with (
            make_reader(
                self.connections.mysql_endpoint(self.pipeline.source, endpoint),
                schema,
                batch_size=min(plan.chunk_size, DEFAULT_BATCH_SIZE),
                prefer=self.options.reader,  # type: ignore[arg-type]
            ) as reader,
            ParquetSink(
                self.watermarks.stage,  # one stage client per table run
                schema.arrow_schema,
                compression=self.pipeline.s3.compression,
                schema_json=schema.to_json(),
                on_uploaded=uploaded,
                footer_position=lambda position: json.dumps(record.fields(position)),
                statistics_columns=_key_columns(strategy),
            ) as sink,
        ):
            result.reader = reader.name
            loop = self._loop(reader, sink, walker, plan)
            loop.run(pos, result)
            if null_pass is not None and result.stopped_by is None:
                record.walk_end = loop.pos if result.rows else None
                rest = self._loop(reader, sink, null_pass, plan, first_chunk=loop.chunk_no)
                rest.run(null_pass.resume_position(wm.metadata.null_pass), result)
        if null_pass is not None and result.stopped_by is None:
            with self.watermarks.lock:
                wm.metadata.null_pass = None  # the pass is whole: the next run starts another
        if pk_pass is not None and result.stopped_by is None:
            self._finish_pk_pass(wm, endpoint, strategy, pk_pass)

    def _loop(
        self, reader: Any, sink: ParquetSink, walker: Any, plan: BackupPlan, first_chunk: int = 0
    ) -> ChunkLoop:
        """A chunk loop of ``walker`` over this run's reader and sink, with its caps.

        ``first_chunk``: the chunks the run has read so far (the caps count them);
        the last of them may have named a file, so this loop's files count on after it.
        """
        offset = 1 if first_chunk else 0
        return ChunkLoop(
            reader,
            sink,
            walker,
            plan.window,
            chunk_size=plan.chunk_size,
            rows_per_file=plan.rows_per_file,
            limit=self.options.limit,
            max_chunks=self.options.max_chunks,
            table_name=self.table_name,
            file_key=lambda chunk, file: self._key(chunk + offset, file),
            on_chunk=self.on_progress,
            retries=resolve_retries(self.pipeline, self.table),
            load_waiting=self.load_waiting,
            first_chunk=first_chunk,
        )

    def _null_pass(self, plan: BackupPlan) -> NullCursorPass | None:
        """The pass over rows whose cursor is NULL (``null_cursor: include``), when there are any.

        ``error`` fails the run before anything is staged; ``exclude`` leaves
        them out, and ``verify`` says how many.
        """
        nulls = plan.window.null_cursor_rows
        if not nulls:
            return None
        mode = resolve_null_cursor(self.table)
        column = plan.strategy.ts_col or plan.strategy.id_col
        if mode == "error":
            raise DataError(
                f"table {self.table_name}: {nulls:,} rows have a NULL {column}, which no "
                "cursor can reach (null_cursor: error); set null_cursor: include to read them "
                "by primary key every run, or exclude to leave them out"
            )
        if mode == "exclude":
            log.info("rows with a NULL cursor left out (null_cursor: exclude)",
                     table=self.table_name, rows=nulls)  # fmt: skip
            return None
        log.info("rows with a NULL cursor read by key (null_cursor: include)",
                 table=self.table_name, rows=nulls)  # fmt: skip
        return NullCursorPass(plan.strategy)

    def walk(self, wm: Watermark, plan: BackupPlan) -> tuple[Any, Position]:
        """What the run walks (the strategy, or the first run's primary-key pass) and from where."""
        pk_pass = self._pk_pass(wm, plan)
        if pk_pass is None:
            return plan.strategy, plan.start
        return pk_pass, pk_pass.resume_position(wm.metadata.initial_pass)

    def _pk_pass(self, wm: Watermark, plan: BackupPlan) -> PrimaryKeyPass | None:
        """The primary-key first pass, when this run starts or resumes one."""
        strategy = plan.strategy
        if strategy.kind != "hybrid" or not strategy.primary_key:
            return None
        stored = wm.metadata.initial_pass
        if stored is not None:  # a pass an earlier run began (an older one: open, unknown)
            hi = strategy.ts_from_watermark(stored["hi"])
            return PrimaryKeyPass(strategy, hi, stored.get("group_open", True))
        state = wm.mysql_state
        if state.last_timestamp is None and state.last_id is None:
            hi, now = plan.window.hi_ts, plan.window.now
            return PrimaryKeyPass(strategy, hi, group_open(strategy, hi, now))
        return None

    def _finish_pk_pass(
        self,
        wm: Watermark,
        endpoint: Any,
        strategy: RowBasedBackupStrategy,
        pk_pass: PrimaryKeyPass,
    ) -> None:
        """Every row with ``ts <= hi`` is staged: continue after ``(hi, largest key)``.

        The rows at ``hi`` are open when they were at the pass's start: the pass read
        them from then on, in key order, maybe in several runs.
        """
        with self.connections.mysql(self.pipeline.source, endpoint) as conn, conn.cursor() as cur:
            cur.execute(pk_pass.end_query())
            top = cur.fetchone()
        key = tuple(exact_value(v) for v in top) if top else ()
        end = Position(pk_pass.hi, key)
        hi, last_id = strategy.watermark_values(end)
        with self.watermarks.lock:
            state = wm.mysql_state
            state.last_timestamp, state.last_id = hi, last_id
            state.last_key, state.group_open = strategy.watermark_key(end), pk_pass.group_open
            wm.metadata.initial_pass = None

    def _key(self, chunk: int, file: int) -> str:
        prefix = self.run_context.data_prefix
        if self.pipeline.s3.partition_strategy == "datetime":
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


def _shown(value: Any) -> str:
    """A cursor value as operators write it."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return str(value)


def _key_columns(strategy: RowBasedBackupStrategy) -> list[str]:
    """Target names of the table's cursor and primary-key columns, once each."""
    names = [strategy.ts_col, strategy.id_col, *strategy.primary_key]
    return list(dict.fromkeys(strategy.schema.column(n).target_name for n in names if n))
