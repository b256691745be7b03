"""``s3clean list|clean``: a table's staged files, and removing the ones no longer needed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

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
    from src.pipeline.stage_cleaner import CleanResult, FileFilter, StagedEntry, StageScan

F = TypeVar("F", bound=Callable[..., Any])

_TITLES = {
    "loaded": "✅ Loaded (in processed_s3_files, or older than the names it keeps)",
    "awaiting": "📦 Awaiting load (in backup_s3_files)",
    "quarantined": "🧪 Quarantined (unreadable; kept until 'verify --repair' releases them)",
    "orphan": "👻 Orphans (in no watermark list; never loaded)",
}


def _filters(command: F) -> F:
    """The options ``list`` and ``clean`` share: table, pipeline and the two filters."""
    for decorator in reversed(
        [
            table_option(),
            pipeline_option(help_text="Pipeline (default: the one pipeline that lists the table)."),
            click.option(
                "--older-than",
                help="Only files last modified longer ago than this: 7d, 24h, 30m (s m h d w).",
            ),
            click.option("--pattern", help="Only files whose name matches this glob (fnmatch)."),
        ]
    ):
        command = decorator(command)
    return command


def _make_filter(older_than: str | None, pattern: str | None) -> FileFilter:
    from src.pipeline.stage_cleaner import FileFilter, parse_age

    return FileFilter(parse_age(older_than) if older_than else None, pattern)


@click.group("s3clean")
def s3clean_group() -> None:
    """List and remove a table's staged files (exact prefix, all pages)."""


@s3clean_group.command("list")
@_filters
@click.option("--show-timestamps", is_flag=True, help="Show each file's last-modified time.")
@json_flag
@pass_app
def s3clean_list(
    ctx: AppContext,
    table: str,
    pipeline: str | None,
    older_than: str | None,
    pattern: str | None,
    show_timestamps: bool,
    as_json: bool,
) -> int:
    """List TABLE's staged files: loaded, awaiting load, quarantined, and orphans.

    Quarantined files are unreadable ones the load set aside until 'verify
    --repair' re-extracts their rows and releases them. Orphans are files
    under the table's prefix that no watermark list names, e.g. uploaded by a
    run killed before it recorded them; they are never loaded. Takes no lock:
    while a sync runs, the file it is writing may show as an orphan (the
    output says when the table's lock is held).
    """
    from src.pipeline.stage_cleaner import list_staged

    scan = list_staged(ctx.config(), table, pipeline, _make_filter(older_than, pattern))
    if as_json:
        emit_json(scan.as_dict())
        return 0
    lines = _header(scan)
    for category, title in _TITLES.items():
        entries = scan.of(category)
        lines.append(f"{title}: {_amount(entries)}")
        lines += _file_lines(entries, show_timestamps)
    lines.append(f"Total: {_amount(scan.entries)}")
    click.echo("\n".join(lines))
    _warnings(scan)
    return 0


