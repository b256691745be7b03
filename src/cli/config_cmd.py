"""``config list-pipelines | show-pipeline | validate``."""

from __future__ import annotations

import click

from src.cli.context import AppContext, emit_json, info, pass_app, pipeline_option


@click.group("config")
def config_group() -> None:
    """Inspect and validate the configuration files."""


@config_group.command("list-pipelines")
@pass_app
def list_pipelines(ctx: AppContext) -> None:
    """List the pipelines with their source, target, stage and table count."""
    from src.core.connection_registry import pipeline_connections

    app = ctx.config()
    for name, pipeline in sorted(app.pipelines.items()):
        conns = pipeline_connections(app, pipeline)
        click.echo(
            f"{name}: {conns.source} -> {conns.target} via {conns.stage} "
            f"({len(pipeline.tables)} tables)"
        )


@config_group.command("show-pipeline")
@click.argument("pipeline")
@pass_app
def show_pipeline(ctx: AppContext, pipeline: str) -> None:
    """Print a pipeline and the connections it uses as JSON (secrets masked)."""
    from src.core.config_view import pipeline_view

    emit_json(pipeline_view(ctx.config(), pipeline))


@config_group.command("validate")
@pipeline_option()
@pass_app
def validate(ctx: AppContext, pipeline: str | None) -> None:
    """Load and check every configuration file (exit 1 on any problem)."""
    from src.core.connection_registry import get_pipeline

    app = ctx.config()
    names = [get_pipeline(app, pipeline).name] if pipeline else sorted(app.pipelines)
    tables = sum(len(app.pipelines[n].tables) for n in names)
    info(f"Configuration is valid: {len(names)} pipeline(s), {tables} table(s).")
