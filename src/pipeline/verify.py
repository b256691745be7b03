"""``verify``: prove each table's target rows equal its source rows, or name the keys that differ.

Read-only (``--repair`` aside): the table's schema comes from MySQL, its
scope from the watermark, and two connections per side compare it
(:mod:`src.pipeline.verify_compare`). Only rows whose cursor lies below the
watermark (less ``--grace`` seconds) are compared: rows changed since the last
sync are not yet expected in the target.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from src.backup.keyset import encode_key_value
from src.backup.plan import table_strategy
from src.backup.row_based import RowBasedBackupStrategy
from src.backup.source_digest import MySQLDigest
from src.config.settings import AppConfig, PipelineConfig
from src.core.connection_registry import get_pipeline, get_table
from src.core.connections import ConnectionManager
from src.core.row_compare import DigestPlan, Scope
from src.core.simple_watermark_manager import Watermark
from src.core.table_run import open_table_run
from src.core.table_schema import ColumnSpec
from src.errors import BackupError, ConfigError
from src.load.deletions import DELETED_AT_COLUMN
from src.load.load_stage import Connect
from src.load.target_digest import TargetDigest
from src.pipeline.sync_runner import make_dialect
from src.pipeline.verify_compare import CompareSettings, KeyTally, TableComparer
from src.pipeline.verify_repair import KeySpool, RepairRequest, repair_table
from src.pipeline.verify_report import KeyList, TableVerification, VerifyReport
from src.utils.logging_setup import get_logger
from src.utils.naming import IDENTIFIER_LIMITS, new_execution_id, target_table_name

log = get_logger("verify")


@dataclass(frozen=True)
class VerifyOptions:
    """What ``verify`` was asked to compare."""

    keys_only: bool = False
    columns: tuple[str, ...] = ()  # source column names; empty: every column
    grace_seconds: float = 0.0
    leaf_rows: int = 10_000  # --max-rows-in-memory
    repair: RepairRequest | None = None  # --repair [--dry-run] [--force]


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
) -> TableVerification:
    """One table's comparison; an error becomes a ``failed`` result with its exit code."""
    begin = time.perf_counter()
    try:
        result = _verify(app, pipeline, table, options, connect)
    except BackupError as exc:
        log.error("verify failed", table=table, error=str(exc))
        result = TableVerification(status="failed", error=str(exc), exit_code=exc.exit_code)
    except Exception as exc:  # one table's bug must not stop the others
        log.exception("verify failed", table=table)
        result = TableVerification(
            status="failed", error=f"{type(exc).__name__}: {exc}", exit_code=1
        )
    result.duration_seconds = round(time.perf_counter() - begin, 3)
    return result


def _verify(
    app: AppConfig,
    pipeline: PipelineConfig,
    table: str,
    options: VerifyOptions,
    connect: Connect | None,
) -> TableVerification:
    cfg = pipeline.tables[table]
    if cfg.cdc_strategy == "custom_sql":
        note = "custom_sql: the query defines the rows, so there is no source table to compare"
        return TableVerification(status="skipped", notes=[note])
    run = open_table_run(app, pipeline, table, new_execution_id())
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
        run.source_table, cfg.target_name, IDENTIFIER_LIMITS[target_cfg.type]
    )
    manager = ConnectionManager(app)
    open_target: Connect = connect or (lambda: manager.target(pipeline.target))
    with ExitStack() as stack:
        endpoint = stack.enter_context(manager.source_endpoint(pipeline.source))
        mysql = [stack.enter_context(manager.mysql(pipeline.source, endpoint)) for _ in (1, 2)]
        targets = [stack.enter_context(open_target()) for _ in (1, 2)]
        strategy = table_strategy(app, pipeline, table, mysql[0])
        scope = _scope(strategy, wm, options.grace_seconds)
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
        plan, notes = _plan(strategy, scope, present, options)
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
            compared_up_to=_compared_up_to(scope, strategy),
            notes=notes,
        )
        if not plan.key:
            result.method = "counts"
            result.source_rows, result.target_rows = source.row_count(), target.row_count()
            result.notes.append("counts only: the table has no primary key to compare rows by")
            if result.source_rows != result.target_rows:
                result.status = "different"
            return result
        settings = CompareSettings(leaf_rows=options.leaf_rows)
        spool = KeySpool(plan.key) if options.repair else None
        if spool is not None:
            stack.callback(spool.close)
        comparer = TableComparer(
            source, target, plan, settings, on_keys=spool.add if spool else None
        )
        comparison = comparer.run(_estimate(mysql[0], run))
        key_names = [c.name for c in plan.key]
        result.method = "checksum" if plan.bisectable else "stream"
        result.source_rows, result.target_rows = comparison.source_rows, comparison.target_rows
        result.missing_in_target = _keys(comparison.missing, key_names)
        result.extra_in_target = _keys(comparison.extra, key_names)
        result.different = _keys(comparison.different, key_names)
        result.not_synced_yet = comparison.not_synced_yet
        result.segments_compared = comparison.segments
        result.rows_fetched = comparison.rows_fetched
        result.status = "equal" if comparison.equal else "different"
        if spool is not None and options.repair is not None and not comparison.equal:
            if cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode == "replace":
                result.notes.append("full_sync replace: the next sync reloads the whole table")
                return result
            result.repair = repair_table(
                run, strategy, comparison, spool, dialect, connect, options.repair
            )
            if not result.repair.dry_run and result.repair.refused is None:
                result.status = "repaired"
        return result


