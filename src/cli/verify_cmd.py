"""``verify``: compare each table's target rows with its MySQL rows."""

from __future__ import annotations

from typing import Any

import click

from src.cli.context import AppContext, emit_json, info, pass_app, pipeline_option, table_option


@click.command("verify")
@pipeline_option(required=True)
@table_option(multiple=True, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout.")
@click.option(
    "--json-output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the JSON report to PATH ('-' = stdout).",
)
@click.option("--keys-only", is_flag=True, help="Compare keys only: missing and extra rows.")
@click.option("--columns", help="Compare only these columns (comma-separated MySQL names).")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Also leave out rows this many seconds below the watermark (late commits).",
)
@click.option(
    "--max-rows-in-memory",
    type=click.IntRange(min=100),
    default=10_000,
    show_default=True,
    help="Rows per side read ahead while rows are compared (memory bound).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Mend what differs: re-extract missing/different rows by key, delete extra ones.",
)
@click.option("--dry-run", is_flag=True, help="With --repair: print what it would do.")
@click.option(
    "--force", is_flag=True, help="With --repair: delete past the max_delete_fraction guard."
)
@pass_app
def verify(
    ctx: AppContext,
    pipeline: str,
    tables: tuple[str, ...],
    as_json: bool,
    json_output: str | None,
    keys_only: bool,
    columns: str | None,
    grace: float,
    max_rows_in_memory: int,
    repair: bool,
    dry_run: bool,
    force: bool,
) -> int:
    """Compare target and source row by row; exit 0 when equal, 4 when any table differs.

    Segments of the primary key are checksummed on both sides at once; where
    they differ the rows are fetched and the keys missing in the target,
    extra in the target (deleted at the source) and different are listed.
    Only rows below each table's watermark are compared. Changes nothing,
    unless --repair: then missing and different rows are re-extracted by key
    and loaded by the normal load, and extra rows are deleted (delete_mode:
    soft marks them in _deleted_at) in the same transaction; more than the
    table's max_delete_fraction (default 0.05) needs --force.
    """
    from src.errors import ConfigError
    from src.pipeline.run_report import write_report
    from src.pipeline.verify.repair import RepairRequest
    from src.pipeline.verify.run import VerifyOptions, run_verify

    if (dry_run or force) and not repair:
        raise ConfigError("--dry-run and --force go with --repair")

    options = VerifyOptions(
        keys_only=keys_only,
        columns=tuple(c.strip() for c in (columns or "").split(",") if c.strip()),
        grace_seconds=grace,
        max_rows_in_memory=max_rows_in_memory,
        repair=RepairRequest(dry_run=dry_run, force=force) if repair else None,
    )
    report = run_verify(ctx.config(), pipeline, list(tables), options)
    data = report.model_dump(mode="json")
    if as_json or json_output == "-":
        emit_json(data)
    if json_output and json_output != "-":
        write_report(json_output, data)
    if not as_json and json_output != "-":
        _render(data)
    return report.exit_code


def _position(shown: dict[str, Any]) -> str:
    """A compared position as operators read it: ``2026-12-07 17:59:42 / id 100500``."""
    parts = []
    if shown.get("last_timestamp") is not None:
        parts.append(str(shown["last_timestamp"]).replace("T", " "))
    if shown.get("last_id") is not None:
        parts.append(f"id {shown['last_id']}")
    parts += [f"{k} {v}" for k, v in (shown.get("last_key") or {}).items()]
    text = " / ".join(parts)
    return text if shown.get("inclusive") else f"below {text}"


def _render(data: dict[str, Any]) -> None:
    from src.cli.tables import render_table

    header = ("table", "status", "source", "target", "missing", "extra", "different", "seconds")
    rows = []
    for name, t in data["tables"].items():
        rows.append(
            (
                name,
                t["status"],
                f"{t['source_rows']:,}",
                f"{t['target_rows']:,}",
                str(t["missing_in_target"]["count"]),
                str(t["extra_in_target"]["count"]),
                str(t["different"]["count"]),
                f"{t['duration_seconds']:.2f}",
            )
        )
    for line in render_table(rows, header=header, right=range(2, 8)):
        click.echo(line)
    for name, t in data["tables"].items():
        if t["compared_up_to"]:
            click.echo(
                f"{name}: compared {t['source_rows']:,} rows up to "
                f"{_position(t['compared_up_to'])}; {t['newer_rows']:,} newer rows"
            )
        for kind in ("missing_in_target", "extra_in_target", "different"):
            keys = t[kind]["keys"][:5]
            if keys:
                shown = ", ".join(str(k) for k in keys)
                more = " …" if t[kind]["count"] > len(keys) else ""
                click.echo(f"{name}: {kind.replace('_', ' ')}: {shown}{more}")
        repair = t["repair"]
        if repair:
            verb = "would re-extract" if repair["dry_run"] else "re-extracted"
            click.echo(
                f"{name}: repair {verb} {repair['rows_reextracted']} rows, deleted "
                f"{repair['rows_deleted']}, marked {repair['rows_marked_deleted']} deleted"
            )
            if repair["refused"]:
                info(f"{name}: {repair['refused']}")
        for note in t["notes"]:
            info(f"{name}: {note}")
        if t["error"]:
            info(f"{name}: Error: {t['error']}")
    click.echo(f"verify: {data['status']} ({data['duration_seconds']:.2f} s)")
