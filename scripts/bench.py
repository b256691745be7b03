#!/usr/bin/env python
"""Benchmark the product against the tools that bound it (SPEC §10), in one run.

Builds the SPEC §10.1 ``parcels`` table with ``--rows`` rows in database
``<prefix>_src`` (default ``bench_src``; one INSERT … SELECT from MariaDB's
Sequence engine, reused when it already has exactly that many rows), then times,
side by side, each measure in a fresh child process, started by a minimal
wrapper whose ``os.wait4`` gives its wall time and peak RSS (``ru_maxrss``: that
child and its waited-for children only):

a. ``mysql --quick … -e "SELECT … FROM parcels" > /dev/null`` — backup reference;
b. ``sync pipeline --backup-only`` into a local stage directory (also with chunks of
   50,000 and 1,000,000 rows, issue #13's range, each in a fresh stage and target);
c. the same into the S3 API server of the test harness (moto; ``--skip-s3`` skips it);
d. ``psql -c "\\copy <prefix>_ref.parcels FROM 'parcels.csv' CSV"`` — load reference
   (the CSV is exported once from the Parquet staged by b, untimed, into a table
   created ``LIKE`` the product's target table);
e. ``sync pipeline --redshift-only`` of what b staged, into a fresh target schema;
f. the full ``sync pipeline`` (fresh stage, fresh target) against a + d;
g. the peak RSS of f (and, with ``--memory-rows N``, of a full sync of N rows);
h. a second full sync with nothing new, and a third after 100,000 loaded files were
   added to the table's history (watermark and ledger);
j. the everyday incremental run: 5 % of the rows updated and 0.5 % inserted (untimed),
   then ``sync pipeline`` (the inserted rows are deleted again at the end of the run);
k. a pipeline of 50 tables (``--many-tables``) of 1,000 rows (database ``<prefix>_many``):
   the first sync, then a run with nothing new at ``--parallel 4`` (per table);
p. with ``--peers``: dlt and Sling (scripts/bench_peers.py, their own ``.venv-peers``)
   copy the same table into schemas of their own, first sync after f and incremental
   run after j, each checked against the source; f and j against the faster peer;
i. ``--help``.

Prints a table (seconds, reference, ratio, SPEC goal, pass/fail, peak RSS) and
appends it, dated, with the machine and the exact command, to
``docs/benchmarks.md`` (``--no-record``: don't). With ``--repeat N`` every
timing is the median of N interleaved runs (single runs on a shared 2-core
machine vary by 10-20%). Not a test; ``tests/unit/test_bench_script.py`` only
checks that it runs.

Usage: .venv/bin/python scripts/bench.py [--rows 2000000] [--repeat 3]
       [--memory-rows 10000000] [--skip-s3] [--no-record] [--prefix bench]
       [--strategy hybrid|id_only] [--reader auto|connectorx|pymysql] [--peers] [--cleanup]
(``--reader pymysql`` compares the fallback reader; this replaces the old
scripts/reader_bench.py.)
MySQL: --mysql-host/--mysql-port/--mysql-user (password: env MYSQL_PWD);
PostgreSQL: --pg-host/--pg-port/--pg-user/--pg-database (password: env PGPASSWORD).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import psycopg2  # noqa: E402
import pymysql  # noqa: E402
import yaml  # noqa: E402
from bench_peers import NAMES as PEER_NAMES  # noqa: E402
from bench_peers import Peers, prepare  # noqa: E402
from bench_verify import DIFFERENCES, reference_pass, scatter_differences  # noqa: E402
from seed_demo import FILL, seed  # noqa: E402

from src.core.simple_watermark_manager import Watermark  # noqa: E402

TABLE = "parcels"
COLUMNS = (
    "id, tracking_number, order_id, status, is_active, weight, price, zone, note, "
    "created_at, updated_at, shipped_date"
)
PIPELINE = "bench"
SCOPE = "BENCH"
HISTORY_FILES = 100_000
MANY_ROWS = 1_000  # k: a pipeline of --many-tables tables of this many rows
SWEEP_CHUNKS = (50_000, 1_000_000)  # b again at the ends of the chunk sizes operators use
ROWS_PER_FILE = 500_000  # connections.yml backup.batch_size
CHUNK_ROWS = 100_000  # pipeline processing.batch_size
MEMORY_LIMIT_MB = 300.0
FLAT_TOLERANCE = 0.10  # "the same for 2M and 10M": within 10 %
RECORD_FILE = ROOT / "docs" / "benchmarks.md"
STRATEGIES: dict[str, dict[str, str]] = {
    "hybrid": {
        "cdc_strategy": "hybrid",
        "cdc_timestamp_column": "updated_at",
        "cdc_id_column": "id",
    },
    "id_only": {"cdc_strategy": "id_only", "cdc_id_column": "id"},
}


# ------------------------------------------------------------------ running
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


# ---------------------------------------------------------------- databases
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


# ------------------------------------------------------------------ project
@dataclass
class Project:
    """A throwaway config dir for ``sync pipeline -p bench`` and how to run it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "src.cli.main", "--config-dir", str(self.config_dir), *args]

    reader: str = "auto"

    def sync(self, table: str, *extra: str) -> Measured:
        args = ["sync", "pipeline", "-p", PIPELINE, "-t", table, "--reader", self.reader, *extra]
        return run_measured(self.command(*args), env=self.env)

    def sync_all(self, *extra: str) -> Measured:
        """``sync pipeline`` of every table of the pipeline."""
        args = ["sync", "pipeline", "-p", PIPELINE, "--reader", self.reader, *extra]
        return run_measured(self.command(*args), env=self.env)

    def verify(self, table: str, *extra: str, expect: int = 0) -> Measured:
        args = ["verify", "-p", PIPELINE, "-t", table, "--json", *extra]
        return run_measured(self.command(*args), env=self.env, expect=expect)


