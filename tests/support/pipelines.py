"""Write throwaway config directories and run the real CLI against them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.s3_server import S3Bucket

ROOT = Path(__file__).resolve().parents[2]
SCOPE = "SRC"


@dataclass
class Project:
    """A config dir (and local stage) for one test, and how to run the CLI on it."""

    root: Path
    db: MySQLDatabase
    env: dict[str, str] = field(default_factory=dict)
    bucket: S3Bucket | None = None

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def stage_dir(self) -> Path:
        return self.root / "stage"

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``python -m src.cli.main --config-dir … ARGS`` in a subprocess."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
        env.update(self.env)
        result = subprocess.run(
            [sys.executable, "-m", "src.cli.main", "--config-dir", str(self.config_dir), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def paused(self, point: str, *args: str) -> subprocess.Popen[str]:
        """Start ``python -m src.cli.main … ARGS`` and return once it stands at fault ``point``.

        The run waits there (``BACKUP_TEST_PAUSE``) until :meth:`resume`; meanwhile the
        test acts at exactly that moment.
        """
        folder = self.root / f"pause-{point}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("reached", "go"):
            (folder / name).unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
        env.update(self.env)
        env["BACKUP_TEST_PAUSE"] = f"{point}:{folder}"
        run = subprocess.Popen(
            [sys.executable, "-m", "src.cli.main", "--config-dir", str(self.config_dir), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (folder / "reached").exists():
            if run.poll() is not None or time.monotonic() > deadline:
                run.kill()
                _, err = run.communicate()
                raise AssertionError(f"never reached {point} (exit {run.returncode})\n{err}")
            time.sleep(0.02)
        return run

    def resume(self, run: subprocess.Popen[str], point: str) -> tuple[int, str, str]:
        """Let a :meth:`paused` run go on; its exit code, stdout and stderr."""
        (self.root / f"pause-{point}" / "go").touch()
        try:
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        return run.returncode, out, err

    def sync(self, table: str, *extra: str) -> dict[str, Any]:
        """``sync pipeline -p p -t TABLE …``, which must succeed: the table's JSON report."""
        report = self.root / "report.json"
        self.cli(
            "sync", "pipeline", "-p", "p", "-t", table, "--json-output", str(report), *extra,
            check=True,
        )  # fmt: skip
        return dict(json.loads(report.read_text())["table_results"][table])

    def verify(self, table: str, *extra: str) -> tuple[int, dict[str, Any]]:
        """``verify -p p -t TABLE --json …``: its exit code and the table's result."""
        result = self.cli("verify", "-p", "p", "-t", table, "--json", *extra)
        assert result.stdout, result.stderr
        return result.returncode, dict(json.loads(result.stdout)["tables"][table])

    def backup(self, table: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """``sync pipeline -p p -t TABLE --backup-only``, which must succeed."""
        return self.cli(
            "sync", "pipeline", "-p", "p", "-t", table, "--backup-only", *extra, check=True
        )

    def watermark_path(self, table: str, target: str = "pg") -> Path:
        """The watermark document of ``table`` in the local stage (to edit it by hand)."""
        from src.utils.naming import split_table_name
        from src.utils.stage_keys import watermark_key

        return self.stage_dir / watermark_key(SCOPE, *split_table_name(table), target)

    def watermark(self, table: str, target: str = "pg") -> dict[str, Any]:
        """The stored watermark document of ``table`` (FileNotFoundError: none is stored)."""
        from src.utils.naming import split_table_name
        from src.utils.stage_keys import watermark_key

        key = watermark_key(SCOPE, *split_table_name(table), target)
        if self.bucket is not None:
            client = self.bucket.client
            try:
                body = client.get_object(Bucket=self.bucket.name, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                raise FileNotFoundError(f"s3://{self.bucket.name}/{key}") from None
            return dict(json.loads(body))
        return dict(json.loads((self.stage_dir / key).read_text()))

    def staged_table(self, table: str) -> pa.Table:
        """Every staged (not yet loaded) file of ``table``, concatenated in order."""
        tables = []
        for uri in self.watermark(table)["backup_s3_files"]:
            if uri.startswith("s3://"):
                assert self.bucket is not None
                key = uri.split("/", 3)[3]
                body = self.bucket.client.get_object(Bucket=self.bucket.name, Key=key)["Body"]
                tables.append(pq.read_table(pa.BufferReader(body.read())))
            else:
                tables.append(pq.read_table(uri))
        return pa.concat_tables(tables) if tables else pa.table({})


def make_project(
    root: Path,
    db: MySQLDatabase,
    tables: dict[str, dict[str, Any]],
    *,
    pg: PgSchema | None = None,
    bucket: S3Bucket | None = None,
    source_extra: dict[str, Any] | None = None,
    target_extra: dict[str, Any] | None = None,
    pipeline_extra: dict[str, Any] | None = None,
    backup_batch_size: int | None = None,
) -> Project:
    """Write config/connections.yml and config/pipelines/p.yml for ``db``'s tables."""
    config = root / "config"
    (config / "pipelines").mkdir(parents=True, exist_ok=True)
    source: dict[str, Any] = {
        "host": db.host,
        "port": db.port,
        "database": db.name,
        "username": db.user,
        "password": db.password,
    }
    source.update(source_extra or {})
    stages: dict[str, Any] = {"local": {"local_path": str(root / "stage")}}
    if bucket is not None:
        stages = {
            "s3": {
                "bucket_name": bucket.name,
                "region": bucket.server.region,
                "endpoint_url": bucket.server.endpoint_url,
                "access_key_id": "${AWS_ACCESS_KEY_ID}",
                "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
            }
        }
    target: dict[str, Any] = {
        "type": "postgres",
        "host": pg.host if pg else "127.0.0.1",
        "port": pg.port if pg else 5432,
        "database": pg.database if pg else "postgres",
        "username": pg.user if pg else "postgres",
        "schema": pg.name if pg else "public",
    }
    target.update(target_extra or {})
    connections: dict[str, Any] = {
        "connections": {"sources": {SCOPE: source}, "targets": {"pg": target}},
        "s3_configs": stages,
    }
    if backup_batch_size:
        connections["backup"] = {"batch_size": backup_batch_size}
    (config / "connections.yml").write_text(yaml.safe_dump(connections))
    pipeline: dict[str, Any] = {"name": "p", "source": SCOPE, "target": "pg"}
    pipeline.update(pipeline_extra or {})
    (config / "pipelines" / "p.yml").write_text(
        yaml.safe_dump({"pipeline": pipeline, "tables": tables}, allow_unicode=True)
    )
    env = {}
    if bucket is not None:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return Project(root, db, env, bucket)
