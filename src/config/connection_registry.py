"""Which pipeline, table and connections a command is about.

Commands name a pipeline (``-p``) and tables (``-t schema.table``); this module
turns those names into configuration objects, with one clear configuration
error for every unknown or ambiguous name.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.config.settings import AppConfig, PipelineConfig, TableConfig
from src.errors import ConfigError


@dataclass(frozen=True)
class PipelineConnections:
    """The three connections one pipeline uses, by their configured names."""

    source: str
    target: str
    stage: str


def get_pipeline(app: AppConfig, name: str) -> PipelineConfig:
    """The pipeline ``name`` (file stem), or a configuration error listing the known ones."""
    try:
        return app.pipelines[name]
    except KeyError:
        known = ", ".join(sorted(app.pipelines)) or "none"
        raise ConfigError(f"unknown pipeline '{name}' (known: {known})") from None


def pipeline_connections(app: AppConfig, pipeline: PipelineConfig) -> PipelineConnections:
    """The source, target and stage names a pipeline uses."""
    stage_name, _ = app.stage_for(pipeline)
    return PipelineConnections(pipeline.source, pipeline.target, stage_name)


def get_table(pipeline: PipelineConfig, table: str) -> TableConfig:
    """The table entry ``schema.table`` of a pipeline, or a configuration error."""
    try:
        return pipeline.tables[table]
    except KeyError:
        known = ", ".join(sorted(pipeline.tables)) or "none"
        raise ConfigError(
            f"table '{table}' is not in pipeline '{pipeline.name}' (its tables: {known})"
        ) from None


def find_pipeline_for_table(app: AppConfig, table: str, pipeline: str | None) -> PipelineConfig:
    """``-p`` when given, else the one pipeline that lists ``table`` (SPEC §4)."""
    if pipeline is not None:
        found = get_pipeline(app, pipeline)
        get_table(found, table)
        return found
    candidates = sorted(name for name, p in app.pipelines.items() if table in p.tables)
    if not candidates:
        raise ConfigError(f"no pipeline lists table '{table}'")
    if len(candidates) > 1:
        raise ConfigError(
            f"table '{table}' is in several pipelines ({', '.join(candidates)}): choose one with -p"
        )
    return app.pipelines[candidates[0]]


def connection_names_in_use(
    app: AppConfig, pipeline: str | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Sources, targets and stages used by ``pipeline`` (or by every pipeline), sorted."""
    chosen = [get_pipeline(app, pipeline)] if pipeline else list(app.pipelines.values())
    sources, targets, stages = set(), set(), set()
    for item in chosen:
        names = pipeline_connections(app, item)
        sources.add(names.source)
        targets.add(names.target)
        stages.add(names.stage)
    return sorted(sources), sorted(targets), sorted(stages)
