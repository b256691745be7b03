"""Private MariaDB and PostgreSQL servers for one test module, with the settings it needs.

The shared servers keep their settings (TLS off); a test that needs a server with
TLS (or without) starts its own on a free port in a temporary directory and stops
it afterwards. MariaDB: ``mariadb-install-db`` then ``mariadbd`` (about 2 s);
PostgreSQL: ``initdb`` then ``pg_ctl start`` as the ``postgres`` user, which the
server requires when the tests run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pymysql

# The newest server Debian's packages installed (scripts/services.sh installs "postgresql").
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A server's certificate, its key and the CA that signed it (PEM paths)."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class PrivateServer:
    """A private server's address (user ``root`` on MariaDB, ``postgres`` on PostgreSQL)."""

    host: str
    port: int
    user: str
    database: str


def _as_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def private_mariadb(tls: TlsFiles | None) -> Iterator[PrivateServer]:
    """A MariaDB on a free port, with ``--ssl-*`` when ``tls`` is given; user root@127.0.0.1."""
    root = Path(tempfile.mkdtemp(prefix="tls-mariadb-"))
    data, sock, port = root / "data", root / "mysqld.sock", free_port()
    user = ["--user=root"] if _as_root() else []
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}",
         "--auth-root-authentication-method=normal", "--skip-test-db", *user],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    ssl = []
    if tls is not None:
        ssl = [f"--ssl-ca={tls.ca}", f"--ssl-cert={tls.cert}", f"--ssl-key={tls.key}"]
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--log-error={root / 'error.log'}",
         f"--pid-file={root / 'mariadbd.pid'}", f"--tmpdir={root}", "--skip-name-resolve",
         "--skip-log-bin", *ssl, *user],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
                break
            except pymysql.err.MySQLError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((root / "error.log").read_text()) from None
                time.sleep(0.1)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            cur.execute("CREATE DATABASE tls_src")
        yield PrivateServer("127.0.0.1", port, "root", "tls_src")
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        if server.poll() is None:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres(tls: TlsFiles | None) -> Iterator[PrivateServer]:
    """A PostgreSQL on a free port, ``ssl = on`` with ``tls``'s pair when given; user postgres."""
    root = Path(tempfile.mkdtemp(prefix="tls-postgres-"))
    data, port = root / "data", free_port()
    run_as = ["runuser", "-u", "postgres", "--"] if _as_root() else []
    if _as_root():
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    conf = [
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{root}'",
        "fsync = off",
    ]
    if tls is not None:
        for name in ("cert", "key"):  # the server reads them as its own user, key 0600
            target = data / f"server.{name}"
            shutil.copy(getattr(tls, name), target)
            target.chmod(0o600)
            if _as_root():
                shutil.chown(target, "postgres", "postgres")
        conf += ["ssl = on", "ssl_cert_file = 'server.cert'", "ssl_key_file = 'server.key'"]
    with (data / "postgresql.conf").open("a") as handle:
        handle.write("\n".join(conf) + "\n")
    log = root / "server.log"
    subprocess.run(
        [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                sslmode="disable" if tls is None else "prefer")  # fmt: skip
        conn.close()
        yield PrivateServer("127.0.0.1", port, "postgres", "postgres")
    finally:
        subprocess.run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
