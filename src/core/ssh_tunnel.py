"""SSH port forwarding through a bastion, run in a child process.

The forward lives in its own process because connectorx holds the GIL while
it reads: a forwarder running as threads of the same process never gets to
move a byte (FIELD_NOTES "connectorx: two traps"). The child starts
``sshtunnel.SSHTunnelForwarder``, reports the local port (or the failure) over
a pipe, and stops the forward with ``stop(force=True)`` when the parent says
so or goes away (the pipe closes).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from src.config.transport import SSHTunnelConfig
from src.core.ssh_host_keys import HostKeyProblem, known_hosts_file, verified_host_key
from src.errors import ConfigError, SourceConnectionError
from src.utils.logging_setup import get_logger

log = get_logger("ssh")

_START_TIMEOUT_S = 30.0
_HEALTH_CHECK_S = 1.0  # how often the child checks the SSH session (a drop is seen in ~1 s)


@dataclass(frozen=True)
class _TunnelArgs:
    ssh_host: str
    ssh_port: int
    username: str
    private_key_path: str
    passphrase: str | None
    known_hosts: str | None  # None: strict_host_key_checking is off
    remote_host: str
    remote_port: int
    local_port: int
    timeout_s: float
    keepalive_s: float


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


def _run_forward(args: _TunnelArgs, conn: multiprocessing.connection.Connection) -> None:
    """Child process body: start the forward, report, keep it up until told to stop."""
    import paramiko
    import sshtunnel

    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    sshtunnel.SSH_TIMEOUT = args.timeout_s  # connect timeout of the gateway session
    # sshtunnel swallows paramiko's AuthenticationException and only logs it at
    # DEBUG; keep its messages to tell "wrong key" from "unreachable".
    seen: list[str] = []
    tunnel_log = logging.getLogger("s3backup.sshtunnel")
    tunnel_log.propagate = False
    tunnel_log.setLevel(logging.DEBUG)
    tunnel_log.addHandler(_ListHandler(seen))
    try:
        host_key = (
            verified_host_key(args.ssh_host, args.ssh_port, args.known_hosts, args.timeout_s)
            if args.known_hosts
            else None
        )
        forwarder = _start_forwarder(args, host_key, args.local_port, tunnel_log)
    except HostKeyProblem as exc:
        conn.send(("config", str(exc)))
        return
    except paramiko.AuthenticationException:
        conn.send(("error", "authentication failed (check username and private_key_path)"))
        return
    except paramiko.BadHostKeyException:
        conn.send(("error", "host key does not match known_hosts"))
        return
    except Exception as exc:  # anything else is reported to the parent as text
        if "Authentication error" in seen:
            conn.send(("error", "authentication failed (check username and private_key_path)"))
        else:
            conn.send(("error", _describe(exc)))
        return
    port = forwarder.local_bind_port
    try:
        conn.send(("ok", port))
        # Health check: a dropped SSH session is re-opened on the same local port, so
        # the reader's reconnect (processing.retries) finds the tunnel again.
        while not conn.poll(_HEALTH_CHECK_S):
            if _session_alive(forwarder):
                continue
            forwarder.stop(force=True)
            with contextlib.suppress(Exception):  # the bastion is still away: next check
                forwarder = _start_forwarder(args, host_key, port, tunnel_log)
    except (EOFError, OSError):
        pass  # the parent is gone
    finally:
        forwarder.stop(force=True)


def _start_forwarder(args: _TunnelArgs, host_key: Any, local_port: int, logger: Any) -> Any:
    import sshtunnel

    forwarder = sshtunnel.SSHTunnelForwarder(
        (args.ssh_host, args.ssh_port),
        ssh_username=args.username,
        ssh_pkey=args.private_key_path,
        ssh_private_key_password=args.passphrase,
        ssh_host_key=host_key,
        allow_agent=False,
        host_pkey_directories=[],
        remote_bind_address=(args.remote_host, args.remote_port),
        local_bind_address=("127.0.0.1", local_port),
        set_keepalive=args.keepalive_s,
        ssh_config_file=None,
        logger=logger,
    )
    forwarder.start()
    return forwarder


def _session_alive(forwarder: Any) -> bool:
    # sshtunnel keeps its paramiko Transport in ``_transport`` (no public accessor).
    transport = getattr(forwarder, "_transport", None)
    return transport is not None and bool(transport.is_active())


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Could not establish session" in text or "Unable to connect" in text:
        cause = exc.__cause__ or exc.__context__
        return f"{text}: {cause}" if cause else text
    return text


class SSHTunnel:
    """Context manager: a local port forwarded through a bastion to ``remote``.

    ``with SSHTunnel(cfg, "db.internal", 3306, label="US_DW") as (host, port): ...``
    """

    def __init__(
        self, cfg: SSHTunnelConfig, remote_host: str, remote_port: int, *, label: str
    ) -> None:
        if not (cfg.host and cfg.username and cfg.private_key_path):
            raise ConfigError(f"{label}: ssh_tunnel needs host, username and private_key_path")
        passphrase = cfg.private_key_passphrase
        self._args = _TunnelArgs(
            ssh_host=cfg.host,
            ssh_port=cfg.port,
            username=cfg.username,
            private_key_path=cfg.private_key_path,
            passphrase=passphrase.get_secret_value() if passphrase else None,
            known_hosts=known_hosts_file(cfg),
            remote_host=remote_host,
            remote_port=remote_port,
            local_port=cfg.local_port,
            timeout_s=10.0,
            keepalive_s=cfg.keepalive_seconds,
        )
        self._label = label
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self.local_port: int | None = None

    def __enter__(self) -> tuple[str, int]:
        if self._args.known_hosts is None:
            log.warning(
                "ssh_tunnel.strict_host_key_checking is false: the bastion's host key is "
                "not checked",
                tunnel=self._label,
                host=f"{self._args.ssh_host}:{self._args.ssh_port}",
            )
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_run_forward, args=(self._args, child), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        where = f"SSH tunnel for {self._label} via {self._args.ssh_host}:{self._args.ssh_port}"
        if not parent.poll(_START_TIMEOUT_S):
            self._close()
            raise SourceConnectionError(f"{where}: no answer within {_START_TIMEOUT_S:.0f}s")
        try:
            status, value = parent.recv()
        except EOFError:
            self._close()
            raise SourceConnectionError(f"{where}: tunnel process died while starting") from None
        if status == "config":
            self._close()
            raise ConfigError(f"{where}: {value}")
        if status != "ok":
            self._close()
            raise SourceConnectionError(f"{where}: {value}")
        self.local_port = int(value)
        return "127.0.0.1", self.local_port

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send("stop")
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        self._conn = self._process = None
