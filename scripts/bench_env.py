"""The benchmark's servers and how it runs a measured command (scripts/bench.py)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
import pymysql
from seed_demo import seed

ROOT = Path(__file__).resolve().parents[1]
TABLE = "parcels"
COLUMNS = (
    "id, tracking_number, order_id, status, is_active, weight, price, zone, note, "
    "created_at, updated_at, shipped_date"
)


@dataclass
class Measured:
    """One child process: wall seconds and its peak RSS."""

    seconds: float
    peak_mb: float
    output: str = ""


class BenchError(RuntimeError):
    """A measured command failed."""


# A fresh, minimal Python process starts each measured command and reports its
# wall time and peak RSS. Measured from the benchmark process itself, os.wait4's
# ru_maxrss would include the benchmark's own RSS: Python starts children with
# vfork, and exec records the high-water mark of the memory it replaces
# (the parent's, ~100 MB here). This wrapper's own is ~10 MB.
_WRAPPER = """
import os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {seconds} {usage.ru_maxrss}")
"""


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    keep_output: bool = True,
    expect: int = 0,
) -> Measured:
    """Run ``command`` in a fresh child; its wall time and peak RSS (``ru_maxrss``)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as result:
        stdout: Any = out if keep_output else subprocess.DEVNULL
        wrapper = [sys.executable, "-S", "-c", _WRAPPER, result.name, *command]
        subprocess.run(
            wrapper, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=out
        )
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        fields = result.read().split()
    if len(fields) != 3 or fields[0] != str(expect):
        code = fields[0] if fields else "?"
        raise BenchError(f"exit {code}: {shlex.join(command)}\n{text[-4000:]}")
    return Measured(float(fields[1]), int(fields[2]) / 1024, text)  # Linux: KiB


@dataclass(frozen=True)
class Servers:
    """Where MariaDB and PostgreSQL are."""

    mysql_host: str
    mysql_port: int
    mysql_user: str
    mysql_password: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_database: str

    def mysql(self, database: str | None = None, *, utc: bool = False) -> Any:
        return pymysql.connect(
            host=self.mysql_host,
            port=self.mysql_port,
            user=self.mysql_user,
            password=self.mysql_password,
            database=database,
            autocommit=True,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'" if utc else None,
        )

    def mysql_for(self, database: str) -> Any:
        """A factory of connections to ``database`` (UTC session, like the tool's)."""
        return lambda: self.mysql(database, utc=True)

    def pg(self) -> Any:
        """A new PostgreSQL connection."""
        return psycopg2.connect(
            host=self.pg_host, port=self.pg_port, user=self.pg_user, dbname=self.pg_database
        )

    def pg_execute(self, *statements: str) -> list[tuple[Any, ...]]:
        conn = self.pg()
        conn.autocommit = True
        rows: list[tuple[Any, ...]] = []
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                    if cur.description is not None:
                        rows = list(cur.fetchall())
        finally:
            conn.close()
        return rows

    def mysql_url(self) -> str:
        """``mysql://user:password@host:port`` (for the peers' environment)."""
        return f"mysql://{quote(self.mysql_user)}:{quote(self.mysql_password)}@" + (
            f"{self.mysql_host}:{self.mysql_port}"
        )

    def pg_url(self) -> str:
        """``postgresql://user:password@host:port/database``, password from PGPASSWORD."""
        password = quote(os.environ.get("PGPASSWORD", ""))
        return (
            f"postgresql://{quote(self.pg_user)}:{password}@{self.pg_host}:{self.pg_port}/"
            + quote(self.pg_database)
        )

    def settle(self, timeout: float = 30.0) -> None:
        """Let both servers finish what earlier writes left them before a timed run.

        Right after the j change MariaDB holds ~100 MB of dirty pages (and the
        peers' first syncs leave PostgreSQL a checkpoint to write): a run started
        then competes with their flushing while the runs after it do not. MariaDB
        10.5+ with ``innodb_max_dirty_pages_pct_lwm = 0`` (Debian's default) does
        not flush an idle buffer pool at all, so waiting alone can wait forever:
        ``innodb_max_dirty_pages_pct = 0`` makes its page cleaner flush them now,
        and the old value is put back. The wait ends when at most 100 pages are
        dirty, when the count stops falling for 2 s, or after ``timeout``.
        """
        # CHECKPOINT needs a superuser (or pg_checkpoint); without, settle MariaDB only
        with contextlib.suppress(psycopg2.Error):
            self.pg_execute("CHECKPOINT")
        conn = self.mysql()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
                saved = cur.fetchone()[0]
                forced = True
                try:
                    cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
                except pymysql.err.MySQLError:  # no privilege: wait for what it flushes
                    forced = False
                try:
                    _wait_flushed(cur, timeout)
                finally:
                    if forced:
                        cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (saved,))
        finally:
            conn.close()

    def fresh_schema(self, schema: str) -> None:
        self.pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', f'CREATE SCHEMA "{schema}"')

    def mysql_command(self, database: str, where: str = "") -> list[str]:
        return [
            "mysql",
            "--quick",
            f"-h{self.mysql_host}",
            f"-P{self.mysql_port}",
            f"-u{self.mysql_user}",
            database,
            "-e",
            f"SELECT {COLUMNS} FROM {TABLE}" + (f" WHERE {where}" if where else ""),
        ]

    def psql_command(self, sql: str) -> list[str]:
        return [
            "psql",
            f"-h{self.pg_host}",
            f"-p{self.pg_port}",
            f"-U{self.pg_user}",
            "-d",
            self.pg_database,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]


def ensure_table(servers: Servers, database: str, rows: int) -> str:
    """``database.parcels`` with exactly ``rows`` rows; built unless already there."""
    conn = servers.mysql()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (database, TABLE),
            )
            if cur.fetchone()[0]:
                cur.execute(f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM `{database}`.{TABLE}")
                if cur.fetchone() == (rows, rows):
                    return f"{database}.{TABLE}: {rows:,} rows already there"
    finally:
        conn.close()
    started = time.perf_counter()
    seed(
        rows,
        database,
        servers.mysql_host,
        servers.mysql_port,
        servers.mysql_user,
        servers.mysql_password,
    )
    return f"built {database}.{TABLE}: {rows:,} rows in {time.perf_counter() - started:.1f} s"


def child_env() -> dict[str, str]:
    """The environment for product children: no BACKUP_* or AWS_* leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}


def _wait_flushed(cur: Any, timeout: float) -> None:
    """Until MariaDB has at most 100 dirty pages, their count stalls for 2 s, or ``timeout``."""
    deadline = time.monotonic() + timeout
    best, since = None, time.monotonic()
    while time.monotonic() < deadline:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
        dirty = int(cur.fetchone()[1])
        if dirty <= 100:
            return
        if best is None or dirty < best:
            best, since = dirty, time.monotonic()
        elif time.monotonic() - since > 2.0:
            return  # not falling: something keeps writing, or nothing flushes
        time.sleep(0.1)