def child_env() -> dict[str, str]:
    """The environment for product children: no BACKUP_* or AWS_* leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}


def make_project(
    root: Path,
    servers: Servers,
    database: str,
    target_schema: str,
    stage: dict[str, Any],
    strategy: str = "hybrid",
    reader: str = "auto",
    tables: Sequence[str] = (TABLE,),
    chunk_rows: int = CHUNK_ROWS,
) -> Project:
    """Write connections.yml and pipelines/bench.yml for ``database.<tables>``."""
    config = root / "config"
    (config / "pipelines").mkdir(parents=True, exist_ok=True)
    connections = {
        "connections": {
            "sources": {
                SCOPE: {
                    "host": servers.mysql_host,
                    "port": servers.mysql_port,
                    "database": database,
                    "username": servers.mysql_user,
                    "password": "${DB_BENCH_MYSQL_PASSWORD:-}",
                }
            },
            "targets": {
                "pg": {
                    "type": "postgres",
                    "host": servers.pg_host,
                    "port": servers.pg_port,
                    "database": servers.pg_database,
                    "username": servers.pg_user,
                    "password": "${DB_BENCH_PG_PASSWORD:-}",
                    "schema": target_schema,
                }
            },
        },
        "s3_configs": {"stage": stage},
        "backup": {"batch_size": max(ROWS_PER_FILE, chunk_rows)},
    }
    pipeline = {
        "pipeline": {
            "name": PIPELINE,
            "source": SCOPE,
            "target": "pg",
            "processing": {"batch_size": chunk_rows},
        },
        "tables": {f"{database}.{name}": STRATEGIES[strategy] for name in tables},
    }
    (config / "connections.yml").write_text(yaml.safe_dump(connections))
    (config / "pipelines" / f"{PIPELINE}.yml").write_text(yaml.safe_dump(pipeline))
    env = child_env()
    env["DB_BENCH_MYSQL_PASSWORD"] = servers.mysql_password
    env["DB_BENCH_PG_PASSWORD"] = os.environ.get("PGPASSWORD", "")
    return Project(root, env, reader)


def local_project(
    work: Path,
    name: str,
    servers: Servers,
    database: str,
    target_schema: str,
    args: Any,
    tables: Sequence[str] = (TABLE,),
    chunk_rows: int = CHUNK_ROWS,
) -> Project:
    """A project with a fresh local stage directory under ``work/name``."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    stage = {"local_path": str(root / "stage")}
    strategy, reader = args.strategy, args.reader
    return make_project(
        root, servers, database, target_schema, stage, strategy, reader, tables, chunk_rows
    )


