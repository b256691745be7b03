"""``sync pipeline``: run the stages for each requested table, each table isolated.

For every table: take the table's lock, then the backup stage (unless
``redshift_only``) and the load stage (unless ``backup_only``). A failing
table is recorded with its error and exit code; the others go on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from src.backup.backup_stage import TableBackup
from src.backup.plan import BackupOptions, BackupResult
from src.config.connection_registry import get_pipeline, get_table
from src.config.settings import AppConfig, PipelineConfig, TableConfig
from src.core.connections import ConnectionManager, ReusedConnection
from src.core.simple_watermark_manager import MySQLState
from src.core.table_run import TableRun, open_table_run
from src.errors import BackupError, ConfigError, DataError, PartialFailure
from src.load.load_stage import Connect, LoadResult, TableLoad
from src.load.targets import make_dialect
from src.pipeline.load_alongside import LoadAlongside
from src.utils.logging_setup import get_logger
from src.utils.stage_keys import new_execution_id

if TYPE_CHECKING:
    from src.pipeline.verify.report import TableVerification

log = get_logger("sync")


@dataclass(frozen=True)
class SyncOptions:
    """What ``sync pipeline`` was asked to do."""

    backup_only: bool = False
    redshift_only: bool = False
    limit: int | None = None
    max_chunks: int | None = None
    reader: str = "auto"
    parallel: int | None = None  # None: the pipeline's processing.max_parallel_tables
    detect_deletes: bool = False  # also every table's detect_deletes option

    def backup_options(self, execution_id: str) -> BackupOptions:
        """The backup stage's share of these options."""
        return BackupOptions(execution_id, self.limit, self.max_chunks, self.reader)


@dataclass
class TableOutcome:
    """One table's result in a run."""

    table: str
    status: str = "success"
    backup: BackupResult | None = None
    load: LoadResult | None = None
    watermark_before: dict[str, Any] = field(default_factory=dict)
    watermark_after: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    completed_at: str = ""
    verification: TableVerification | None = None  # verify_after_load
    deletes: TableVerification | None = None  # --detect-deletes
    warnings: list[str] = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    exit_code: int = 0


@dataclass
class SyncRun:
    """The whole run."""

    execution_id: str
    pipeline: str
    mode: str
    tables: list[str]
    start_time: dt.datetime
    end_time: dt.datetime | None = None
    outcomes: dict[str, TableOutcome] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0, 3 when some tables failed, or the one failure's code when all failed."""
        failed = [o for o in self.outcomes.values() if o.status != "success"]
        if not failed:
            return 0
        if len(failed) < len(self.outcomes):
            return PartialFailure.exit_code
        codes = {o.exit_code for o in failed}
        return codes.pop() if len(codes) == 1 else PartialFailure.exit_code


def run_sync(
    app: AppConfig,
    pipeline_name: str,
    tables: list[str],
    options: SyncOptions,
    on_table_done: Callable[[TableOutcome], None] | None = None,
    connect: Connect | None = None,
    on_progress: Callable[[BackupResult], None] | None = None,
    on_loaded: Callable[[LoadResult], None] | None = None,
) -> SyncRun:
    """Run the requested stages for each table, up to ``parallel`` at once.

    Tables are isolated: one table's failure is recorded in its outcome and
    never stops the others (nor raises here).
    """
    if options.backup_only and options.redshift_only:
        raise ConfigError("--backup-only and --redshift-only cannot be used together")
    pipeline = get_pipeline(app, pipeline_name)
    chosen = tables or sorted(pipeline.tables)
    for table in chosen:
        get_table(pipeline, table)
    mode = (
        "backup_only"
        if options.backup_only
        else "redshift_only"
        if options.redshift_only
        else "full"
    )
    run = SyncRun(new_execution_id(), pipeline_name, mode, chosen, dt.datetime.now(dt.UTC))
    workers = max(
        1, min(options.parallel or pipeline.processing.max_parallel_tables or 1, len(chosen))
    )

    def one(table: str) -> TableOutcome:
        outcome = _run_table(
            app, pipeline, table, options, run.execution_id, connect, on_progress, on_loaded
        )
        if on_table_done:
            on_table_done(outcome)
        return outcome

    if workers == 1:
        outcomes = [one(table) for table in chosen]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="table") as pool:
            outcomes = list(pool.map(one, chosen))
    run.outcomes = {o.table: o for o in outcomes}
    run.end_time = dt.datetime.now(dt.UTC)
    return run


