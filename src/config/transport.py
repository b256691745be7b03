"""How a connection travels: through an SSH bastion (``ssh_tunnel:``), over TLS (``tls:``).

The settings of ``connections.yml``'s sources and targets that say how the bytes
get to the server; :mod:`src.config.settings` holds the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MySQLTls(_Frozen):
    """TLS to a MySQL source, in MySQL's own ``--ssl-mode`` words (docs/configuration.md).

    ``preferred`` (the default, as before): encrypted when the server offers TLS,
    nothing verified. ``required``: encrypted or no connection. ``verify_ca``: the
    server's certificate signed by ``ca`` (the system's store without one).
    ``verify_identity``: that, and issued to the configured host name (also through
    an SSH tunnel). ``cert``/``key``: a client certificate.
    """

    mode: Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"] = "preferred"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> MySQLTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        return self

    @property
    def verifies(self) -> bool:
        """Whether the server's certificate is checked."""
        return self.mode in ("verify_ca", "verify_identity")


class TargetTls(_Frozen):
    """TLS to PostgreSQL or Redshift: libpq's ``sslmode`` and ``sslrootcert``.

    ``prefer`` (the default, as before): encrypted when the server offers TLS,
    nothing verified; ``verify-full``: signed by ``ca`` and issued to the
    configured host name (also through an SSH tunnel).
    https://www.postgresql.org/docs/current/libpq-ssl.html
    """

    mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ca: str | None = None

    @property
    def verifies(self) -> bool:
        """Whether the server's certificate is checked."""
        return self.mode in ("verify-ca", "verify-full")


class SSHTunnelConfig(_Frozen):
    """An SSH bastion that a MySQL source or a target is reached through."""

    enabled: bool = False
    host: str | None = None
    port: int = 22
    username: str | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    local_port: int = Field(0, ge=0, le=65535)
    known_hosts: str | None = None  # default ~/.ssh/known_hosts
    # false: accept any host key (warned on every run); see src/core/ssh_host_keys.py
    strict_host_key_checking: bool = True
    # SSH keep-alive interval of the session, so NAT and firewalls keep a long read's tunnel.
    keepalive_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SSHTunnelConfig:
        if self.enabled:
            missing = [k for k in ("host", "username", "private_key_path") if not getattr(self, k)]
            if missing:
                raise ValueError(f"ssh_tunnel is enabled but {', '.join(missing)} not set")
        return self