def many_tables(servers: Servers, database: str, count: int) -> list[str]:
    """``database`` with ``count`` small tables (built unless already there)."""
    names = [f"t{n:03d}" for n in range(count)]
    conn = servers.mysql()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                (database,),
            )
            if cur.fetchone()[0] == count:
                return names
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"CREATE DATABASE `{database}`")
            for name in names:
                cur.execute(
                    f"CREATE TABLE `{database}`.{name} (id INT PRIMARY KEY, note VARCHAR(50), "
                    "updated_at DATETIME(6) NOT NULL, KEY ix (updated_at, id))"
                )
                cur.execute(
                    f"INSERT INTO `{database}`.{name} SELECT seq, CONCAT('n', seq), "
                    f"'2025-01-01' + INTERVAL seq SECOND FROM `{database}`.seq_1_to_{MANY_ROWS}"
                )
    finally:
        conn.close()
    return names


def change_rows(servers: Servers, database: str, rows: int) -> str:
    """The everyday change: 5 % of the rows updated now, 0.5 % new rows (ids past ``rows``).

    Returns the greatest ``updated_at`` before the change (the hand floor reads past it).
    """
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT MAX(updated_at) FROM {TABLE}")
            since = str(cur.fetchone()[0])
            cur.execute(
                f"UPDATE {TABLE} SET note = CONCAT('changed ', id), updated_at = "
                "NOW(6) - INTERVAL 10 SECOND WHERE id % 20 = 7"
            )
            extra = max(1, rows // 200)
            fill = FILL.format(lo=rows + 1, hi=rows + extra).replace(
                "'2025-01-01' + INTERVAL (seq DIV 3) SECOND", "NOW(6) - INTERVAL 10 SECOND"
            )
            cur.execute(fill)
        conn.commit()
    finally:
        conn.close()
    return since


def incremental_floor(
    servers: Servers, work: Path, database: str, target_schema: str, since: str
) -> Measured:
    r"""The incremental run by hand: ``mysql`` reads the changed rows, ``psql`` merges them.

    The rows past ``since`` (the ``(updated_at, id)`` index), as the client's tab
    format, into a file; then one transaction: a temporary table, ``\copy`` of the
    file, ``DELETE … USING`` and ``INSERT`` into ``target_schema.parcels``.
    """
    changed = work / "changed.tsv"
    read = [*servers.mysql_command(database, f"updated_at > '{since}'"), "--skip-column-names"]
    reading = run_measured(["sh", "-c", f"{shlex.join(read)} > {shlex.quote(str(changed))}"])
    target = f'"{target_schema}".{TABLE}'
    psql = servers.psql_command("")[:-2]  # without its -c
    merge = [
        "CREATE TEMP TABLE changed (LIKE " + target + ") ON COMMIT DROP",
        f"\\copy changed FROM '{changed}' WITH (FORMAT text, NULL 'NULL')",
        f"DELETE FROM {target} t USING changed s WHERE t.id = s.id",
        f"INSERT INTO {target} SELECT * FROM changed",
    ]
    merging = run_measured([*psql, "-1", *(a for sql in merge for a in ("-c", sql))])
    changed.unlink()
    return Measured(reading.seconds + merging.seconds, max(reading.peak_mb, merging.peak_mb))


def peer_run(
    peers: Peers, servers: Servers, name: str, database: str, prefix: str, *, first: bool
) -> Measured:
    """One run of peer ``name`` (into fresh schemas when ``first``), checked against the source.

    The check: as many rows as the source, and as many changed by :func:`change_rows`.
    """
    schemas = peers.schemas(name, prefix)
    if first:
        servers.pg_execute(*(f'DROP SCHEMA IF EXISTS "{s}" CASCADE' for s in schemas))
    command, env = peers.command(name, database, TABLE, schemas[0], first=first)
    measured = run_measured(command, env=child_env() | env, cwd=peers.home)
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), COALESCE(SUM(note LIKE 'changed %%'), 0) FROM {TABLE}")
            expected = tuple(int(v) for v in cur.fetchone())
    finally:
        conn.close()
    copied = servers.pg_execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE note LIKE 'changed %') "
        f'FROM "{schemas[0]}".{TABLE}'
    )[0]
    if tuple(copied) != expected:
        raise BenchError(
            f"{name} copied (rows, changed) {tuple(copied)}, the source has {expected}"
        )
    return measured


def forget_inserted(servers: Servers, database: str, rows: int) -> None:
    """Delete the rows :func:`change_rows` inserted, so the table is reused next time."""
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE id > %s", (rows,))
        conn.commit()
    finally:
        conn.close()