def _run_table(
    app: AppConfig,
    pipeline: PipelineConfig,
    table: str,
    options: SyncOptions,
    execution_id: str,
    connect: Connect | None,
    on_progress: Callable[[BackupResult], None] | None,
    on_loaded: Callable[[LoadResult], None] | None,
) -> TableOutcome:
    outcome = TableOutcome(table)
    begin = time.perf_counter()
    reused = ReusedConnection(connect or (lambda: ConnectionManager(app).target(pipeline.target)))
    connect = reused  # one target connection for the table's steps
    try:
        run = open_table_run(app, pipeline, table, execution_id)
        with run.lock, contextlib.closing(reused):
            outcome.watermark_before = _position(run)
            before = run.watermarks.read().mysql_state.model_copy()
            stored = run.watermarks.exists()
            load = None
            if not options.backup_only or not stored:
                load = TableLoad(run, make_dialect(app, pipeline), connect)
                loaded_into = run.watermarks.read().redshift_state.target_table
                load.target.check_identity(loaded_into, pipeline.name)  # before staging
            alongside = None
            if not options.redshift_only:
                if not stored and load is not None:
                    _refuse_lost_watermark(run, load)
                if load is not None and not options.backup_only and _overlaps(run.config):
                    alongside = LoadAlongside(load, on_loaded)
                backup = TableBackup(
                    run,
                    options.backup_options(execution_id),
                    on_progress,
                    on_staged=alongside.staged if alongside else None,
                    load_waiting=alongside.waiting if alongside else None,
                )
                try:
                    if alongside is not None:
                        alongside.start()
                    backup.run()
                except BaseException as exc:
                    if alongside is not None:
                        _stop_quietly(alongside, outcome, exc)
                    raise
                finally:  # a failed run's report counts what it recorded before failing
                    outcome.backup = backup.result
            if not options.backup_only and load is not None:
                try:
                    if alongside is not None:
                        alongside.finish(last_pass=True)
                    else:
                        load.run()
                finally:
                    outcome.load = load.result
                _after_load(run, options, before, outcome, connect)
            outcome.watermark_after = _position(run)
    except BackupError as exc:
        outcome.status, outcome.exit_code = "failed", exc.exit_code
        outcome.error_type, outcome.error_message = type(exc).__name__, str(exc)
        log.error("table failed", table=table, error=str(exc))
    except Exception as exc:  # one table's bug must not stop the others
        outcome.status, outcome.exit_code = "failed", 1
        outcome.error_type, outcome.error_message = type(exc).__name__, str(exc)
        log.exception("table failed", table=table)
    outcome.seconds = time.perf_counter() - begin
    outcome.completed_at = dt.datetime.now(dt.UTC).isoformat()
    return outcome


