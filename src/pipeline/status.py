"""Health checks of every connection a pipeline uses (the ``status`` command).

Each check is a real round trip: the SSH tunnel carries a MySQL or target
session, MySQL answers ``SELECT 1`` and its version, the stage takes a probe
write, the target answers ``SELECT 1`` and has its schema. A failing check
never stops the others.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from src.config.connection_registry import connection_names_in_use
from src.config.settings import AppConfig
from src.core.connections import ConnectionManager, Endpoint
from src.errors import BackupError, SourceConnectionError


@dataclass(frozen=True)
class CheckResult:
    """One line of the status table."""

    component: str  # ssh | mysql | stage | target
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {**asdict(self), "status": "OK" if self.ok else "ERROR"}


def _run(component: str, name: str, check: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(component, name, True, check())
    except BackupError as exc:
        return CheckResult(component, name, False, str(exc))
    except Exception as exc:  # a status report must survive any failure
        return CheckResult(component, name, False, f"{type(exc).__name__}: {exc}")


def check_connections(app: AppConfig, pipeline: str | None = None) -> list[CheckResult]:
    """Check every source, stage and target that ``pipeline`` (or any pipeline) uses."""
    manager = ConnectionManager(app)
    sources, targets, stages = connection_names_in_use(app, pipeline)
    results: list[CheckResult] = []
    for name in sources:
        results.extend(_check_source(manager, name))
    for name in stages:
        results.append(_run("stage", name, partial(_stage_probe, manager, name)))
    for name in targets:
        results.extend(_check_target(manager, name))
    return results


def _check_source(manager: ConnectionManager, name: str) -> list[CheckResult]:
    cfg = manager.source_config(name)
    if not cfg.ssh_tunnel.enabled:
        return [_run("mysql", name, lambda: _mysql_probe(manager, name, None))]
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(manager.source_endpoint(name))
        except BackupError as exc:
            return [
                CheckResult("ssh", name, False, str(exc)),
                CheckResult("mysql", name, False, "skipped: the SSH tunnel is down"),
            ]
        tunnel = f"tunnel via {cfg.ssh_tunnel.host}:{cfg.ssh_tunnel.port} up"
        return [
            CheckResult("ssh", name, True, tunnel),
            _run("mysql", name, lambda: _mysql_probe(manager, name, endpoint)),
        ]


def _mysql_probe(manager: ConnectionManager, name: str, endpoint: Endpoint | None) -> str:
    with manager.mysql(name, endpoint) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1, VERSION()")
        one, version = cur.fetchone()
        if one != 1:
            raise SourceConnectionError("SELECT 1 did not return 1")
        tls = manager.source_config(name).tls
        sock: Any = getattr(conn, "_sock", None)  # PyMySQL's socket: an SSLSocket once encrypted
        protocol = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        return f"SELECT 1 ok, version {version}, {_tls_state(protocol, tls.verifies, tls.mode)}"


def _tls_state(protocol: str | None, verified: bool, mode: str) -> str:
    """``TLSv1.3, server verified`` / ``TLSv1.3, server not verified`` / ``no TLS``."""
    if protocol is None:
        return f"no TLS (tls.mode {mode})"
    return f"{protocol}, server {'verified' if verified else 'not verified'} (tls.mode {mode})"


def _stage_probe(manager: ConnectionManager, name: str) -> str:
    return manager.stage(name).check()


def _check_target(manager: ConnectionManager, name: str) -> list[CheckResult]:
    cfg = manager.target_config(name)

    def probe() -> str:
        with manager.target(name) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                (cfg.schema_,),
            )
            (count,) = cur.fetchone()
            if not count:
                raise SourceConnectionError(f"schema {cfg.schema_} does not exist")
            info = conn.info
            protocol = info.ssl_attribute("protocol") if info.ssl_in_use else None
            tls = _tls_state(protocol, cfg.tls.verifies, cfg.tls.mode)
            return f"SELECT 1 ok, schema {cfg.schema_} exists, {tls}"

    return [_run("target", name, probe)]
