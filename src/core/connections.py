"""Connections to the source, the stage and the target, as context managers.

Every connection that needs a bastion opens its :class:`SSHTunnel` first and
closes it last. Errors are turned into :class:`SourceConnectionError` (exit
code 2) with the server named and no secret in the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.config.settings import AppConfig, SourceConnection, StageConfig, TargetConnection
from src.core.ssh_tunnel import SSHTunnel
from src.core.stage import LocalStage, S3Stage, Stage
from src.errors import ConfigError, SourceConnectionError


@dataclass(frozen=True)
class Endpoint:
    """Where a server is reachable from this process (after any tunnel)."""

    host: str
    port: int
    via_tunnel: bool


class ConnectionManager:
    """Opens the connections a pipeline's configuration names."""

    def __init__(self, app: AppConfig) -> None:
        self.app = app

    # ---------------------------------------------------------------- lookups
    def source_config(self, name: str) -> SourceConnection:
        """``connections.sources[name]``, or a configuration error."""
        try:
            return self.app.sources[name]
        except KeyError:
            raise ConfigError(f"unknown source connection '{name}'") from None

    def target_config(self, name: str) -> TargetConnection:
        """``connections.targets[name]``, or a configuration error."""
        try:
            return self.app.targets[name]
        except KeyError:
            raise ConfigError(f"unknown target connection '{name}'") from None

    def stage_config(self, name: str) -> StageConfig:
        """``s3_configs[name]``, or a configuration error."""
        try:
            return self.app.stages[name]
        except KeyError:
            raise ConfigError(f"unknown s3_config '{name}'") from None

    # ------------------------------------------------------------- endpoints
    @contextmanager
    def source_endpoint(self, name: str) -> Iterator[Endpoint]:
        """The MySQL server's address, through its SSH tunnel when one is configured."""
        cfg = self.source_config(name)
        with _endpoint(cfg.ssh_tunnel, cfg.host, cfg.port, f"source {name}") as endpoint:
            yield endpoint

    @contextmanager
    def mysql(self, name: str, endpoint: Endpoint | None = None) -> Iterator[Any]:
        """A PyMySQL connection: UTC session time zone, utf8mb4, autocommit."""
        import pymysql

        cfg = self.source_config(name)
        with ExitStack() as stack:
            if endpoint is None:
                endpoint = stack.enter_context(self.source_endpoint(name))
            try:
                conn = pymysql.connect(
                    host=endpoint.host,
                    port=endpoint.port,
                    user=cfg.username,
                    password=cfg.password.get_secret_value(),
                    database=cfg.database,
                    charset=cfg.charset,
                    connect_timeout=cfg.connect_timeout,
                    autocommit=True,
                    # TIMESTAMP values are read in UTC whatever the server's zone.
                    init_command="SET time_zone = '+00:00'",
                )
            except pymysql.err.MySQLError as exc:
                raise SourceConnectionError(
                    f"MySQL source {name} ({cfg.host}:{cfg.port}"
                    f"{' via SSH tunnel' if endpoint.via_tunnel else ''}): {_mysql_reason(exc)}"
                ) from None
            stack.callback(conn.close)
            yield conn

    @contextmanager
    def target(self, name: str) -> Iterator[Any]:
        """A psycopg2 connection with ``search_path`` set to the target schema."""
        import psycopg2

        cfg = self.target_config(name)
        port = cfg.effective_port
        with _endpoint(cfg.ssh_tunnel, cfg.host, port, f"target {name}") as endpoint:
            try:
                conn = psycopg2.connect(
                    host=endpoint.host,
                    port=endpoint.port,
                    user=cfg.username,
                    password=cfg.password.get_secret_value(),
                    dbname=cfg.database,
                    connect_timeout=cfg.connect_timeout,
                    application_name="s3-redshift-backup",
                )
            except psycopg2.OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                raise SourceConnectionError(
                    f"{cfg.type} target {name} ({cfg.host}:{port}): {reason}"
                ) from None
            try:
                with conn.cursor() as cur:
                    cur.execute("SET search_path TO %s", (cfg.schema_,))
                conn.commit()
                yield conn
            finally:
                conn.close()

    def stage(self, name: str) -> Stage:
        """The stage named in ``s3_configs``; a local path is relative to the project."""
        cfg = self.stage_config(name)
        if cfg.local_path is not None:
            root = Path(cfg.local_path).expanduser()
            if not root.is_absolute():
                root = Path(self.app.project_root) / root
            return LocalStage(name, str(root))
        return S3Stage(name, cfg)


@contextmanager
def _endpoint(tunnel_cfg: Any, host: str, port: int, label: str) -> Iterator[Endpoint]:
    if not tunnel_cfg.enabled:
        yield Endpoint(host, port, via_tunnel=False)
        return
    with SSHTunnel(tunnel_cfg, host, port, label=label) as (local_host, local_port):
        yield Endpoint(local_host, local_port, via_tunnel=True)


def _mysql_reason(exc: Exception) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2:
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__
