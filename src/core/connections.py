"""Connections to the source, the stage and the target, as context managers.

Every connection that needs a bastion opens its :class:`SSHTunnel` first and
closes it last. Errors are turned into :class:`SourceConnectionError` (exit
code 2) with the server named and no secret in the text.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from src.config.settings import AppConfig, SourceConnection, StageConfig, TargetConnection
from src.config.transport import MySQLTls
from src.core.s3_stage import S3Stage
from src.core.secrets import password_of, target_login
from src.core.ssh_tunnel import SSHTunnel
from src.core.stage import LocalStage, Stage
from src.core.tls import (
    connectorx_cannot,
    connectorx_tls,
    libpq_tls,
    mysql_context,
    pymysql_tls,
)
from src.errors import ConfigError, SourceConnectionError, first_line

SESSION_TIME_ZONE_SQL = "SET time_zone = '+00:00'"  # TIMESTAMP values read in UTC
# How drivers word a TLS failure: the error then points at the tls settings.
_TLS_WORDS = re.compile(r"SSL|TLS|certificate|does not support|secure connection", re.I)


@functools.cache
def _pymysql_connection_class() -> Any:
    """PyMySQL's ``Connection``, with one cheap TLS-preferred context per process.

    Given no TLS option, PyMySQL >= 1.2 tries TLS on every connection ("PREFERRED")
    and builds a new ``ssl.create_default_context()`` for each one, which loads the
    system's CA store (~35-44 ms, measured as 40 % of a table's run when nothing is
    new), only to switch verification off (no CA given: ``CERT_NONE``, no host
    check), so the store is never read. The context here is that same context
    without the load (0.4 ms), built once and shared; explicit TLS options are
    built as PyMySQL builds them.
    https://github.com/PyMySQL/PyMySQL/blob/main/pymysql/connections.py (_create_ssl_ctx)
    """
    import pymysql

    class Connection(pymysql.connections.Connection):
        preferred_ctx: Any = None

        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp:
                return super()._create_ssl_ctx(sslp)
            cls = type(self)
            if cls.preferred_ctx is None:  # a race builds two equal contexts: harmless
                cls.preferred_ctx = preferred_tls_context()
            return cls.preferred_ctx

    return Connection


def preferred_tls_context() -> ssl.SSLContext:
    """PyMySQL's context for TLS without a CA (encrypts, verifies nothing), minus the CA load.

    What ``_create_ssl_ctx({})`` returns: ``create_default_context()``'s client
    context with ``check_hostname`` off, ``CERT_NONE``, ``VERIFY_X509_STRICT``
    cleared and SSLv2/SSLv3 refused: ``tls.mode: required``'s context.
    """
    return mysql_context(MySQLTls(mode="required"), "")


@dataclass(frozen=True)
class MySQLEndpoint:
    """Where and as whom to connect (the local end of a tunnel when there is one).

    The one way this tool logs in to MySQL: planning queries, PyMySQL reads and
    connectorx reads (its URL) all use it. The session is always utf8mb4 (SPEC
    §5): Arrow strings are UTF-8, whatever ``charset`` the source config names.
    """

    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)
    database: str | None = None
    connect_timeout: int = 30
    label: str = ""  # how messages name the server, e.g. "MySQL source SRC (db:3306)"
    tls: MySQLTls = field(default_factory=MySQLTls)
    server_name: str = ""  # the configured host: what a certificate is verified against

    @property
    def connectorx_blocker(self) -> str | None:
        """Why connectorx cannot read with this TLS setting (PyMySQL reads); None: it can."""
        return connectorx_cannot(self.tls, self.host, self.server_name or self.host)

    def connect(self, **kwargs: Any) -> Any:
        """A PyMySQL connection with the backup session settings (UTC, utf8mb4, autocommit)."""
        import pymysql

        try:
            return _pymysql_connection_class()(
                host=self.host,
                port=self.port,
                user=self.user,
                # bytes: PyMySQL would encode a str password as latin1
                # (pymysql/connections.py, Connection.__init__), so a non-ASCII
                # password would not match the one the server hashed from UTF-8.
                password=self.password.encode("utf-8"),
                database=self.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=self.connect_timeout,
                init_command=SESSION_TIME_ZONE_SQL,
                **pymysql_tls(self.tls, self.server_name or self.host),
                **kwargs,
            )
        except pymysql.err.MySQLError as exc:
            raise self.connection_error(exc) from None

    def connectorx_url(self) -> str:
        """``mysql://user:password@host:port/db?prefer_socket=false``, parts percent-encoded.

        The Rust ``mysql`` crate connectorx uses *prefers the server's Unix socket*
        when the host is a loopback address: it asks the server for ``@@socket``
        and reconnects through that path on this machine. Through an SSH tunnel
        (always loopback) that path is a local server's socket — another server —
        and it bypasses any proxy in between; ``prefer_socket=false`` keeps TCP.
        https://docs.rs/mysql/latest/mysql/struct.OptsBuilder.html#method.prefer_socket
        """
        auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        database = quote(self.database or "", safe="")
        tls = connectorx_tls(self.tls)
        return f"mysql://{auth}@{host}:{self.port}/{database}?prefer_socket=false{tls}"

    def scrub(self, text: str) -> str:
        """``text`` with the password (plain or percent-encoded) masked."""
        for secret in {self.password, quote(self.password, safe="")} - {""}:
            text = text.replace(secret, "***")
        return text

    def connection_error(self, exc: BaseException) -> SourceConnectionError:
        """The exit-2 error for a failed login or a dropped connection, secrets masked."""
        where = self.label or f"MySQL at {self.host}:{self.port}"
        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        reason = f"({args[0]}) {args[1]}" if len(args) >= 2 else (str(exc) or type(exc).__name__)
        check = "the host, credentials and tunnel"
        if _TLS_WORDS.search(reason):
            check = f"its tls settings (tls.mode {self.tls.mode}, tls.ca {self.tls.ca})"
        return SourceConnectionError(
            f"{where}, user {self.user!r}: {self.scrub(reason)}; check {check}"
        )


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

    def mysql_endpoint(self, name: str, endpoint: Endpoint) -> MySQLEndpoint:
        """How to log in to source ``name`` at ``endpoint`` (after any tunnel)."""
        cfg = self.source_config(name)
        tunnel = " via SSH tunnel" if endpoint.via_tunnel else ""
        return MySQLEndpoint(
            host=endpoint.host,
            port=endpoint.port,
            user=cfg.username,
            password=password_of(cfg.password),
            database=cfg.database,
            connect_timeout=cfg.connect_timeout,
            label=f"MySQL source {name} ({cfg.host}:{cfg.port}{tunnel})",
            tls=cfg.tls,
            server_name=cfg.host,
        )

    @contextmanager
    def mysql(self, name: str, endpoint: Endpoint | None = None) -> Iterator[Any]:
        """A PyMySQL connection: UTC session time zone, utf8mb4, autocommit."""
        with ExitStack() as stack:
            if endpoint is None:
                endpoint = stack.enter_context(self.source_endpoint(name))
            conn = self.mysql_endpoint(name, endpoint).connect()
            stack.callback(conn.close)
            yield conn

    @contextmanager
    def target(self, name: str) -> Iterator[Any]:
        """A psycopg2 connection with ``search_path`` set to the target schema."""
        import psycopg2

        cfg = self.target_config(name)
        port = cfg.effective_port
        with _endpoint(cfg.ssh_tunnel, cfg.host, port, f"target {name}") as endpoint:
            # Through a tunnel libpq dials hostaddr and verifies the certificate as host.
            params: dict[str, Any] = {"host": endpoint.host}
            if endpoint.via_tunnel:
                params = {"host": cfg.host, "hostaddr": endpoint.host}
            params |= libpq_tls(cfg.tls)
            user, password = target_login(cfg)
            try:
                conn = psycopg2.connect(
                    port=endpoint.port,
                    user=user,
                    password=password,
                    dbname=cfg.database,
                    connect_timeout=cfg.connect_timeout,
                    application_name="s3-redshift-backup",
                    **params,
                )
            except psycopg2.OperationalError as exc:
                reason = first_line(exc)
                check = "that the server is up and reachable from this host"
                if _TLS_WORDS.search(str(exc)):
                    check = f"its tls settings (tls.mode {cfg.tls.mode}, tls.ca {cfg.tls.ca})"
                raise SourceConnectionError(
                    f"{cfg.type} target {name} ({cfg.host}:{port}): {reason}; check {check}"
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


class ReusedConnection:
    """One connection for the steps of a table's run, opened on first use.

    A table's run asks for the target several times (the lost-watermark check,
    the load, the after-load check); each new psycopg2 connection costs ~5 ms,
    and a tunnel's far more. Called like a connection factory, it yields the
    held connection while that one is free and open, a new one when it is busy
    (verify compares with two at once) or was lost (a retried load). Whatever a
    step left uncommitted is rolled back when it ends, as closing would.
    :meth:`close` closes what it opened.
    """

    def __init__(self, open_connection: Callable[[], AbstractContextManager[Any]]) -> None:
        self._open = open_connection
        self._stack = ExitStack()
        self._held: Any = None
        self._busy = False

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        if self._busy:
            with self._open() as extra:
                yield extra
            return
        if self._held is None or self._held.closed:
            self._held = self._stack.enter_context(self._open())
        self._busy, conn = True, self._held
        try:
            yield conn
        finally:
            self._busy = False
            if not conn.closed:  # what a step left open ends with it, as a close would
                with suppress(Exception):
                    conn.rollback()

    def close(self) -> None:
        """Close every connection this opened."""
        self._held = None
        self._stack.close()


@contextmanager
def _endpoint(tunnel_cfg: Any, host: str, port: int, label: str) -> Iterator[Endpoint]:
    if not tunnel_cfg.enabled:
        yield Endpoint(host, port, via_tunnel=False)
        return
    with SSHTunnel(tunnel_cfg, host, port, label=label) as (local_host, local_port):
        yield Endpoint(local_host, local_port, via_tunnel=True)
