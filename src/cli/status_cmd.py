"""``status``: check every connection the pipelines use."""

from __future__ import annotations

import click

from src.cli.context import AppContext, emit_json, json_flag, pass_app, pipeline_option


@click.command("status")
@pipeline_option(help_text="Only the connections of this pipeline (default: every one in use).")
@json_flag
@pass_app
def status(ctx: AppContext, pipeline: str | None, as_json: bool) -> int:
    """Check SSH tunnels, MySQL sources, stages and targets; exit 2 if any fails."""
    from src.pipeline.status import check_connections

    results = check_connections(ctx.config(), pipeline)
    if as_json:
        emit_json(
            {
                "status": "OK" if all(r.ok for r in results) else "ERROR",
                "checks": [r.as_dict() for r in results],
            }
        )
    else:
        from src.cli.tables import render_table

        rows = [("OK" if r.ok else "ERROR", r.component, r.name, r.detail) for r in results]
        for line in render_table(rows):
            click.echo(line)
    return 0 if results and all(r.ok for r in results) else 2