def _scope(strategy: RowBasedBackupStrategy, wm: Watermark, grace: float) -> Scope | None:
    """The rows in sync by now; None when nothing has been synced."""
    schema, state = strategy.schema, wm.mysql_state
    if strategy.kind == "full_sync":
        return Scope()
    if strategy.ts_col is not None:
        bound = strategy.ts_from_watermark(state.last_timestamp)
        if bound is None:
            return None
        if grace:
            step = dt.timedelta(seconds=grace)
            bound = bound - int(grace) if isinstance(bound, int) else bound - step
        # Strictly below: rows sharing the watermark's timestamp may be only partly synced.
        return Scope(schema.column(strategy.ts_col), bound)
    if state.last_id is None or strategy.id_col is None:
        return None
    return Scope(schema.column(strategy.id_col), state.last_id, inclusive=True)


def _compared_up_to(scope: Scope, strategy: RowBasedBackupStrategy) -> dict[str, Any]:
    if scope.column is None:
        return {}
    bound = encode_key_value(scope.bound)
    if scope.column.name == strategy.ts_col:
        return {"last_timestamp": bound, "inclusive": scope.inclusive}
    return {"last_id": bound, "inclusive": scope.inclusive}


def _plan(
    strategy: RowBasedBackupStrategy,
    scope: Scope,
    present: dict[str, str],
    options: VerifyOptions,
) -> tuple[DigestPlan, list[str]]:
    """The key and the columns both sides have; notes for what is left out."""
    schema, notes = strategy.schema, []
    key = tuple(schema.column(name) for name in strategy.primary_key)
    missing_key = [c.name for c in key if c.target_name not in present]
    if missing_key:
        raise ConfigError(
            f"table {schema.qualified_name}: key columns {missing_key} are not in the target table"
        )
    wanted = set(options.columns)
    unknown = wanted - {c.name for c in schema.columns}
    if unknown:
        raise ConfigError(
            f"--columns names columns {sorted(unknown)} that {schema.qualified_name} lacks"
        )
    columns: list[ColumnSpec] = []
    for col in schema.columns:
        if col.target_name not in present:
            notes.append(f"column {col.name} is not in the target yet (not compared)")
        elif col in key or (not options.keys_only and (not wanted or col.name in wanted)):
            columns.append(col)
    fetched = tuple(c for c in columns if present[c.target_name] == "jsonb")
    if fetched:
        notes.append(
            "JSON columns stored as JSONB are compared as parsed JSON in Python: every row "
            "is fetched (JSONB does not keep the text)"
        )
    hashed = tuple(c for c in columns if c not in fetched)
    if scope.column is not None and scope.column.target_name not in present:
        raise ConfigError(f"cursor column {scope.column.name} is not in the target table")
    plan = DigestPlan(key=key, hashed=hashed, fetched=fetched, scope=scope, policy=schema.policy)
    return plan, notes


def _target_columns(conn: Any, schema: str, table: str) -> dict[str, str]:
    """The target table's columns → data type (empty when the table does not exist)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        rows = cur.fetchall()
    conn.rollback()
    return {str(name): str(kind).lower() for name, kind in rows}


def _estimate(conn: Any, run: Any) -> int:
    """information_schema's row estimate (sizes the first split of the key range)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (run.source_schema, run.source_table),
        )
        row = cur.fetchone()
    return int(row[0] or 0) if row else 0


def _keys(tally: KeyTally, names: list[str]) -> KeyList:
    return KeyList(
        count=tally.count,
        keys=[
            {n: encode_key_value(v) for n, v in zip(names, key, strict=True)} for key in tally.keys
        ],
    )
