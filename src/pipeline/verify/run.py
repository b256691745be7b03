"""``verify``: prove each table's target rows equal its source rows, or name the keys that differ.

Read-only (``--repair`` aside): the table's schema comes from MySQL, its
scope from the watermark, and two connections per side compare it
(:mod:`src.pipeline.verify.compare`). Only rows whose cursor lies below the
watermark (less ``--grace`` seconds) are compared: rows changed since the last
sync are not yet expected in the target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from typing import Any

from src.backup.plan import table_strategy
from src.backup.source_digest import MySQLDigest
from src.config.connection_registry import get_pipeline, get_table
from src.config.settings import AppConfig, PipelineConfig, resolve_null_cursor
from src.core.connections import ConnectionManager
from src.core.driver_errors import connection_failed
from src.core.row_compare import DigestPlan, Range, Scope
from src.core.simple_watermark_manager import MySQLState
from src.core.table_run import TableRun, open_table_run
from src.errors import BackupError, DataError, LoadError, SourceConnectionError, first_line
from src.load.deletions import DELETED_AT_COLUMN
from src.load.load_stage import Connect
from src.load.target_digest import TargetDigest
from src.load.targets import make_dialect
from src.pipeline.verify.compare import CompareSettings, Comparison, TableComparer, at_once
from src.pipeline.verify.plan import (
    compared_up_to,
    digest_plan,
    key_list,
    watermark_scope,
    window_scope,
)
from src.pipeline.verify.quarantine_release import release_quarantined
from src.pipeline.verify.repair import KeySpool, RepairRequest, repair_table
from src.pipeline.verify.report import TableVerification, VerifyReport
from src.utils.logging_setup import get_logger
from src.utils.naming import target_table_name
from src.utils.stage_keys import new_execution_id

log = get_logger("verify")
DENSE_KEYS = 4  # keys a row, at most, for a window counted by key (see _counts)
KEYED_COUNT = 1000  # table rows a window row, at least, for a window counted by its keys
KEY_BATCH = 10_000  # keys held at once while the target counts them
EMPTY_WINDOW = (
    "counts: no MySQL row lies in the window (rows at the new watermark's timestamp are "
    "compared by the next sync's window): no key to count in the target"
)


TEXT_KEY_COUNT = (
    "counts: the target orders this key's text by its own collation, so it counted the "
    "keys of MySQL's rows in scope"
)


@dataclass(frozen=True)
class VerifyOptions:
    """What ``verify`` was asked to compare."""

    keys_only: bool = False
    columns: tuple[str, ...] = ()  # source column names; empty: every column
    grace_seconds: float = 0.0
    max_rows_in_memory: int = 10_000  # rows per side read ahead of the merge
    repair: RepairRequest | None = None  # --repair [--dry-run] [--force]
    counts_only: bool = False  # verify_after_load: counts


def run_verify(
    app: AppConfig,
    pipeline_name: str,
    tables: list[str],
    options: VerifyOptions,
    connect: Connect | None = None,
) -> VerifyReport:
    """Compare each requested table (default: every table); a table's error is its result."""
    begin = time.perf_counter()
    pipeline = get_pipeline(app, pipeline_name)
    chosen = tables or sorted(pipeline.tables)
    for table in chosen:
        get_table(pipeline, table)
    report = VerifyReport(pipeline=pipeline_name)
    for table in chosen:
        report.tables[table] = verify_table(app, pipeline, table, options, connect)
    return report.finish(time.perf_counter() - begin)


