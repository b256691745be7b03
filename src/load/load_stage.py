"""The load stage for one table: staged files → target, exactly once (SPEC §6).

One protocol for every target; :class:`TargetDialect` supplies the types and
how a staging table is filled. One load is one transaction: staging filled
and counted, merged (or appended, or replaced), ledger rows inserted,
committed. Only then does the watermark move the files to
``processed_s3_files``; a watermark that lags the ledger (a crash between the
two) is repaired from the ledger on the next run, never loaded again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from src.config.settings import resolve_retries
from src.core.connections import ConnectionManager
from src.core.driver_errors import connection_failed
from src.core.simple_watermark_manager import QuarantinedFile, Watermark
from src.core.stage import Stage
from src.core.table_run import TableRun
from src.core.table_schema import TableSchema
from src.errors import (
    BackupError,
    CorruptStagedFile,
    LoadError,
    TargetConnectionLost,
    first_line,
    is_transient,
)
from src.load.deletions import Deletions
from src.load.ledger import Ledger
from src.load.merge import TableWriter
from src.load.quarantine import quarantine_error, set_aside, warn_if_quarantined
from src.load.staged_files import group_by_schema, position_from, verify_staged
from src.load.target_table import TargetTable
from src.load.targets.base import (
    StagedFileRef,
    TargetDialect,
)
from src.utils.faults import fault_point
from src.utils.logging_setup import get_logger
from src.utils.naming import table_slug, target_table_name
from src.utils.stage_keys import execution_suffix

log = get_logger("load")


@dataclass
class LoadResult:
    """What one table's load did (this run only)."""

    table: str
    rows: int = 0
    files: int = 0
    repaired_files: int = 0
    superseded_files: int = 0
    deleted_rows: int = 0  # rows deleted or marked (verify --repair, --detect-deletes)
    retries: int = 0  # transient failures ridden out (a conflict, a lost connection)
    seconds: float = 0.0


Connect = Callable[[], AbstractContextManager[Any]]


