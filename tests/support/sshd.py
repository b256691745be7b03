"""A real OpenSSH server on loopback with throwaway keys, for SSH tunnel tests.

Uses Debian's ``/usr/sbin/sshd`` (package ``openssh-server``) and ``ssh-keygen``
(``openssh-client``); ``scripts/test.sh`` installs both on a fresh machine.
:func:`sshd_server` generates a host key, an authorised client key and a second,
*unauthorised* client key, writes a private config (free port on 127.0.0.1, key
auth only, TCP forwarding allowed), starts sshd (it daemonises and writes its
pid file), waits for its SSH banner, and stops it by pid on exit.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SshdServer:
    """A running loopback sshd and the files a client needs to use it."""

    host: str
    port: int
    user: str
    private_key_path: Path
    """Client key listed in the server's authorized_keys."""
    wrong_key_path: Path
    """A valid client key that the server does NOT authorise."""
    known_hosts_path: Path
    """known_hosts with this server's host key for ``[127.0.0.1]:<port>``."""
    log_path: Path
    pid: int
    config_path: Path

    def tunnel(self, **overrides: Any) -> dict[str, Any]:
        """An ``ssh_tunnel:`` block of ``connections.yml`` through this server."""
        return {
            "enabled": True,
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "private_key_path": str(self.private_key_path),
            "known_hosts": str(self.known_hosts_path),
            **overrides,
        }

    def log_text(self) -> str:
        """The sshd log so far (``-E`` file)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, key_type: str, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    path.chmod(0o600)


def _banner(port: int) -> bytes | None:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.settimeout(2.0)
            return sock.recv(256)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _stop(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _write_config(base: Path, port: int, host_key: Path, authorized: Path, pid_file: Path) -> Path:
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {HOST}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {pid_file}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowTcpForwarding yes",
                "PermitRootLogin prohibit-password",
                "X11Forwarding no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "MaxStartups 100:30:200",
                "",
            ]
        )
    )
    return config


@contextmanager
def sshd_server(tmp_dir: Path | str, key_type: str = "ed25519") -> Iterator[SshdServer]:
    """Run ``/usr/sbin/sshd`` on a free 127.0.0.1 port with throwaway keys under ``tmp_dir``.

    Yields an :class:`SshdServer`; the current user may log in with
    ``private_key_path`` (not with ``wrong_key_path``). Raises ``RuntimeError``
    with the sshd log if the server does not come up within a bounded wait.
    """
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError(f"{SSHD} not found: install Debian package openssh-server")
    base = Path(tmp_dir)
    base.mkdir(parents=True, exist_ok=True)
    host_key = base / "ssh_host_key"
    client_key = base / "client_key"
    wrong_key = base / "wrong_key"
    for path, comment in ((host_key, "host"), (client_key, "client"), (wrong_key, "wrong")):
        _keygen(path, key_type, f"test-{comment}")
    authorized = base / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)
    pid_file = base / "sshd.pid"
    log_path = base / "sshd.log"
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory

    port = _free_port()
    config = _write_config(base, port, host_key, authorized, pid_file)
    known_hosts = base / "known_hosts"
    host_pub = Path(f"{host_key}.pub").read_text().split()
    known_hosts.write_text(f"[{HOST}]:{port} {host_pub[0]} {host_pub[1]}\n")

    started = subprocess.run(
        [SSHD, "-f", str(config), "-E", str(log_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
    )

    def _log() -> str:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        return f"{started.stdout}{started.stderr}{text}"

    if started.returncode != 0:
        raise RuntimeError(f"sshd failed to start (exit {started.returncode}):\n{_log()}")

    pid: int | None = None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if pid is None and pid_file.exists():
                text = pid_file.read_text().strip()
                pid = int(text) if text.isdigit() else None
            if pid is not None:
                if not _alive(pid):
                    raise RuntimeError(f"sshd (pid {pid}) exited during startup:\n{_log()}")
                banner = _banner(port)
                if banner and banner.startswith(b"SSH-"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sshd did not answer with an SSH banner on {HOST}:{port} within "
                    f"{STARTUP_TIMEOUT_S:.0f} s:\n{_log()}"
                )
            time.sleep(0.05)
        server = SshdServer(
            host=HOST,
            port=port,
            user=pwd.getpwuid(os.geteuid()).pw_name,
            private_key_path=client_key,
            wrong_key_path=wrong_key,
            known_hosts_path=known_hosts,
            log_path=log_path,
            pid=pid,
            config_path=config,
        )
        yield server
    finally:
        if pid is not None:
            _stop(pid)