def verify_table(
    app: AppConfig,
    pipeline: PipelineConfig,
    table: str,
    options: VerifyOptions,
    connect: Connect | None = None,
    *,
    run: TableRun | None = None,
    window: tuple[MySQLState, MySQLState] | None = None,
) -> TableVerification:
    """One table's comparison; an error becomes a ``failed`` result with its exit code.

    ``run``: the open table run of a sync, whose lock the caller holds;
    ``window``: compare only the rows one sync moved the watermark over
    (its state before and after) instead of everything below the watermark.
    """
    begin = time.perf_counter()
    try:
        result = _verify(app, pipeline, table, options, connect, run, window)
    except Exception as exc:  # one table's failure must not stop the others
        error = exc if isinstance(exc, BackupError) else _driver_error(exc)
        if error is None:
            log.exception("verify failed", table=table)
            text, code = f"{type(exc).__name__}: {exc}", 1
        else:
            log.error("verify failed", table=table, error=str(error))
            text, code = str(error), error.exit_code
        result = TableVerification(status="failed", error=text, exit_code=code)
    compared = result.source_rows or result.target_rows
    if result.status == "equal" and not compared and (result.newer_rows or result.null_cursor_rows):
        result.status = "not_ready"  # never "equal" having compared nothing
        result.notes.append(
            "no MySQL row lies at or below the watermark's position yet: nothing was "
            "compared; sync the table (or lower --grace) and verify again"
        )
    result.duration_seconds = round(time.perf_counter() - begin, 3)
    return result


def _verify(
    app: AppConfig,
    pipeline: PipelineConfig,
    table: str,
    options: VerifyOptions,
    connect: Connect | None,
    run: TableRun | None,
    window: tuple[MySQLState, MySQLState] | None,
) -> TableVerification:
    cfg = pipeline.tables[table]
    if cfg.cdc_strategy == "custom_sql":
        note = "custom_sql: the query defines the rows, so there is no source table to compare"
        return TableVerification(status="skipped", notes=[note])
    if run is not None:  # a sync's table run: the sync holds its lock
        return _verify_run(app, pipeline, table, options, connect, run, window, locked=True)
    run = open_table_run(app, pipeline, table, new_execution_id())
    if options.repair and not options.repair.dry_run:
        # Compare and mend under the table's lock, the watermark read under it: a running
        # sync makes the repair exit 7, and no sync loads or moves the table meanwhile.
        with run.lock:
            return _verify_run(app, pipeline, table, options, connect, run, window, locked=True)
    return _verify_run(app, pipeline, table, options, connect, run, window, locked=False)


