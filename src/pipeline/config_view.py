"""A pipeline and its connections as plain data, secrets masked (``config show-pipeline``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from src.config.connection_registry import get_pipeline, pipeline_connections
from src.config.settings import AppConfig, PipelineConfig
from src.core.connections import ConnectionManager
from src.errors import ConfigError, DataError


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


def check_source_tables(app: AppConfig, pipeline: PipelineConfig) -> list[str]:
    """Problems the pipeline's tables have on the MySQL source, one line each.

    What the configuration alone cannot show: the table exists, its columns can
    be carried and named in the target, its strategy has a unique key to order
    by, and a table without a primary key says ``write_mode: append``.
    """
    from src.backup.plan import table_strategy  # reads MySQL: only when asked

    problems = []
    with ConnectionManager(app).mysql(pipeline.source) as conn:
        for name in sorted(pipeline.tables):
            try:
                table_strategy(app, pipeline, name, conn)
            except (ConfigError, DataError) as exc:
                problems.append(f"pipelines/{pipeline.name}.yml: tables.{name}: {exc}")
    return problems


def unverified_connections(app: AppConfig) -> list[str]:
    """Connections to a host beyond this machine whose server certificate is not verified.

    The data and the password cross a network: without verification anyone in the
    path can present a certificate (``config validate`` warns; docs/configuration.md).
    """
    found = []
    named: list[tuple[str, str, str, bool, str]] = [
        ("sources", n, c.host, c.tls.verifies, c.tls.mode) for n, c in app.sources.items()
    ]
    named += [("targets", n, c.host, c.tls.verifies, c.tls.mode) for n, c in app.targets.items()]
    for kind, name, host, verifies, mode in named:
        if not verifies and not _loopback(host):
            want = "verify_identity" if kind == "sources" else "verify-full"
            found.append(
                f"connections.yml: {kind}.{name}.tls: {host} is reached without verifying its "
                f"certificate (tls.mode {mode}); set tls.mode: {want} and tls.ca"
            )
    return found


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