@s3clean_group.command("clean")
@_filters
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--include-unloaded", is_flag=True, help="Also delete files not loaded yet.")
@pass_app
def s3clean_clean(
    ctx: AppContext,
    table: str,
    pipeline: str | None,
    older_than: str | None,
    pattern: str | None,
    dry_run: bool,
    force: bool,
    include_unloaded: bool,
) -> int:
    """Delete TABLE's loaded files and orphans (those passing the filters).

    Files awaiting load are never deleted unless --include-unloaded is given
    (their rows would then never reach the target unless re-extracted, e.g.
    after 'watermark reset'); quarantined files are always kept until 'verify
    --repair' releases them; the output says how many were kept. Deleted keys
    are removed from the watermark's lists first, then the objects are deleted
    in batches of at most 1000, all while holding the table's lock (exit 7
    while a sync runs). Asks for confirmation unless --force (declined: exit
    1, nothing deleted). Manifests under manifests/ are not the table's data
    and are left alone (an S3 lifecycle rule is the tool for them).
    """
    from src.cli.watermark_cmd import confirm
    from src.pipeline.stage_cleaner import clean_staged

    def ask(plan: CleanResult) -> bool:
        info("\n".join(_plan_lines(plan, verb="Will delete")))
        return confirm(f"Delete {_files(len(plan.to_delete))} from {plan.scan.prefix_uri}?")

    result = clean_staged(
        ctx.config(),
        table,
        pipeline,
        _make_filter(older_than, pattern),
        include_unloaded=include_unloaded,
        dry_run=dry_run,
        confirm=None if force else ask,
    )
    if dry_run:
        lines = _plan_lines(result, verb="Dry run: would delete")
        lines += _file_lines(result.to_delete, True, category=True)
        click.echo("\n".join(lines))
    elif not result.to_delete:
        click.echo("\n".join(_plan_lines(result, verb="Deleted")))
    else:
        lines = _plan_lines(result, verb="Deleted", count=result.deleted)
        pruned = ", ".join(f"{n:,} from {name}" for name, n in result.pruned.items())
        at = len(_header(result.scan)) + 1
        lines.insert(at, f"Removed from the watermark: {pruned or 'nothing (orphans only)'}")
        click.echo("\n".join(lines))
    _warnings(result.scan)
    return 0


def _header(scan: StageScan) -> list[str]:
    lines = [
        f"Staged files of {scan.scoped_name} (target {scan.target}, pipeline {scan.pipeline})",
        f"Prefix: {scan.prefix_uri}",
    ]
    if scan.filters.describe():
        lines.append(f"Filters: {scan.filters.describe()} ({scan.listed:,} files listed in all)")
    return lines


def _plan_lines(plan: CleanResult, verb: str, count: int | None = None) -> list[str]:
    counts = plan.counts()
    orphans = counts["orphan"]
    parts = [f"{counts['loaded']:,} loaded", f"{orphans:,} orphan" + ("" if orphans == 1 else "s")]
    if plan.include_unloaded:
        parts.append(f"{counts['awaiting']:,} awaiting load")
    total = len(plan.to_delete) if count is None else count
    size = _size(sum(e.size for e in plan.to_delete))
    lines = _header(plan.scan)
    lines.append(f"{verb} {_files(total)} ({', '.join(parts)}), {size}")
    kept = plan.counts(plan.kept_unloaded)
    if kept["awaiting"]:
        lines.append(
            f"Kept {_files(kept['awaiting'])} awaiting load: not loaded into the target yet "
            "(--include-unloaded deletes them too)"
        )
    if kept["quarantined"]:
        lines.append(
            f"Kept {_files(kept['quarantined'])} quarantined: 'verify --repair' re-extracts "
            "their rows and releases them"
        )
    return lines


def _warnings(scan: StageScan) -> None:
    for category, n in scan.missing.items():
        where = {"loaded": "processed_s3_files", "quarantined": "quarantined_s3_files"}.get(
            category, "backup_s3_files"
        )
        info(f"Warning: {_files(n)} listed in {where} missing from the stage")
    if scan.lock_holder:
        info(
            f"Note: the table's lock is held by {scan.lock_holder}; files that run is "
            "writing may show as orphans"
        )


def _files(n: int) -> str:
    return f"{n:,} file" + ("" if n == 1 else "s")


def _amount(entries: list[StagedEntry]) -> str:
    return f"{_files(len(entries))}, {_size(sum(e.size for e in entries))}"


def _file_lines(
    entries: list[StagedEntry], show_timestamps: bool, category: bool = False
) -> list[str]:
    """The files as an indented table: name, size, [modified], [category]."""
    from src.cli.tables import render_table

    rows = []
    for entry in entries:
        row = [entry.name, f"{entry.size:,} B"]
        if show_timestamps:
            modified = entry.last_modified.astimezone(dt.UTC)
            row.append(f"{modified.strftime('%Y-%m-%d %H:%M:%S')} UTC")
        if category:
            row.append(f"[{entry.category}]")
        rows.append(row)
    return ["    " + line for line in render_table(rows, right={1})]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n:,} B"
