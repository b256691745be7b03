"""The bastion's host key, checked against OpenSSH ``known_hosts`` before a tunnel opens.

Checked by default (``strict_host_key_checking: true``): the configured
``known_hosts``, else ``~/.ssh/known_hosts``. An unknown or changed key is refused
with the host, key type and SHA256 fingerprint (as ``ssh`` prints them) and what
to do; sshtunnel itself would only say "An error occurred while opening tunnels".
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from typing import Any

from src.config.transport import SSHTunnelConfig

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# Modern key types first; the server is asked for exactly the type known_hosts holds.
_PREFERRED = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")


class HostKeyProblem(Exception):
    """The bastion's key is unknown or changed: a person must check it (not retried)."""


def known_hosts_file(cfg: SSHTunnelConfig) -> str | None:
    """The known_hosts file to check against, or None when checking is switched off."""
    if not cfg.strict_host_key_checking:
        return None
    return os.path.expanduser(cfg.known_hosts or DEFAULT_KNOWN_HOSTS)


def fingerprint(key: Any) -> str:
    """``SHA256:…`` of a paramiko key, as ``ssh-keygen -lf`` and ``ssh`` print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def verified_host_key(host: str, port: int, path: str, timeout: float) -> Any:
    """The bastion's key when ``path`` knows it and the server presents it; else HostKeyProblem."""
    import paramiko

    name = host if port == 22 else f"[{host}]:{port}"
    entry = paramiko.HostKeys(path).lookup(name) if os.path.isfile(path) else None
    if not entry:
        key = _presented_key(host, port, None, timeout)
        raise HostKeyProblem(
            f"the host key of {name} is not known: it presents {key.get_name()} "
            f"{fingerprint(key)}, and {path} has no key for it; check that fingerprint "
            f"with the bastion's administrator, then add it: ssh-keyscan -p {port} {host} "
            f">> {path} (or set ssh_tunnel.known_hosts)"
        )
    kind = next((k for k in _PREFERRED if k in entry), next(iter(entry.keys())))
    expected = entry[kind]
    key = _presented_key(host, port, kind, timeout)
    if key.asbytes() != expected.asbytes():
        raise HostKeyProblem(
            f"the host key of {name} has changed: it presents {kind} {fingerprint(key)}, "
            f"{path} has {fingerprint(expected)}; someone may be intercepting the "
            f"connection. If the bastion was re-keyed, replace its entry: ssh-keygen -R "
            f"'{name}' -f {path}, then ssh-keyscan -p {port} {host} >> {path}"
        )
    return expected


def _presented_key(host: str, port: int, kind: str | None, timeout: float) -> Any:
    """The key the server shows in a key exchange (of type ``kind`` when given)."""
    import paramiko

    sock = socket.create_connection((host, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        if kind is not None:
            transport.get_security_options().key_types = [kind]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()