def _verify_run(
    app: AppConfig,
    pipeline: PipelineConfig,
    table: str,
    options: VerifyOptions,
    connect: Connect | None,
    run: TableRun,
    window: tuple[MySQLState, MySQLState] | None,
    *,
    locked: bool,
) -> TableVerification:
    cfg = pipeline.tables[table]
    wm = run.watermarks.read()
    if wm.backup_s3_files:
        return TableVerification(
            status="not_ready",
            notes=[
                f"{len(wm.backup_s3_files)} staged files are not loaded yet; load them "
                f"(sync pipeline -p {pipeline.name} -t {table} --redshift-only) and verify again"
            ],
        )
    target_cfg = app.targets[pipeline.target]
    target_table = target_table_name(
        run.source_table, cfg.target_name, target_cfg.capabilities.max_identifier_bytes
    )
    manager = ConnectionManager(app)
    open_target: Connect = connect or (lambda: manager.target(pipeline.target))
    with ExitStack() as stack:
        endpoint = stack.enter_context(manager.source_endpoint(pipeline.source))
        mysql = [stack.enter_context(manager.mysql(pipeline.source, endpoint)) for _ in (1, 2)]
        targets = [stack.enter_context(open_target()) for _ in (1, 2)]
        strategy = table_strategy(app, pipeline, table, mysql[0])
        if window is not None:
            scope = window_scope(strategy, *window)
        else:
            # null_cursor: include reads every NULL-cursor row in each run's last pass.
            nulls = resolve_null_cursor(cfg) == "include" and wm.metadata.null_pass is None
            scope = watermark_scope(strategy, wm.mysql_state, options.grace_seconds, nulls)
        if scope is None:
            return TableVerification(
                status="not_ready", notes=["nothing has been synced yet (no watermark position)"]
            )
        present = _target_columns(targets[0], target_cfg.schema_, target_table)
        if not present:
            return TableVerification(
                status="not_ready",
                notes=[f"the target table {target_cfg.schema_}.{target_table} does not exist yet"],
            )
        plan, notes = digest_plan(strategy, scope, present, options.keys_only, options.columns)
        source = MySQLDigest((mysql[0], mysql[1]), strategy.schema, plan, cfg.additional_where)
        dialect = make_dialect(app, pipeline)
        target = TargetDigest(
            (targets[0], targets[1]),
            dialect,
            target_cfg.schema_,
            target_table,
            plan,
            soft_deleted=DELETED_AT_COLUMN in present,
        )
        result = TableVerification(
            status="equal",
            columns_compared=[c.name for c in plan.hashed + plan.fetched],
            compared_up_to=compared_up_to(scope, strategy),
            notes=notes,
        )
        if window is None:
            _outside_scope(result, source, scope)
        if not plan.key or options.counts_only:
            result.method = "counts"
            counted = _counts(source, target, plan, lambda: _estimate(mysql[0], run))
            result.source_rows, result.target_rows, how = counted
            if how:
                result.notes.append(how)
            if not plan.key:
                result.notes.append("counts only: the table has no primary key to compare rows by")
            if result.source_rows != result.target_rows:
                result.status = "different"
            return result
        spool = KeySpool(plan.key) if options.repair else None
        if spool is not None:
            stack.callback(spool.close)
        comparer = TableComparer(
            source,
            target,
            plan,
            CompareSettings(
                leaf_rows=min(CompareSettings.leaf_rows, options.max_rows_in_memory),
                read_ahead=options.max_rows_in_memory,
            ),
            on_keys=spool.add if spool else None,
        )
        comparison = comparer.run(_estimate(mysql[0], run))
        _fill(result, comparison, plan)

        def release(scope: Scope) -> int:
            return release_quarantined(
                run, strategy, scope, mysql[0], plan.key, dialect, connect, locked=locked
            )

        # Whole rows up to the watermark compared (and mended below): quarantined rows too.
        whole = window is None and not (options.keys_only or options.columns)
        if spool is None or options.repair is None or comparison.equal:
            if options.repair and whole and comparison.equal and not options.repair.dry_run:
                result.quarantine_released = release(scope)
            return result
        if cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode == "replace":
            result.notes.append("full_sync replace: the next sync reloads the whole table")
            return result
        result.repair = repair_table(
            run,
            strategy,
            comparison,
            spool,
            dialect,
            connect,
            options.repair,
            locked=locked,
            source_has=lambda keys: set(source.present(keys)),
        )
        if not result.repair.dry_run and result.repair.refused is None:
            result.status = "repaired"
        if whole and not result.repair.dry_run:
            result.quarantine_released = release(scope)
        return result


def _outside_scope(result: TableVerification, source: MySQLDigest, scope: Scope) -> None:
    """Count what the comparison leaves out: rows past the position, rows with a NULL cursor."""
    result.newer_rows = source.newer_count()
    if scope.column is not None and scope.column.nullable and not scope.nulls:
        result.null_cursor_rows = nulls = source.null_count()
        if nulls:
            result.notes.append(
                f"{nulls:,} rows whose {scope.column.name} is NULL are not compared "
                "(null_cursor: exclude leaves them out of the sync)"
            )


def _driver_error(exc: Exception) -> BackupError | None:
    """A database driver's error as ours: a lost connection exits 2, a failed query 4 or 6."""
    import psycopg2
    import pymysql

    if connection_failed(exc):
        return SourceConnectionError(f"verify lost its database connection: {first_line(exc)}")
    if isinstance(exc, pymysql.err.MySQLError):
        return DataError(f"verify's MySQL query failed: {first_line(exc)}")
    if isinstance(exc, psycopg2.Error):
        return LoadError(f"verify's target query failed: {first_line(exc)}")
    return None