class TableLoad:
    """Loads one table's staged files (the caller holds the table's lock)."""

    def __init__(
        self,
        run: TableRun,
        dialect: TargetDialect,
        connect: Connect | None = None,
        deletions: Deletions | None = None,
    ) -> None:
        self.run_context = run
        self.deletions = deletions
        self.app = run.app
        self.pipeline = run.pipeline
        self.table_name = run.table
        self.table = run.config
        self.watermarks = run.watermarks
        self.dialect = dialect
        self.execution_id = run.execution_id
        self.stage: Stage = run.stage  # one stage client per table run
        self.target_cfg = run.app.targets[run.pipeline.target]
        self.retries = resolve_retries(run.pipeline, run.config)
        self.result = LoadResult(self.table_name)  # this run's, also when it failed
        self.quarantined: list[QuarantinedFile] = []
        manager = ConnectionManager(run.app)
        self.connect: Connect = connect or (lambda: manager.target(run.pipeline.target))
        self.schema_name, self.source_table = run.source_schema, run.source_table
        self.target_table = target_table_name(
            self.source_table,
            self.table.target_name,
            self.target_cfg.capabilities.max_identifier_bytes,
        )
        self.target_schema = self.target_cfg.schema_
        where = f"{self.target_cfg.type} target {self.pipeline.target}"
        self.ledger = Ledger(self.target_schema, where)
        slug = table_slug(run.pipeline.source, self.schema_name, self.source_table)
        self.writer = TableWriter(
            dialect,
            self.stage,
            self.table,
            self.table_name,
            self.target_schema,
            self.target_table,
            f"manifests/{slug}/{self.execution_id}_",
        )
        self.target = TargetTable(
            dialect, self.writer, self.target_schema, self.target_table, self.table_name
        )

    # ------------------------------------------------------------------ run
    def run(self) -> LoadResult:
        """Load every staged file the ledger does not hold yet, in one transaction.

        Called again on the same instance (the passes of a load that runs alongside
        the extract, :mod:`src.pipeline.load_alongside`), each call takes the files
        staged since, and :attr:`result` adds up the passes.
        """
        result = self.result
        self.quarantined = []  # set aside by this pass
        begin = time.perf_counter()
        wm = self.watermarks.read()
        if not (wm.backup_s3_files or self.deletions):
            return self._nothing_staged(wm, begin)
        try:
            with ExitStack() as stack:
                conn = stack.enter_context(self.connect())
                self.ledger.ensure(conn)
                self._repair_from_ledger(conn, wm, result)
                with self.watermarks.lock:
                    pending = list(wm.backup_s3_files)
                if pending or self.deletions:
                    self._load(conn, stack, wm, pending, result)
                if self.quarantined:
                    raise quarantine_error(
                        self.table_name,
                        self.pipeline.name,
                        self.quarantined,
                        result.files,
                        self._replaces(),
                    )
                warn_if_quarantined(wm, self.table_name, self.pipeline.name)
        except BaseException as exc:
            self.watermarks.record_failure("redshift_state", exc)
            raise
        finally:
            result.seconds += time.perf_counter() - begin
        with self.watermarks.changing() as wm:
            wm.redshift_state.finish()
        return result

    def _nothing_staged(self, wm: Watermark, begin: float) -> LoadResult:
        """Nothing to load: no connection, and no write unless the state said otherwise.

        The everyday run of a quiet table; skipping the target saves a connection
        (a tunnel, on a bastion) and a watermark write per table.
        """
        warn_if_quarantined(wm, self.table_name, self.pipeline.name)
        state = wm.redshift_state
        with self.watermarks.lock:
            if state.status != "success" or state.error is not None:
                state.finish()
                self.watermarks.write(wm)
        self.result.seconds += time.perf_counter() - begin
        return self.result

    # ---------------------------------------------------------------- ledger
    def ledger_files(self) -> list[tuple[str, int]]:
        """``(file_key, rows)`` of every file the ledger holds for this table, oldest first."""
        with self.connect() as conn:
            found = self.ledger.files(conn, self.run_context.scoped_name)
            conn.rollback()
        return found

    def clear_target(self) -> int:
        """Delete the target table's rows and its ledger rows, in one transaction.

        For ``watermark reset --reinitialize`` of an append table: re-extracted
        rows would otherwise be appended a second time. Returns the rows deleted.
        """
        with self.connect() as conn:
            deleted = self.target.delete_rows(conn)
            if self.ledger.exists(conn):
                with conn.cursor() as cur:
                    self.ledger.forget(cur, self.run_context.scoped_name)
            conn.commit()
        return deleted

    def _repair_from_ledger(self, conn: Any, wm: Watermark, result: LoadResult) -> None:
        """Files the ledger holds but the watermark still lists: loaded, just not recorded."""
        loaded = self.ledger.loaded_among(conn, wm.backup_s3_files)
        lagging = [uri for uri in wm.backup_s3_files if uri in loaded]
        if not lagging:
            return
        log.warning(
            "watermark lagged the ledger; repaired without loading again",
            table=self.table_name,
            files=len(lagging),
        )
        with self.watermarks.changing() as wm:
            wm.mark_processed(lagging)
        result.repaired_files += len(lagging)

    # ------------------------------------------------------------------ load
    def _load(
        self, conn: Any, stack: ExitStack, wm: Watermark, pending: list[str], result: LoadResult
    ) -> None:
        pending, superseded = self._snapshot_files(wm, pending)
        replace = self._replaces()
        live = [conn]  # the load's connection; a retry after a lost one opens a new one
        while True:
            check = verify_staged(self.stage, self.run_context.data_prefix, pending, wm.file_checks)
            corrupt = check.corrupt  # unreadable footers; a damaged page shows in the COPY
            if not corrupt:
                try:
                    groups = group_by_schema(check.refs)
                    self.target.apply_ddl(live[0], [s for s, _ in groups], self.deletions)
                    rows = self._with_retries(live, stack, wm, groups, superseded, result)
                    break
                except CorruptStagedFile as damaged:
                    if not getattr(live[0], "closed", 0):
                        live[0].rollback()
                    corrupt = [damaged]
            with self.watermarks.changing() as wm:
                for bad in corrupt:
                    bound = position_from(self.stage, check.listed, pending, bad.uri)
                    self.quarantined.append(set_aside(wm, bad, self.table_name, bound))
            gone = {bad.uri for bad in corrupt}
            pending = [u for u in pending if u not in gone]
            if replace:
                return  # a snapshot without all its files must not replace the target
        refs = [ref for ref, _ in check.refs]
        fault_point("after_load_commit")
        result.rows += rows
        result.files += len(refs)
        result.superseded_files += len(superseded)
        with self.watermarks.changing() as wm:
            wm.mark_processed([r.uri for r in refs] + superseded)
            if replace and refs:
                wm.quarantined_s3_files = []  # a whole newer snapshot replaced their rows
            state = wm.redshift_state
            state.target_table = self.target.qualified
            state.total_rows += rows
            state.last_session_rows = result.rows  # this run's passes
            state.last_loaded_files = [r.uri for r in refs]
        log.info("loaded", table=self.table_name, rows=rows, files=len(refs))

    def _replaces(self) -> bool:
        return self.table.cdc_strategy == "full_sync" and self.table.full_sync_mode == "replace"

    def _with_retries(
        self,
        live: list[Any],
        stack: ExitStack,
        wm: Watermark,
        groups: list[tuple[TableSchema, list[StagedFileRef]]],
        superseded: list[str],
        result: LoadResult,
    ) -> int:
        """The load transaction, retried from its start after a transient failure.

        A concurrent writer's abort or a lost connection (then on a new connection,
        left in ``live[0]``) is retried up to ``processing.retries.attempts`` times;
        the ledger makes a retried load exact. Anything else is final.
        """
        uris = [f.uri for _, files in groups for f in files]

        def attempt() -> int:
            if getattr(live[0], "closed", 0):
                live[0] = stack.enter_context(self.connect())
                # A connection lost at COMMIT leaves its outcome unknown: the ledger knows.
                if uris and self.ledger.loaded_among(live[0], uris[:1]):
                    live[0].rollback()
                    return sum(f.rows for _, files in groups for f in files)
            return self._transaction(live[0], wm, groups, superseded, result)

        def before_retry(state: RetryCallState) -> None:
            result.retries += 1
            if not getattr(live[0], "closed", 0):
                live[0].rollback()
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            log.warning(
                "load retried",
                table=self.table_name,
                retry=result.retries,
                of=self.retries.attempts,
                error=str(error),
            )

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retries.attempts + 1),
            wait=lambda state: self.retries.wait(state.attempt_number),
            before_sleep=before_retry,
            reraise=True,
        )
        try:
            return int(retrying(attempt))
        except BackupError as exc:
            if not (result.retries and is_transient(exc)):
                raise
            raise type(exc)(f"{exc} (gave up after {result.retries} retries)") from None

    def _snapshot_files(self, wm: Watermark, pending: list[str]) -> tuple[list[str], list[str]]:
        """``full_sync replace`` loads only the latest complete snapshot; older ones are moot."""
        if not self._replaces():
            return pending, []
        state = wm.mysql_state
        if state.status != "success" or not state.execution_id:
            return [], []  # the last snapshot is incomplete: replace with nothing yet
        suffix = "_" + execution_suffix(state.execution_id) + "_"
        latest = [u for u in pending if suffix in u.rsplit("/", 1)[-1]]
        return latest, [u for u in pending if u not in latest]

    def _transaction(
        self,
        conn: Any,
        wm: Watermark,
        groups: list[tuple[TableSchema, list[StagedFileRef]]],
        superseded: list[str],
        result: LoadResult,
    ) -> int:
        total = 0
        with conn.cursor() as cur:
            try:
                for n, (schema, files) in enumerate(groups):
                    target_cols = self.target.columns(cur)
                    total += self.writer.write(cur, schema, files, target_cols, n)
                if self.deletions is not None:
                    result.deleted_rows = self.deletions.apply(
                        cur, self.target_schema, self.target_table
                    )
                fault_point("before_ledger_insert")
                loaded = [(f.uri, f.rows) for _, files in groups for f in files]
                loaded += [(uri, 0) for uri in superseded]  # recorded, never loaded
                self.ledger.insert(cur, wm.table_name, loaded, self.execution_id)
                fault_point("before_load_commit")
                self.watermarks.check_guard()  # a run that lost its lock commits nothing
                conn.commit()
            except BackupError:
                raise
            except Exception as exc:
                raise self._driver_error(exc) from None
        return total

    def _driver_error(self, exc: Exception) -> LoadError:
        """The driver's error during the load transaction as ours (both: nothing committed)."""
        cfg = self.target_cfg
        doing = f"loading {self.table_name} into {cfg.type} target {self.pipeline.target}"
        if connection_failed(exc):
            return TargetConnectionLost(
                f"{doing}: the connection to {cfg.host}:{cfg.effective_port} was lost "
                f"({first_line(exc)}); nothing was committed; check the server and the "
                "network, then run again"
            )
        return self.dialect.classify(exc, doing)

    def ddl_changes(self, cur: Any, schema: TableSchema) -> list[str]:
        """CREATE TABLE, or the ADD COLUMN / widening statements the staged schema needs."""
        return self.target.ddl_changes(cur, schema)

    def plan(self) -> tuple[list[str], list[str]]:
        """``(files that would load, DDL it would run)`` without changing anything."""
        wm = self.watermarks.read()
        with self.connect() as conn:
            staged = list(wm.backup_s3_files)
            loaded = self.ledger.loaded_among(conn, staged) if self.ledger.exists(conn) else set()
            pending = [u for u in wm.backup_s3_files if u not in loaded]
            pending, _ = self._snapshot_files(wm, pending)
            ddl: list[str] = []
            if pending:
                check = verify_staged(
                    self.stage, self.run_context.data_prefix, pending, wm.file_checks
                )
                if check.corrupt:
                    raise check.corrupt[0]  # a real run would quarantine it
                with conn.cursor() as cur:
                    for schema, _files in group_by_schema(check.refs):
                        ddl.extend(self.ddl_changes(cur, schema))
            conn.rollback()
        return pending, ddl