def add_history(project: Project, servers: Servers, target_schema: str, files: int) -> None:
    """Make the table look as if it had loaded ``files`` more files: watermark and ledger."""
    (path,) = (project.root / "stage" / "watermarks" / "v2").glob("*.json")
    doc = json.loads(path.read_text())
    fake = [f"{project.root}/stage/history/old_{n:06d}.parquet" for n in range(files)]
    doc["processed_s3_files"] = fake + doc["processed_s3_files"]
    wm = Watermark.model_validate(doc)
    wm.forget_oldest_loaded()  # as the tool keeps it: the newest names, the rest counted
    path.write_text(json.dumps(wm.document()))
    ledger = f'"{target_schema}".s3_backup_load_ledger'
    names = ",".join(f"'{name}'" for name in fake)  # our own names: no quoting needed
    servers.pg_execute(
        f"INSERT INTO {ledger} SELECT k, '{doc['table_name']}', 10, now(), 'bench' "
        f"FROM unnest(ARRAY[{names}]) k"
    )


def export_csv(stage_dir: Path, csv_path: Path) -> int:
    """The staged Parquet files as one headerless CSV, in key order (untimed)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    files = sorted(stage_dir.rglob("*.parquet"))
    if not files:
        raise BenchError(f"no Parquet file under {stage_dir}")
    rows = 0
    writer: pacsv.CSVWriter | None = None
    try:
        for path in files:
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=100_000):
                if writer is None:
                    options = pacsv.WriteOptions(include_header=False)
                    writer = pacsv.CSVWriter(str(csv_path), batch.schema, write_options=options)
                writer.write_batch(batch)
                rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


# ------------------------------------------------------------------ results
@dataclass
class Row:
    """One line of the result table."""

    measure: str
    value: float | None  # seconds (or MB for memory rows)
    reference: float | None = None
    ratio: float | None = None
    goal: str = ""
    passed: bool | None = None
    peak_mb: float | None = None
    unit: str = "s"


def timed_row(
    measure: str,
    runs: list[Measured],
    reference: float | None,
    limit: float | None,
    goal: str,
    *,
    absolute: float | None = None,
) -> Row:
    """A row of median seconds against a reference (ratio limit) or an absolute limit."""
    seconds = statistics.median(r.seconds for r in runs)
    peak = max(r.peak_mb for r in runs)
    ratio = seconds / reference if reference else None
    passed: bool | None = None
    if limit is not None and ratio is not None:
        passed = ratio <= limit
    if absolute is not None:
        passed = seconds <= absolute
    return Row(measure, seconds, reference, ratio, goal, passed, peak)


def per_table_row(measure: str, runs: list[Measured], tables: int) -> Row:
    """Median seconds of a many-table run as milliseconds a table, against 40 ms."""
    per_table = statistics.median(r.seconds for r in runs) / tables * 1000
    peak = max(r.peak_mb for r in runs)
    return Row(measure, per_table, goal="≤ 40 ms", passed=per_table <= 40, peak_mb=peak, unit="ms")


def peer_rows(runs: dict[str, list[Measured]], peers: Peers | None) -> list[Row]:
    """p: each peer's two runs, then f and j against the faster peer (issue #13's goals)."""
    if peers is None:
        return [Row("p. dlt and Sling side by side", None, goal="skipped (without --peers)")]
    rows: list[Row] = []
    for name in PEER_NAMES:
        rows.append(timed_row(f"p. {name}: first full sync", runs[f"p1{name}"], None, None, ""))
        rows.append(
            timed_row(f"p. {name}: the j incremental run", runs[f"p2{name}"], None, None, "")
        )
    for run, ours, what, faster in (
        ("1", "f", "full sync", 3.0),
        ("2", "j", "incremental run", 1.6),
    ):
        best = min(
            PEER_NAMES, key=lambda n: statistics.median(r.seconds for r in runs[f"p{run}{n}"])
        )
        reference = statistics.median(r.seconds for r in runs[f"p{run}{best}"])
        measure = f"p. {ours}. {what} against the faster peer ({best})"
        goal = f"≥ {faster}× faster (≤ {1 / faster:.2f}×)"
        rows.append(timed_row(measure, runs[ours], reference, 1 / faster, goal))
    return rows


def render(rows: list[Row]) -> str:
    """The result table as Markdown."""
    lines = [
        "| measure | value | reference | ratio | goal | result | peak RSS |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        value = "—" if r.value is None else f"{r.value:.2f} {r.unit}"
        ref = "" if r.reference is None else f"{r.reference:.2f} s"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}×"
        result = {True: "pass", False: "**FAIL**", None: "—"}[r.passed]
        peak = "" if r.peak_mb is None else f"{r.peak_mb:.0f} MB"
        lines.append(f"| {r.measure} | {value} | {ref} | {ratio} | {r.goal} | {result} | {peak} |")
    return "\n".join(lines)


def machine() -> str:
    """nproc, RAM, CPU model, server and library versions."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "? GiB"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    import connectorx
    import pyarrow

    return (
        f"{os.cpu_count()} × {cpu}, {ram} RAM, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, pyarrow {pyarrow.__version__}, "
        f"connectorx {connectorx.__version__}, psycopg2 {psycopg2.__version__.split()[0]}"
    )


