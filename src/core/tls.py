"""TLS for the MySQL readers and the target: one context per setting, the name to verify.

A connection through an SSH tunnel dials ``127.0.0.1``: the certificate must still
be checked against the configured host name, never the tunnel's address. PyMySQL
verifies the name it dialled, so :class:`NamedContext` checks the configured one;
libpq takes the name as ``host`` and the address as ``hostaddr``.

connectorx (its Rust ``mysql`` crate) accepts ``ssl-mode`` and ``ssl-ca`` in its URL
(measured with 0.4.6) but no client certificate, and checks the host it dials; its
``PREFERRED`` refuses a server without TLS. So ``preferred`` reads with connectorx
unencrypted (as before), ``required``/``verify_ca`` and a direct ``verify_identity``
read encrypted and verified, and a client certificate or ``verify_identity``
through a tunnel read with PyMySQL.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any
from urllib.parse import quote

from src.config.transport import MySQLTls, TargetTls


class NamedContext(ssl.SSLContext):
    """An SSL context that verifies the server as ``server_name``, whatever was dialled."""

    server_name: str | None = None

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        """Wrap ``sock``, checking the certificate against :attr:`server_name`."""
        if self.server_name is not None:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


@functools.cache
def mysql_context(tls: MySQLTls, server_name: str) -> ssl.SSLContext:
    """The client context of a ``required`` or ``verify_*`` MySQL connection (built once)."""
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT  # as PyMySQL: MySQL's own certificates
    ctx.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
    if tls.verifies:
        if tls.ca:
            ctx.load_verify_locations(cafile=tls.ca)
        else:
            ctx.load_default_certs()
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = tls.mode == "verify_identity"
        ctx.server_name = server_name
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert and tls.key:
        ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


def pymysql_tls(tls: MySQLTls, server_name: str) -> dict[str, Any]:
    """PyMySQL's connect arguments for ``tls`` (none for ``preferred``: the cheap default)."""
    if tls.mode == "disabled":
        return {"ssl_disabled": True}
    if tls.mode == "preferred":
        return {}
    return {"ssl": mysql_context(tls, server_name)}


def connectorx_tls(tls: MySQLTls) -> str:
    """The URL parameters connectorx needs for ``tls`` (empty for ``preferred``)."""
    if tls.mode == "preferred":
        return ""
    params = f"&ssl-mode={tls.mode.upper()}"
    if tls.ca and tls.verifies:
        params += f"&ssl-ca={quote(tls.ca, safe='/')}"
    return params


def connectorx_cannot(tls: MySQLTls, dialled: str, server_name: str) -> str | None:
    """Why connectorx cannot keep ``tls`` here (PyMySQL reads then); None when it can."""
    if tls.cert:
        return "connectorx cannot present a client certificate (tls.cert)"
    if tls.mode == "verify_identity" and dialled != server_name:
        return f"connectorx would verify {dialled} (the tunnel), not {server_name}"
    return None


def libpq_tls(tls: TargetTls) -> dict[str, str]:
    """psycopg2's connect arguments for ``tls`` (libpq's ``sslmode``, ``sslrootcert``)."""
    args: dict[str, str] = {"sslmode": tls.mode}
    if tls.ca:
        args["sslrootcert"] = tls.ca
    return args
