"""``sync pipeline``: back up and load the tables of a pipeline."""

from __future__ import annotations

from typing import Any

import click

from src.cli.context import (
    AppContext,
    emit_json,
    info,
    pass_app,
    pipeline_option,
    table_option,
)


@click.group("sync")
def sync_group() -> None:
    """Run pipelines."""


@sync_group.command("pipeline")
@pipeline_option(required=True)
@table_option(multiple=True, required=False)
@click.option("--backup-only", is_flag=True, help="Only MySQL -> stage.")
@click.option("--redshift-only", is_flag=True, help="Only stage -> target (no MySQL needed).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N rows extracted this run.")
@click.option("--max-chunks", type=click.IntRange(min=1), help="At most M chunks this run.")
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="Tables at once (default: processing.max_parallel_tables, else 1).",
)
@click.option(
    "--json-output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the JSON run report to PATH ('-' = stdout).",
)
@click.option("--s3-completion-bucket", help="Also write completion markers to this bucket.")
@click.option(
    "--reader",
    type=click.Choice(["auto", "connectorx", "pymysql"]),
    default="auto",
    show_default=True,
    help="MySQL reader (auto = connectorx when it can carry the table).",
)
@click.option(
    "--detect-deletes",
    is_flag=True,
    help="After the load, compare keys and delete target rows gone from MySQL "
    "(max_delete_fraction guard).",
)
@pass_app
def sync_pipeline(
    ctx: AppContext,
    pipeline: str,
    tables: tuple[str, ...],
    backup_only: bool,
    redshift_only: bool,
    limit: int | None,
    max_chunks: int | None,
    dry_run: bool,
    parallel: int | None,
    json_output: str | None,
    s3_completion_bucket: str | None,
    reader: str,
    detect_deletes: bool,
) -> int:
    """Copy tables of PIPELINE from MySQL through the stage into the target.

    Each -t (repeatable; default: every table of the pipeline) runs in
    isolation: exit 0 when all succeed, 3 when some fail, else the failure's
    code (the exit codes are listed in README.md). A run stopped by --limit
    or --max-chunks is a success; the next run resumes where it stopped.
    With both stages, each table's load runs alongside its extract, one
    transaction per pass over the files staged so far.
    """
    from src.pipeline.sync_runner import SyncOptions

    if backup_only and redshift_only:
        raise click.UsageError("--backup-only and --redshift-only are mutually exclusive")
    options = SyncOptions(
        backup_only=backup_only,
        redshift_only=redshift_only,
        limit=limit,
        max_chunks=max_chunks,
        reader=reader,
        parallel=parallel,
        detect_deletes=detect_deletes,
    )
    if dry_run:
        return _dry_run(ctx, pipeline, list(tables), options, json_output)
    return _run(ctx, pipeline, list(tables), options, json_output, s3_completion_bucket)


def _run(
    ctx: AppContext,
    pipeline: str,
    tables: list[str],
    options: Any,
    json_output: str | None,
    completion_bucket: str | None,
) -> int:
    from src.cli.progress import LiveProgress
    from src.config.connection_registry import get_pipeline
    from src.pipeline.sync_runner import TableOutcome, run_sync

    progress = LiveProgress()

    def done(outcome: TableOutcome) -> None:
        progress.done(outcome.table)
        if outcome.status != "success":
            info(f"✗ {outcome.table}: {outcome.error_message}")
            return
        parts = []
        b, loaded = outcome.backup, outcome.load
        if b is not None:
            parts.append(
                f"{b.rows:,} rows extracted, {b.files} files, {b.bytes:,} bytes "
                f"({b.rows_per_second:,.0f} rows/s)"
                + (f", stopped by --{b.stopped_by.replace('_', '-')}" if b.stopped_by else "")
            )
        if loaded is not None:
            parts.append(f"{loaded.rows:,} rows loaded from {loaded.files} files")
        info(f"✓ {outcome.table}: {'; '.join(parts)}; {outcome.seconds:.1f}s")

    app = ctx.config()
    try:
        run = run_sync(
            app,
            pipeline,
            tables,
            options,
            on_table_done=done,
            on_progress=progress.update,
            on_loaded=progress.loaded,
        )
    finally:
        progress.close()
    if json_output or completion_bucket:  # the report's models cost 7-19 ms to import
        from src.pipeline.run_report import build_report, write_completion_markers, write_report

        report = build_report(run)
        if json_output == "-":
            emit_json(report)
        elif json_output:
            write_report(json_output, report)
        if completion_bucket:
            write_completion_markers(app, get_pipeline(app, pipeline), completion_bucket, report)
    failed = [o for o in run.outcomes.values() if o.status != "success"]
    if failed:
        from src.utils.logging_setup import scrub_text

        more = f" (and {len(failed) - 1} more; see the ✗ lines)" if len(failed) > 1 else ""
        first = failed[0]
        click.echo(scrub_text(f"Error: {first.table}: {first.error_message}{more}"), err=True)
    return run.exit_code


def _dry_run(
    ctx: AppContext, pipeline: str, tables: list[str], options: Any, json_output: str | None
) -> int:
    from src.pipeline.dry_run import dry_run
    from src.pipeline.run_report import write_report

    plans = dry_run(ctx.config(), pipeline, tables, options)
    if json_output == "-":
        emit_json({"dry_run": True, "pipeline": pipeline, "tables": plans})
        return 0
    if json_output:
        write_report(json_output, {"dry_run": True, "pipeline": pipeline, "tables": plans})
    for plan in plans:
        click.echo(f"{plan['table']} (dry run: nothing is changed)")
        if "strategy" in plan:
            window = plan["window"]
            pass_note = " (first run, reading in primary-key order)" if plan["first_pass"] else ""
            click.echo(f"  strategy: {plan['strategy']}{pass_note}")
            since = "from" if window["after"].get("inclusive") else "after"
            click.echo(
                f"  window: {since} {_bound(window['after'], 'the start of the table')} "
                f"up to {_bound(window['up_to'], 'the end of the table')}"
            )
            click.echo(f"  select: {plan['select'] or '(nothing new: no query)'}")
            click.echo(
                f"  chunk size: {plan['chunk_size']:,} ({plan['chunk_size_source']}); "
                f"rows per file: {plan['rows_per_file']:,}"
            )
            click.echo(
                f"  estimated rows: {plan['estimated_rows']:,} (information_schema); "
                f"NULL cursor rows: {plan['null_cursor_rows']:,}"
                + (f" (null_cursor: {plan['null_cursor']})" if plan.get("null_cursor") else "")
            )
        if "files_to_load" in plan:
            ddl = plan["target_ddl"]
            click.echo("  target DDL: " + ("(none: the table is up to date)" if not ddl else ""))
            for statement in ddl:
                click.echo("    " + statement.replace("\n", "\n    "))
            click.echo(f"  files to load now: {len(plan['files_to_load'])}")
            for uri in plan["files_to_load"]:
                click.echo(f"    {uri}")
    return 0


def _bound(bound: dict[str, Any], unknown: str) -> str:
    """One end of a window in words: no ``None`` where a value is unknown."""
    parts = []
    if bound.get("timestamp") is not None:
        parts.append(str(bound["timestamp"]))
    key = bound.get("key") or ([bound["id"]] if bound.get("id") is not None else [])
    if key:
        parts.append("key " + ", ".join(str(v) for v in key))
    return " / ".join(parts) or unknown
