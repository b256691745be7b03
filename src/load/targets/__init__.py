"""Target databases: the load protocol's dialects (PostgreSQL, Redshift)."""

from __future__ import annotations

from src.config.settings import AppConfig, PipelineConfig
from src.load.targets.base import TargetDialect
from src.load.targets.postgres import PostgresDialect
from src.load.targets.redshift import RedshiftDialect


def make_dialect(app: AppConfig, pipeline: PipelineConfig) -> TargetDialect:
    """The pipeline target's dialect (Redshift with the redshift_keys.json entries)."""
    target = app.targets[pipeline.target]
    if target.type == "postgres":
        return PostgresDialect()
    return RedshiftDialect(target, app.stage_for(pipeline)[1], app.redshift_keys)
