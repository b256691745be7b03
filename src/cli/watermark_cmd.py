"""``watermark get|set|reset|list``: inspect and repair a table's progress (SPEC §4, §8)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from src.cli.context import (
    AppContext,
    emit_json,
    info,
    json_flag,
    pass_app,
    pipeline_option,
    table_option,
)

if TYPE_CHECKING:
    from src.pipeline.watermark_list import TableSummary
    from src.pipeline.watermark_ops import WatermarkView

_LOADED_SHOWN = 20
_AUTO_P = "Pipeline (default: the one pipeline that lists the table)."


def confirm(question: str) -> bool:
    """Ask on stderr, read one line from stdin; only y/yes agrees (EOF declines)."""
    click.echo(f"{question} [y/N]: ", nl=False, err=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n") or not sys.stdin.isatty():
        click.echo("", err=True)  # the answer was not echoed by a terminal: end the line
    return answer.strip().lower() in ("y", "yes")


@click.group("watermark")
def watermark_group() -> None:
    """Inspect and repair the per-table watermarks (progress of both stages)."""


@watermark_group.command("get")
@table_option()
@pipeline_option(help_text=_AUTO_P)
@click.option("--show-files", is_flag=True, help="List files awaiting load and the last loaded.")
@json_flag
@pass_app
def watermark_get(
    ctx: AppContext, table: str, pipeline: str | None, show_files: bool, as_json: bool
) -> int:
    """Show where both stages of TABLE stand and where the next backup starts.

    A table never synced shows status "pending" (exit 0). --json prints the
    watermark document itself.
    """
    from src.pipeline.watermark_ops import get_watermark

    view = get_watermark(ctx.config(), table, pipeline)
    if as_json:
        emit_json(view.as_dict())
    else:
        click.echo("\n".join(render_watermark(view, show_files)))
    return 0


def render_watermark(view: WatermarkView, show_files: bool = False) -> list[str]:
    """The two-stage display of SPEC §4, line by line."""
    from src.pipeline.watermark_ops import display_timestamp

    wm = view.watermark
    b, r = wm.mysql_state, wm.redshift_state
    lines = [f"📊 Watermark for {wm.table_name} (target {wm.target})"]
    if not view.stored:
        lines.append(f"Never synced: no watermark is stored yet ({view.location})")
    lines += [
        "MySQL → S3 Backup Stage",
        f"  Status: {b.status}",
        *([f"  Last Error: {b.error}"] if b.error else []),
        f"  Rows Extracted This Session: {b.last_session_rows:,}",
        f"  Total Rows Extracted (Cumulative): {b.total_rows:,}",
        f"  S3 Files Created: {b.s3_files_created:,}",
        f"  Last Data Timestamp: {display_timestamp(b.last_timestamp)}",
        f"  Last Processed ID: {shown_id(b.last_id)}",
        "S3 → Redshift Loading Stage",
        f"  Status: {r.status}",
        *([f"  Last Error: {r.error}"] if r.error else []),
        f"  Rows Loaded This Session: {r.last_session_rows:,}",
        f"  Total Rows Loaded (Cumulative): {r.total_rows:,}",
        f"📦 Backup S3 Files (awaiting Redshift load): {len(wm.backup_s3_files):,}",
    ]
    if show_files:
        lines += [f"    {uri}" for uri in wm.backup_s3_files]
    lines.append(f"✅ Processed S3 Files (loaded to Redshift): {wm.loaded_files():,}")
    if wm.metadata.loaded_files_forgotten:
        lines.append(
            f"    ({wm.metadata.loaded_files_forgotten:,} older ones are counted, not listed: "
            "the target's ledger holds them)"
        )
    if show_files and wm.processed_s3_files:
        shown = wm.processed_s3_files[-_LOADED_SHOWN:]
        hidden = len(wm.processed_s3_files) - len(shown)
        if hidden:
            lines.append(f"    … {hidden:,} earlier files not shown (--json lists them all)")
        lines += [f"    {uri}" for uri in shown]
    lines.append(view.resume)
    if wm.metadata.manual_override:
        when = display_timestamp(wm.metadata.manual_set_time)[:19]
        lines.append(f"⚠️  Manually changed at {when} UTC (watermark set/reset)")
    return lines


def shown_id(value: object) -> str:
    """A key value as ``watermark get`` shows it: integers with thousands separators."""
    if value is None:
        return "none"
    return format(value, ",") if isinstance(value, int) else str(value)


@watermark_group.command("set")
@table_option()
@pipeline_option(help_text=_AUTO_P)
@click.option("--timestamp", help='Last backed-up timestamp, "YYYY-MM-DD HH:MM:SS[.ffffff]".')
@click.option(
    "--id",
    "last_id",
    help="Last backed-up id: an integer, or the text of a VARCHAR, DECIMAL or DATE key "
    "(hex for a BINARY key).",
)
@click.option("--force", is_flag=True, help="Set a position beyond the source's newest row.")
@pass_app
def watermark_set(
    ctx: AppContext,
    table: str,
    pipeline: str | None,
    timestamp: str | None,
    last_id: str | None,
    force: bool,
) -> int:
    """Move where the next backup of TABLE starts (--timestamp, --id or both).

    Only what is given changes; the document records manual_override and
    manual_set_time. A position beyond the source's MAX(cursor) would read
    nothing, so it is refused (exit 1) unless --force; the check reads MySQL.
    On an append table, a position moved back over rows the target holds is
    refused too, naming them (they would be appended twice): 'watermark reset
    --reinitialize' deletes them first, --force accepts the duplicates.
    Written while holding the table's lock: exits 7 when a sync of the table
    is running.
    """
    from src.pipeline.watermark_ops import display_timestamp, set_watermark

    result = set_watermark(
        ctx.config(), table, pipeline, timestamp=timestamp, last_id=last_id, force=force
    )
    state = result.view.watermark.mysql_state
    if timestamp is not None:
        old, new = (
            display_timestamp(result.before_timestamp),
            display_timestamp(state.last_timestamp),
        )
        click.echo(f"Last Data Timestamp: {old} → {new}")
    if last_id is not None:
        old_id = "none" if result.before_id is None else str(result.before_id)
        click.echo(f"Last Processed ID: {old_id} → {state.last_id}")
    click.echo(result.view.resume)
    for note in result.notes:
        info(f"Note: {note}")
    return 0


@watermark_group.command("reset")
@table_option()
@pipeline_option(help_text=_AUTO_P)
@click.option(
    "--preserve-files", is_flag=True, help="Keep the staged and loaded file lists as they are."
)
@click.option(
    "--reinitialize",
    is_flag=True,
    help="Start over on both sides: an append table's target rows are deleted first.",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Reset an append table whose target holds rows anyway.")
@pass_app
def watermark_reset(
    ctx: AppContext,
    table: str,
    pipeline: str | None,
    preserve_files: bool,
    reinitialize: bool,
    yes: bool,
    force: bool,
) -> int:
    """Start TABLE over: both stages' positions and counts go back to zero.

    The next sync re-extracts the whole table and merges it into the target by
    primary key, so nothing is duplicated. An append table's re-extracted rows
    would be appended a second time: its reset is refused (exit 1, naming the
    target rows) unless --reinitialize, which deletes them first, or --force.

    Without --preserve-files the file lists are emptied too: files awaiting
    load are not loaded (their rows are re-extracted anyway) and every staged
    file becomes an orphan that 's3clean clean' removes. With --preserve-files
    the lists are kept: files awaiting load are still loaded by the next sync,
    and loaded ones stay known as loaded.

    The target's load ledger is not touched: it records what the target holds,
    so a kept file that is already loaded is never loaded twice, and
    re-extracted files get new keys (they carry the run's id). Also the way to
    repair a watermark that cannot be parsed.

    --reinitialize is the way on after a lost watermark: for an append table it
    first deletes the target table's rows and the table's ledger rows (in one
    transaction), so the re-extracted rows are not appended twice; a merge
    table keeps its rows. Asks for confirmation unless -y
    (declined: exit 1, nothing changed); exits 7 while a sync holds the lock.
    """
    from src.pipeline.watermark_ops import reset_watermark

    result = reset_watermark(
        ctx.config(),
        table,
        pipeline,
        preserve_files=preserve_files,
        reinitialize=reinitialize,
        confirm=None if yes else confirm,
        force=force,
    )
    wm = result.view.watermark
    click.echo(f"Watermark of {wm.table_name} (target {wm.target}) reset.")
    if result.target_rows_deleted is not None:
        click.echo(
            f"Deleted {result.target_rows_deleted:,} rows of the append-mode target table "
            "and its ledger rows."
        )
    if result.was_unreadable:
        click.echo("The previous document could not be parsed; it was replaced.")
    if preserve_files:
        click.echo(
            f"Kept {result.kept_awaiting:,} files awaiting load and "
            f"{result.kept_loaded:,} loaded files in the lists."
        )
    elif result.dropped_awaiting or result.dropped_loaded:
        click.echo(
            f"Dropped {result.dropped_awaiting:,} files awaiting load and "
            f"{result.dropped_loaded:,} loaded files from the lists; they stay in the stage "
            f"as orphans ('s3clean clean -t {result.view.table}' removes them)."
        )
    click.echo(result.view.resume)
    return 0


@watermark_group.command("rebuild")
@table_option()
@pipeline_option(help_text=_AUTO_P)
@pass_app
def watermark_rebuild(ctx: AppContext, table: str, pipeline: str | None) -> int:
    """Recreate a lost watermark of TABLE from the target's ledger and the staged files.

    The loaded files come from the ledger; the position from the footer of the
    newest loaded file still in the stage (every file records the position it
    was staged with). Refused (exit 1) when a readable watermark exists; exit 4
    when no loaded file is left to read the position from (then 'watermark
    reset --reinitialize' starts over). Runs under the table's lock.
    """
    from src.pipeline.watermark_rebuild import rebuild_watermark

    result = rebuild_watermark(ctx.config(), table, pipeline)
    wm = result.view.watermark
    click.echo(
        f"Watermark of {wm.table_name} (target {wm.target}) rebuilt from "
        f"{result.loaded_files:,} loaded files ({result.rows:,} rows); position from "
        f"{result.position_from}."
    )
    click.echo(result.view.resume)
    return 0


@watermark_group.command("list")
@pipeline_option(help_text="Only this pipeline (default: every pipeline).")
@json_flag
@pass_app
def watermark_list(ctx: AppContext, pipeline: str | None, as_json: bool) -> int:
    """Every table of the pipeline(s): both stages' status, rows, files awaiting load."""
    from src.pipeline.watermark_list import list_watermarks

    rows = list_watermarks(ctx.config(), pipeline)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return 0
    click.echo("\n".join(render_list(rows)))
    return 0


def render_list(rows: list[TableSummary]) -> list[str]:
    """A fixed-width table, one line per (pipeline, table)."""
    from src.cli.tables import render_table

    header = (
        "PIPELINE",
        "TABLE",
        "BACKUP",
        "EXTRACTED",
        "LOAD",
        "LOADED",
        "AWAITING",
        "UPDATED (UTC)",
    )
    cells = [
        (
            r.pipeline,
            r.table,
            r.backup_status,
            f"{r.rows_extracted:,}",
            r.load_status,
            f"{r.rows_loaded:,}",
            f"{r.files_awaiting:,}",
            (r.last_updated or "never")[:19].replace("T", " "),
        )
        for r in rows
    ]
    lines = render_table(cells, header=header, right={3, 5, 6})
    lines += [f"  {r.table}: {r.error}" for r in rows if r.backup_status == "unreadable"]
    return lines
