"""Throwaway product configurations the benchmark runs (scripts/bench.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bench_env import TABLE, BenchError, Measured, Servers, child_env, run_measured

from src.core.simple_watermark_manager import Watermark

PIPELINE = "bench"
SCOPE = "BENCH"
MANY_ROWS = 1_000  # k: a pipeline of --many-tables tables of this many rows
ROWS_PER_FILE = 500_000  # connections.yml backup.batch_size
CHUNK_ROWS = 100_000  # pipeline processing.batch_size
HISTORY_FILES = 100_000
SWEEP_CHUNKS = (50_000, 1_000_000)  # b again at the ends of the chunk sizes operators use
STRATEGIES: dict[str, dict[str, str]] = {
    "hybrid": {
        "cdc_strategy": "hybrid",
        "cdc_timestamp_column": "updated_at",
        "cdc_id_column": "id",
    },
    "id_only": {"cdc_strategy": "id_only", "cdc_id_column": "id"},
}


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
    work: Path,
    server: Any,
    servers: Servers,
    database: str,
    target_schema: str,
    args: Any,
    chunk_rows: int = CHUNK_ROWS,
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
        root,
        servers,
        database,
        target_schema,
        stage,
        args.strategy,
        args.reader,
        (TABLE,),
        chunk_rows,
    )
    return project, bucket_cm


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