def _counts(
    source: MySQLDigest, target: TargetDigest, plan: DigestPlan, table_rows: Callable[[], int]
) -> tuple[int, int, str | None]:
    """Both sides' rows in scope, and how the target counted them (a note, or None).

    A PostgreSQL target has no index on the cursor column, so counting a window
    scans the whole table, every run. When the window's keys are dense (an integer
    key whose range holds at most :data:`DENSE_KEYS` keys a row, as appended rows'
    do), the target counts only from the source's smallest key to its largest, and
    its primary key's index finds them (an appended window of a 2M-row table: 6 ms
    instead of 119-227 ms). A window of spread keys (updates of old rows) at most a
    :data:`KEYED_COUNT`-th of the table (the source's estimate) is counted by its
    keys: the source streams them and the target looks them up by its primary key,
    13-30 µs a key against 0.05-0.1 µs a row for the scan (a 10,000-row window of a
    10M-row target: 0.26-0.32 s instead of 0.49-0.67 s; 110,000 keys of a 2M-row
    target: 1.39 s, its scan 0.19 s). A window without source rows (as when every row
    the sync loaded shares the new watermark's timestamp, which the scope leaves to the
    next window) has no key to count: 0 without a query, where the whole count scanned the
    target to find only rows deleted at the source (0.26-0.35 s on the 2M-row benchmark
    target just after a merge, more on a bigger one, on every such run). Other windows
    keep the whole count (PostgreSQL's planner may misjudge a key range there: a bitmap
    scan of every key took 426 ms).
    A source row missing from the target, or loaded at another version, shows
    every way; a target row outside the source's keys (deleted at the source) is
    for ``--detect-deletes`` to find.
    """
    if not target.exact_scope:  # the target cannot select MySQL's rows: count by key
        return source.row_count(), _count_by_keys(source, target), TEXT_KEY_COUNT
    if not plan.bisectable:
        return (*at_once(source.row_count, target.row_count), None)
    rows, lo, hi = source.count_and_bounds()
    if not rows:
        return 0, 0, EMPTY_WINDOW
    if int(hi) - int(lo) < DENSE_KEYS * rows:
        return rows, target.row_count(Range(int(lo), int(hi) + 1)), None
    if rows * KEYED_COUNT <= (estimate := table_rows()):
        note = f"counts: the target counted the window's {rows:,} keys (~{estimate:,} rows)"
        return rows, _count_by_keys(source, target), note
    return rows, target.row_count(), None


def _count_by_keys(source: MySQLDigest, target: TargetDigest) -> int:
    """The target's rows in scope among the keys of the source's rows in scope."""
    counted, keys = 0, source.keys()
    while batch := list(islice(keys, KEY_BATCH)):
        counted += sum(target.present(batch).values())
    return counted


def _fill(result: TableVerification, comparison: Comparison, plan: DigestPlan) -> None:
    key_names = [c.name for c in plan.key]
    result.method = "checksum" if plan.bisectable else "stream"
    result.source_rows, result.target_rows = comparison.source_rows, comparison.target_rows
    result.missing_in_target = key_list(comparison.missing, key_names)
    result.extra_in_target = key_list(comparison.extra, key_names)
    result.different = key_list(comparison.different, key_names)
    result.not_synced_yet = comparison.not_synced_yet
    result.segments_compared = comparison.segments
    result.rows_fetched = comparison.rows_fetched
    result.status = "equal" if comparison.equal else "different"


def _target_columns(conn: Any, schema: str, table: str) -> dict[str, tuple[str, int | None]]:
    """The target table's columns → (data type, numeric scale); empty: no such table."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        rows = cur.fetchall()
    conn.rollback()
    return {str(name): (str(kind).lower(), scale) for name, kind, scale in rows}


def _estimate(conn: Any, run: TableRun) -> int:
    """information_schema's row estimate (sizes the first split of the key range)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (run.source_schema, run.source_table),
        )
        row = cur.fetchone()
    return int(row[0] or 0) if row else 0