def server_versions(servers: Servers) -> str:
    conn = servers.mysql()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            mysql_version = cur.fetchone()[0]
    finally:
        conn.close()
    pg_version = servers.pg_execute("SHOW server_version")[0][0]
    return f"MariaDB {mysql_version}, PostgreSQL {pg_version}"


def revision() -> str:
    """The checked-out commit (read-only git), with ``+dirty`` for local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def record(text: str) -> None:
    """Append a block to docs/benchmarks.md (created with a heading if absent)."""
    RECORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not RECORD_FILE.exists():
        RECORD_FILE.write_text(
            "# Benchmarks\n\nAppended by `scripts/bench.py` (SPEC §10); newest last. "
            "Single machine, loopback servers: read the ratios, not the seconds.\n"
        )
    with RECORD_FILE.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text.rstrip() + "\n")


# --------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the table")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timing (median)")
    parser.add_argument(
        "--memory-rows",
        type=int,
        default=0,
        help="also the peak RSS of a full sync of this many rows (in <prefix>_mem)",
    )
    parser.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        default="hybrid",
        help="the table's cdc_strategy (hybrid: updated_at, id; id_only: id)",
    )
    parser.add_argument(
        "--reader",
        choices=["auto", "connectorx", "pymysql"],
        default="auto",
        help="sync pipeline --reader (compare the MySQL readers)",
    )
    parser.add_argument("--skip-s3", action="store_true", help="skip the S3 backup (c)")
    parser.add_argument(
        "--many-tables", type=int, default=50, help="tables of the many-table pipeline (k)"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also dlt and Sling, side by side (p; installs .venv-peers when missing)",
    )
    parser.add_argument("--no-record", action="store_true", help="don't append to the docs")
    parser.add_argument(
        "--prefix",
        default="bench",
        help="names: <prefix>_src, _mem, _many (MySQL), <prefix>_dst, _ref, _many_dst (PostgreSQL)",
    )
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-database", default="postgres")
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="drop the MySQL databases and PostgreSQL schemas afterwards",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1 or args.memory_rows < 0:
        parser.error("--rows and --repeat must be at least 1, --memory-rows at least 0")
    return args


@contextlib.contextmanager
def s3_stage(skip: bool) -> Iterator[Any]:
    """The harness's S3 server (a moto subprocess), or None with ``--skip-s3``."""
    if skip:
        yield None
        return
    from tests.support.s3_server import s3_server

    with s3_server() as server:
        yield server


def s3_project(
    work: Path, server: Any, servers: Servers, database: str, target_schema: str, args: Any
) -> tuple[Project, Any]:
    """A project staging into a fresh bucket on ``server``; returns the bucket's context."""
    from tests.support.s3_server import s3_bucket

    bucket_cm = s3_bucket(server, prefix="bench")
    bucket = bucket_cm.__enter__()
    stage = {
        "bucket_name": bucket.name,
        "region": server.region,
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
    }
    root = work / "s3"
    shutil.rmtree(root, ignore_errors=True)
    project = make_project(
        root, servers, database, target_schema, stage, args.strategy, args.reader
    )
    return project, bucket_cm


