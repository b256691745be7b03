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
    from src.config.connection_registry import pipeline_connections

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
    from src.pipeline.config_view import pipeline_view

    emit_json(pipeline_view(ctx.config(), pipeline))


@config_group.command("validate")
@pipeline_option()
@click.option(
    "--check-sources",
    is_flag=True,
    help="Also read each table's columns and keys from MySQL (connects to the sources).",
)
@pass_app
def validate(ctx: AppContext, pipeline: str | None, check_sources: bool) -> None:
    """Load and check every configuration file (exit 1 on any problem).

    Offline by default. --check-sources also reads information_schema on each
    pipeline's MySQL source: every table exists, its columns can be carried and
    named in the target, hybrid/id_only have a unique key to order by, and a
    table without a primary key says write_mode: append.
    """
    from src.config.connection_registry import get_pipeline

    app = ctx.config()
    names = [get_pipeline(app, pipeline).name] if pipeline else sorted(app.pipelines)
    if check_sources:
        from src.errors import ConfigError
        from src.pipeline.config_view import check_source_tables

        problems = [p for n in names for p in check_source_tables(app, app.pipelines[n])]
        if problems:
            count = len(problems)
            raise ConfigError(
                f"invalid configuration ({count} problem{'s' if count > 1 else ''} on the "
                "sources):\n  " + "\n  ".join(problems)
            )
    from src.pipeline.config_view import unverified_connections

    for warning in unverified_connections(app):
        info(f"Warning: {warning}")
    tables = sum(len(app.pipelines[n].tables) for n in names)
    info(f"Configuration is valid: {len(names)} pipeline(s), {tables} table(s).")
