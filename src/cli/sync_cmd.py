"""``sync pipeline``: back up (and load) the tables of a pipeline."""

from __future__ import annotations

import click

from src.cli.context import AppContext, info, pass_app, pipeline_option, table_option


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
@click.option(
    "--reader",
    type=click.Choice(["auto", "connectorx", "pymysql"]),
    default="auto",
    show_default=True,
    help="MySQL reader (auto = connectorx when it can carry the table).",
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
    reader: str,
) -> int:
    """Copy tables of PIPELINE (-t repeatable; default every table)."""
    from src.core.sync_runner import SyncOptions, TableOutcome, run_sync

    if backup_only and redshift_only:
        raise click.UsageError("--backup-only and --redshift-only are mutually exclusive")

    def done(outcome: TableOutcome) -> None:
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

    options = SyncOptions(
        backup_only=backup_only,
        redshift_only=redshift_only,
        limit=limit,
        max_chunks=max_chunks,
        reader=reader,
    )
    run = run_sync(ctx.config(), pipeline, list(tables), options, on_table_done=done)
    return run.exit_code