def main(argv: Sequence[str] | None = None) -> int:
    """Build, measure, print, record; exit 0 even when goals fail (it is a benchmark)."""
    args = parse_args(argv)
    servers = Servers(
        args.mysql_host,
        args.mysql_port,
        args.mysql_user,
        os.environ.get("MYSQL_PWD", ""),
        args.pg_host,
        args.pg_port,
        args.pg_user,
        args.pg_database,
    )
    src_db, mem_db = f"{args.prefix}_src", f"{args.prefix}_mem"
    many_db, many_dst = f"{args.prefix}_many", f"{args.prefix}_many_dst"
    dst, ref = f"{args.prefix}_dst", f"{args.prefix}_ref"
    table = f"{src_db}.{TABLE}"
    started = dt.datetime.now(dt.UTC)
    measured_revision = revision()  # the tree the children run (others may commit meanwhile)
    print(ensure_table(servers, src_db, args.rows), flush=True)
    # Measure the tool as installed: pip compiles an installed package's bytecode,
    # an editable install does not, and with PYTHONDONTWRITEBYTECODE set every run
    # would compile src/ again (~0.1 s, measured).
    compileall.compile_dir(str(ROOT / "src"), quiet=1)

    kinds: tuple[str, ...] = ("a", "b", *(f"b{c}" for c in SWEEP_CHUNKS), "c", "d", "e", "f")
    kinds += ("h", "hh", "j", "jr", "k1", "k2")
    kinds += ("vr", "v", "vk", "v100")
    kinds += tuple(f"p{n}{name}" for n in "12" for name in PEER_NAMES)
    runs: dict[str, list[Measured]] = {k: [] for k in kinds}
    work = Path(tempfile.mkdtemp(prefix="s3backup-bench-"))
    csv_path = work / "parcels.csv"
    peers: Peers | None = None
    try:
        if args.peers:
            peers = prepare(work / "peers", servers.mysql_url(), servers.pg_url())
        with s3_stage(args.skip_s3) as server:
            for n in range(args.repeat):
                print(f"run {n + 1}/{args.repeat}", flush=True)
                # a. the reference reader
                runs["a"].append(run_measured(servers.mysql_command(src_db), keep_output=False))
                # b. backup into a fresh local stage (and a fresh target: a new stage
                # next to a ledger that lists the table's files is refused as a lost
                # watermark)
                servers.fresh_schema(dst)
                backup = local_project(work, "backup", servers, src_db, dst, args)
                runs["b"].append(backup.sync(table, "--backup-only"))
                # b at the chunk sizes operators use, each into a fresh stage and target
                for chunk in SWEEP_CHUNKS:
                    servers.fresh_schema(dst)
                    swept = local_project(work, "b", servers, src_db, dst, args, (TABLE,), chunk)
                    runs[f"b{chunk}"].append(swept.sync(table, "--backup-only"))
                    shutil.rmtree(swept.root, ignore_errors=True)
                if not csv_path.exists():
                    exported = export_csv(backup.root / "stage", csv_path)
                    if exported != args.rows:
                        raise BenchError(f"staged {exported:,} rows, expected {args.rows:,}")
                # c. backup into a fresh bucket on the S3 API server
                if server is not None:
                    s3, bucket_cm = s3_project(work, server, servers, src_db, dst, args)
                    try:
                        runs["c"].append(s3.sync(table, "--backup-only"))
                    finally:
                        bucket_cm.__exit__(None, None, None)
                # e. load what b staged into a fresh target schema
                servers.fresh_schema(dst)
                runs["e"].append(backup.sync(table, "--redshift-only"))
                loaded = servers.pg_execute(f'SELECT COUNT(*) FROM "{dst}".{TABLE}')[0][0]
                if loaded != args.rows:
                    raise BenchError(f"loaded {loaded:,} rows, expected {args.rows:,}")
                # d. the reference loader, into a table like the one e created
                servers.fresh_schema(ref)
                servers.pg_execute(
                    f'CREATE TABLE "{ref}".{TABLE} (LIKE "{dst}".{TABLE} INCLUDING ALL)'
                )
                copy = f"\\copy \"{ref}\".{TABLE} FROM '{csv_path.name}' CSV"
                runs["d"].append(run_measured(servers.psql_command(copy), cwd=work))
                # f. full sync, fresh stage and target; h. again, nothing new
                full = local_project(work, "full", servers, src_db, dst, args)
                servers.fresh_schema(dst)
                runs["f"].append(full.sync(table))
                runs["h"].append(full.sync(table))
                add_history(full, servers, dst, HISTORY_FILES)
                runs["hh"].append(full.sync(table))
                for name in PEER_NAMES if peers else ():
                    peer = peer_run(peers, servers, name, src_db, args.prefix, first=True)
                    runs[f"p1{name}"].append(peer)
                since = change_rows(servers, src_db, args.rows)
                runs["j"].append(full.sync(table))
                runs["jr"].append(incremental_floor(servers, work, src_db, ref, since))
                for name in PEER_NAMES if peers else ():
                    peer = peer_run(peers, servers, name, src_db, args.prefix, first=False)
                    runs[f"p2{name}"].append(peer)
                # v. verify of the loaded table: the reference pass, equal, keys only,
                # then with 100 scattered differences (exit 4)
                runs["vr"].append(
                    Measured(
                        reference_pass(servers.mysql_for(src_db), servers.pg, src_db, dst), 0.0
                    )
                )
                runs["v"].append(full.verify(table))
                runs["vk"].append(full.verify(table, "--keys-only"))
                if scatter_differences(servers.pg_execute, dst, args.rows) != min(100, args.rows):
                    raise BenchError("could not make 100 differences")
                runs["v100"].append(full.verify(table, expect=4))
                forget_inserted(servers, src_db, args.rows)
                # k. many small tables: first sync, then nothing new at --parallel 4
                names = many_tables(servers, many_db, args.many_tables)
                servers.fresh_schema(many_dst)
                many = local_project(work, "many", servers, many_db, many_dst, args, names)
                runs["k1"].append(many.sync_all())
                runs["k2"].append(many.sync_all("--parallel", "4"))
                shutil.rmtree(many.root, ignore_errors=True)
                shutil.rmtree(backup.root, ignore_errors=True)
                shutil.rmtree(full.root, ignore_errors=True)
        # i. --help: a warm-up (bytecode cache), then the median of 3
        helper = Project(work / "help", child_env())
        run_measured(helper.command("--help"))
        helps = [run_measured(helper.command("--help")) for _ in range(3)]
        memory: Measured | None = None
        memory_again: list[Measured] = []
        if args.memory_rows:
            print(ensure_table(servers, mem_db, args.memory_rows), flush=True)
            big = local_project(work, "memory", servers, mem_db, dst, args)
            servers.fresh_schema(dst)
            memory = big.sync(f"{mem_db}.{TABLE}")
            memory_again.append(big.sync(f"{mem_db}.{TABLE}"))  # h at that size
    finally:
        shutil.rmtree(work, ignore_errors=True)
        servers.pg_execute(f'DROP SCHEMA IF EXISTS "{ref}" CASCADE')
        if args.cleanup:
            servers.pg_execute(f'DROP SCHEMA IF EXISTS "{dst}" CASCADE')
            servers.pg_execute(f'DROP SCHEMA IF EXISTS "{many_dst}" CASCADE')
            for name in PEER_NAMES if peers else ():
                for schema in peers.schemas(name, args.prefix):
                    servers.pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn = servers.mysql()
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{src_db}`")
                cur.execute(f"DROP DATABASE IF EXISTS `{mem_db}`")
                cur.execute(f"DROP DATABASE IF EXISTS `{many_db}`")
            conn.close()

    a = statistics.median(r.seconds for r in runs["a"])
    d = statistics.median(r.seconds for r in runs["d"])
    rows = [
        timed_row("a. `mysql --quick` > /dev/null (reference)", runs["a"], None, None, ""),
        timed_row("b. backup stage → local stage", runs["b"], a, 1.5, "≤ 1.5× a"),
        *(
            timed_row(
                f"b. backup stage → local stage, chunks of {c:,}", runs[f"b{c}"], a, 1.3, "≤ 1.3× a"
            )
            for c in SWEEP_CHUNKS
        ),
    ]
    if runs["c"]:
        rows.append(timed_row("c. backup stage → S3 API (moto)", runs["c"], a, 1.5, "≤ 1.5× a"))
    else:
        rows.append(Row("c. backup stage → S3 API (moto)", None, goal="skipped (--skip-s3)"))
    rows += [
        timed_row("d. `psql \\copy` of the CSV (reference)", runs["d"], None, None, ""),
        timed_row("e. load stage (`--redshift-only`)", runs["e"], d, 1.5, "≤ 1.5× d"),
        timed_row("f. full `sync pipeline`", runs["f"], a + d, 1.5, "≤ 1.5× (a + d)"),
    ]
    full_peak = max(r.peak_mb for r in runs["f"])
    rows.append(
        Row(
            f"g. peak RSS of f ({args.rows:,} rows)",
            full_peak,
            goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB",
            passed=full_peak <= MEMORY_LIMIT_MB,
            unit="MB",
        )
    )
    if memory is not None:
        flat = abs(memory.peak_mb - full_peak) <= FLAT_TOLERANCE * full_peak
        rows.append(
            Row(
                f"g. peak RSS, full sync of {args.memory_rows:,} rows ({memory.seconds:.1f} s)",
                memory.peak_mb,
                goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB, within {FLAT_TOLERANCE:.0%} of g",
                passed=memory.peak_mb <= MEMORY_LIMIT_MB and flat,
                unit="MB",
            )
        )
    rows.append(
        timed_row("h. incremental run, nothing new", runs["h"], None, None, "≤ 2 s", absolute=2.0)
    )
    rows.append(
        timed_row(
            f"h. nothing new, {HISTORY_FILES:,} files of history",
            runs["hh"],
            None,
            None,
            "≤ 1 s",
            absolute=1.0,
        )
    )
    if memory_again:
        rows.append(
            timed_row(
                f"h. incremental run, nothing new, {args.memory_rows:,} rows",
                memory_again,
                None,
                None,
                "≤ 2 s",
                absolute=2.0,
            )
        )
    rows += [
        timed_row("i. `--help`", helps, None, None, "≤ 0.5 s", absolute=0.5),
        timed_row(
            "j. by hand: `mysql` reads the changed rows, `psql` \\copy + DELETE … USING + INSERT "
            "(reference)",
            runs["jr"],
            None,
            None,
            "",
        ),
        timed_row(
            "j. incremental run: 5 % updated + 0.5 % inserted",
            runs["j"],
            statistics.median(r.seconds for r in runs["jr"]),
            1.0,
            "≤ 1.0× the hand floor",
        ),
        timed_row(
            f"k. first sync, {args.many_tables} tables of {MANY_ROWS:,} rows",
            runs["k1"],
            None,
            None,
            "≤ 5 s",
            absolute=5.0,
        ),
        per_table_row(
            f"k. nothing new, {args.many_tables} tables, `--parallel 4`, per table",
            runs["k2"],
            args.many_tables,
        ),
    ]
    rows += peer_rows(runs, peers)
    vr = statistics.median(r.seconds for r in runs["vr"])
    v = statistics.median(r.seconds for r in runs["v"])
    verify_peak = max(r.peak_mb for r in runs["v"] + runs["vk"] + runs["v100"])
    rows += [
        timed_row(
            "v. COUNT(*), SUM(row hash), both sides at once (reference)",
            runs["vr"],
            None,
            None,
            "",
        ),
        timed_row("v. `verify`, equal table", runs["v"], vr, 1.5, "≤ 1.5× reference"),
        timed_row("v. `verify --keys-only` (--detect-deletes)", runs["vk"], vr, None, ""),
        timed_row(
            f"v. `verify`, {DIFFERENCES} scattered differences",
            runs["v100"],
            v,
            2.0,
            "≤ 2× equal",
        ),
        Row(
            "v. peak RSS of verify",
            verify_peak,
            goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB",
            passed=verify_peak <= MEMORY_LIMIT_MB,
            unit="MB",
        ),
    ]
    table_text = render(rows)
    command = shlex.join([".venv/bin/python", "scripts/bench.py", *(argv or sys.argv[1:])])
    header = (
        f"## {started:%Y-%m-%d %H:%M} UTC — {args.rows:,} rows, median of {args.repeat}\n\n"
        f"- machine: {machine()}\n"
        f"- servers: {server_versions(servers)} (loopback)\n"
        f"- revision: {measured_revision}\n"
        f"- command: `{command}`\n"
        f"- config: {args.strategy}, reader {args.reader}, chunks of {CHUNK_ROWS:,} rows, "
        f"{ROWS_PER_FILE:,} rows per file, snappy\n"
    )
    if peers is not None:
        header += f"- peers: {peers.versions()}\n"
    print()
    print(header)
    print(table_text)
    failed = [r.measure for r in rows if r.passed is False]
    print(f"\n{len(failed)} goal(s) missed" + (": " + "; ".join(failed) if failed else ""))
    if not args.no_record:
        record(header + "\n" + table_text + "\n")
        print(f"recorded in {RECORD_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
