"""``sync pipeline --dry-run``: what a run would do, touching nothing (SPEC §4).

Reads MySQL (schema, window, estimate), the watermark and the target (ledger,
columns); writes nothing anywhere — no lock, no watermark, no file, no table.
"""

from __future__ import annotations

from typing import Any

from src.backup.backup_stage import TableBackup
from src.backup.mysql_reader import make_reader
from src.config.connection_registry import get_pipeline, get_table
from src.config.settings import AppConfig, resolve_null_cursor
from src.core.table_run import open_table_run
from src.load.load_stage import TableLoad
from src.load.targets import make_dialect
from src.pipeline.sync_runner import SyncOptions
from src.utils.stage_keys import new_execution_id


def dry_run(
    app: AppConfig, pipeline_name: str, tables: list[str], options: SyncOptions
) -> list[dict[str, Any]]:
    """One description per table of what ``sync pipeline`` would do."""
    pipeline = get_pipeline(app, pipeline_name)
    chosen = tables or sorted(pipeline.tables)
    for table in chosen:
        get_table(pipeline, table)
    execution_id = new_execution_id()
    plans = []
    for table in chosen:
        run = open_table_run(app, pipeline, table, execution_id)  # no lock: reads only
        entry: dict[str, Any] = {"table": table}
        schema = None
        if not options.redshift_only:
            backup = TableBackup(run, options.backup_options(execution_id))
            wm = run.watermarks.read()
            with backup.connections.source_endpoint(pipeline.source) as endpoint:
                with backup.connections.mysql(pipeline.source, endpoint) as conn:
                    plan = backup.plan(conn, wm)
                backup.check_position(plan, wm)
                walker, start = backup.walk(wm, plan)
                query = walker.chunk_query(start, plan.window, plan.chunk_size)
                with make_reader(
                    backup.connections.mysql_endpoint(pipeline.source, endpoint), plan.schema
                ) as reader:
                    select = reader.render(query.sql, query.params)
            schema = plan.schema
            entry.update(
                strategy=plan.strategy.kind,
                first_pass=walker.kind == "pk_pass",
                window={
                    "after": {
                        "timestamp": start.ts,
                        "id": start.id,
                        "key": list(start.key),
                        "inclusive": start.ts_inclusive,  # lookback, or an open group read again
                    },
                    "up_to": {
                        "timestamp": getattr(walker, "hi", plan.window.hi_ts),
                        "id": plan.window.hi_id,
                    },
                },
                select=None if plan.nothing_to_do else select,
                chunk_size=plan.chunk_size,
                chunk_size_source=plan.chunk_source,
                rows_per_file=plan.rows_per_file,
                estimated_rows=plan.estimated_rows,
                null_cursor_rows=plan.window.null_cursor_rows,
                null_cursor=resolve_null_cursor(run.config)
                if plan.window.null_cursor_rows
                else None,
            )
        if not options.backup_only:
            load = TableLoad(run, make_dialect(app, pipeline))
            files, ddl = load.plan()
            if not ddl and schema is not None:
                with load.connect() as conn, conn.cursor() as cur:
                    ddl = load.ddl_changes(cur, schema)
                    conn.rollback()
            entry.update(files_to_load=files, target_ddl=ddl)
        plans.append(entry)
    return plans