def _after_load(
    run: TableRun,
    options: SyncOptions,
    before: MySQLState,
    outcome: TableOutcome,
    connect: Connect | None,
) -> None:
    """verify_after_load on the window just loaded; then --detect-deletes (docs/verify.md)."""
    cfg, after = run.config, run.watermarks.read().mysql_state
    moved = (before.last_timestamp, before.last_id) != (after.last_timestamp, after.last_id)
    mode = cfg.verify_after_load
    detect = options.detect_deletes or cfg.detect_deletes
    check_window = mode != "none" and cfg.cdc_strategy != "custom_sql" and (moved or _whole(cfg))
    if not (check_window or detect):
        return  # nothing new: nothing to check (and the verify modules stay unimported)
    from src.pipeline.verify.repair import RepairRequest
    from src.pipeline.verify.run import VerifyOptions, verify_table

    if check_window:
        check = verify_table(
            run.app,
            run.pipeline,
            run.table,
            VerifyOptions(counts_only=mode == "counts"),
            connect,
            run=run,
            window=(before, after),
        )
        outcome.verification = check
        if check.status != "equal":
            message = (
                f"verify_after_load ({mode}): the rows just loaded differ: "
                f"{check.source_rows} in MySQL, {check.target_rows} in the target"
                + (f" ({check.error})" if check.error else "")
            )
            if cfg.verify_after_load_fails:
                raise DataError(f"table {run.table}: {message}")
            outcome.warnings.append(message)
            log.warning(message, table=run.table)
    if detect:
        outcome.deletes = verify_table(
            run.app,
            run.pipeline,
            run.table,
            VerifyOptions(keys_only=True, repair=RepairRequest(deletes_only=True)),
            connect,
            run=run,
        )
        deletes = outcome.deletes
        refused = deletes.repair.refused if deletes.repair else None
        if refused:  # the rows stay; a scheduler must see it
            raise DataError(
                f"table {run.table}: --detect-deletes refused: {refused} (with "
                f"'verify -p {run.pipeline.name} -t {run.table} --repair --force')"
            )
        if deletes.status == "failed":
            failure = BackupError(f"table {run.table}: --detect-deletes failed: {deletes.error}")
            failure.exit_code = deletes.exit_code or DataError.exit_code
            raise failure


def _overlaps(cfg: TableConfig) -> bool:
    """Whether the load runs alongside the extract: not for a ``full_sync replace``,
    whose snapshot replaces the target only once it is whole."""
    return not (cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode == "replace")


def _stop_quietly(alongside: LoadAlongside, outcome: TableOutcome, error: BaseException) -> None:
    """The backup failed with ``error``: end the load passes (what they loaded stays);
    keep the backup's error (which is the load's when a failed pass stopped the backup)."""
    try:
        alongside.finish(last_pass=False)
    except Exception as exc:  # the backup's error is the table's; this one is logged
        if exc is not error:
            log.error("load alongside the extract failed", table=outcome.table, error=str(exc))
    finally:
        outcome.load = alongside.load.result


def _whole(cfg: TableConfig) -> bool:
    """full_sync reloads or pages the whole table: its window is the table."""
    return cfg.cdc_strategy == "full_sync"


def _refuse_lost_watermark(run: TableRun, load: TableLoad) -> None:
    """DataError when the table has no watermark but the target's ledger lists loaded files.

    The watermark was lost (the stage emptied or changed, the key moved): a
    first run now would extract the whole table again, and an append table
    would hold every row twice. ``full_sync`` replace/append re-read the whole
    table every run anyway.
    """
    cfg, table, pipeline, watermarks = run.config, run.table, run.pipeline, run.watermarks
    if cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode != "paginate":
        return
    loaded = load.ledger_files()
    if not loaded:
        return
    where = watermarks.stage.uri(watermarks.key)
    ledger = f"{load.target_schema}.s3_backup_load_ledger"
    how = f"-t {table} -p {pipeline.name}"
    raise DataError(
        f"table {table} has no watermark ({where}) but the target's ledger {ledger} lists "
        f"{len(loaded)} loaded files for it: the watermark was lost, and nothing was read. "
        f"Rebuild it from the ledger and the staged files with 'watermark rebuild {how}', "
        f"or start over with 'watermark reset {how} --reinitialize'"
    )


def _position(run: TableRun) -> dict[str, Any]:
    state = run.watermarks.read().mysql_state
    return {"last_timestamp": state.last_timestamp, "last_id": state.last_id}
