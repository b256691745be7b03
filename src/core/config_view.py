"""A pipeline and its connections as plain data, secrets masked (``config show-pipeline``)."""

from __future__ import annotations

from typing import Any

from src.config.settings import AppConfig
from src.core.connection_registry import get_pipeline, pipeline_connections


def pipeline_view(app: AppConfig, name: str) -> dict[str, Any]:
    """JSON-ready description of one pipeline; every SecretStr prints as ``**********``."""
    pipeline = get_pipeline(app, name)
    conns = pipeline_connections(app, pipeline)
    # mode="json" renders SecretStr as "**********": the value never leaves the model.
    return {
        "pipeline": pipeline.model_dump(mode="json", by_alias=True),
        "source": {conns.source: app.sources[conns.source].model_dump(mode="json")},
        "target": {conns.target: app.targets[conns.target].model_dump(mode="json", by_alias=True)},
        "stage": {conns.stage: app.stages[conns.stage].model_dump(mode="json")},
    }
