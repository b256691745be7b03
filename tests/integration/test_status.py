"""``status`` against the real services, one source through the loopback sshd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MySQLDatabase, PgSchema, closed_port
from tests.support.s3_server import S3Bucket
from tests.support.sshd import SshdServer

ROOT = Path(__file__).resolve().parents[2]
MYSQL_PASSWORD = "My-Sql_S3cret-" + uuid.uuid4().hex[:8]
PG_PASSWORD = "Pg-S3cret-" + uuid.uuid4().hex[:8]
S3_SECRET = "S3-S3cret-" + uuid.uuid4().hex[:8]
SECRETS = (MYSQL_PASSWORD, PG_PASSWORD, S3_SECRET)


@dataclass
class StatusEnv:
    config_dir: Path
    env: dict[str, str]
    config_args: dict[str, Any]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "src.cli.main", "--config-dir", str(self.config_dir), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def mysql_user(mysql_db: MySQLDatabase) -> Iterator[str]:
    """A MariaDB user with a real password (root's is empty here)."""
    user = "st_" + uuid.uuid4().hex[:8]
    for host in ("%", "localhost", "127.0.0.1"):
        mysql_db.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{MYSQL_PASSWORD}'")
        mysql_db.execute(f"GRANT SELECT ON `{mysql_db.name}`.* TO '{user}'@'{host}'")
    yield user
    for host in ("%", "localhost", "127.0.0.1"):
        mysql_db.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def write_status_config(
    root: Path,
    *,
    sshd: SshdServer,
    db: MySQLDatabase,
    user: str,
    pg: PgSchema,
    bucket: S3Bucket,
    direct_port: int,
) -> Path:
    config = root / "config"
    (config / "pipelines").mkdir(parents=True)
    (config / "connections.yml").write_text(
        textwrap.dedent(
            f"""
            connections:
              sources:
                VIA_SSH:
                  host: 127.0.0.1
                  port: 3306
                  database: {db.name}
                  username: {user}
                  password: "${{DB_TEST_PASSWORD}}"
                  ssh_tunnel:
                    enabled: true
                    host: {sshd.host}
                    port: {sshd.port}
                    username: {sshd.user}
                    private_key_path: "${{SSH_TEST_KEY}}"
                    known_hosts: {sshd.known_hosts_path}
                DIRECT:
                  host: 127.0.0.1
                  port: {direct_port}
                  database: {db.name}
                  username: {user}
                  password: "${{DB_TEST_PASSWORD}}"
                  connect_timeout: 3
              targets:
                pg:
                  type: postgres
                  host: {pg.host}
                  port: {pg.port}
                  database: {pg.database}
                  username: {pg.user}
                  password: "${{DB_PG_TEST_PASSWORD}}"
                  schema: {pg.name}
            s3_configs:
              s3_test:
                bucket_name: {bucket.name}
                region: {bucket.server.region}
                endpoint_url: {bucket.server.endpoint_url}
                access_key_id: "${{AWS_ACCESS_KEY_ID}}"
                secret_access_key: "${{AWS_SECRET_ACCESS_KEY}}"
            """
        )
    )
    for name, source in (("via_ssh", "VIA_SSH"), ("direct", "DIRECT")):
        (config / "pipelines" / f"{name}.yml").write_text(
            textwrap.dedent(
                f"""
                pipeline: {{name: {name}, source: {source}, target: pg, s3_config: s3_test}}
                tables:
                  {db.name}.orders: {{cdc_strategy: id_only, cdc_id_column: id,
                                     target_name: orders_{name}}}
                """
            )
        )
    return config


@pytest.fixture
def status_env(
    tmp_path: Path,
    sshd: SshdServer,
    mysql_db: MySQLDatabase,
    mysql_user: str,
    pg: PgSchema,
    s3_bucket: S3Bucket,
) -> StatusEnv:
    args: dict[str, Any] = dict(
        sshd=sshd, db=mysql_db, user=mysql_user, pg=pg, bucket=s3_bucket, direct_port=3306
    )
    config = write_status_config(tmp_path, **args)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DB_", "SSH_"))}
    env.update(
        DB_TEST_PASSWORD=MYSQL_PASSWORD,
        DB_PG_TEST_PASSWORD=PG_PASSWORD,
        SSH_TEST_KEY=str(sshd.private_key_path),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY=S3_SECRET,
    )
    return StatusEnv(config, env, args)


def _assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_status_all_ok_through_ssh_tunnel(status_env: StatusEnv) -> None:
    result = status_env.run("--debug", "status", "--json")
    _assert_no_secret(result)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "OK"
    by_kind = {(c["component"], c["name"]): c for c in report["checks"]}
    assert set(by_kind) == {
        ("ssh", "VIA_SSH"),
        ("mysql", "VIA_SSH"),
        ("mysql", "DIRECT"),
        ("stage", "s3_test"),
        ("target", "pg"),
    }
    assert all(c["ok"] for c in report["checks"])
    assert "MariaDB" in by_kind[("mysql", "VIA_SSH")]["detail"]


def test_status_reports_refused_mysql_port(status_env: StatusEnv, tmp_path: Path) -> None:
    closed = closed_port()
    status_env.config_dir = write_status_config(
        tmp_path / "refused", **{**status_env.config_args, "direct_port": closed}
    )
    result = status_env.run("status", "--json", "-p", "direct")
    _assert_no_secret(result)
    assert result.returncode == 2
    checks = {(c["component"], c["name"]): c for c in json.loads(result.stdout)["checks"]}
    failed = checks[("mysql", "DIRECT")]
    assert failed["status"] == "ERROR"
    assert f"127.0.0.1:{closed}" in failed["detail"]
    assert "Can't connect" in failed["detail"]
    assert checks[("target", "pg")]["ok"]
    assert checks[("stage", "s3_test")]["ok"]


def test_status_reports_wrong_ssh_key(status_env: StatusEnv, sshd: SshdServer) -> None:
    status_env.env["SSH_TEST_KEY"] = str(sshd.wrong_key_path)
    result = status_env.run("status", "-p", "via_ssh")
    _assert_no_secret(result)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    ssh_line = next(line for line in lines if " ssh " in line)
    assert ssh_line.startswith("ERROR")
    assert "authentication failed" in ssh_line
    mysql_line = next(line for line in lines if " mysql " in line)
    assert "skipped: the SSH tunnel is down" in mysql_line


def test_status_rejects_unknown_host_key(status_env: StatusEnv, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts_other"
    other.write_text("")
    text = (status_env.config_dir / "connections.yml").read_text()
    known = text.split("known_hosts: ")[1].splitlines()[0]
    (status_env.config_dir / "connections.yml").write_text(text.replace(known, str(other)))
    result = status_env.run("status", "-p", "via_ssh")
    assert result.returncode == 2
    assert "the host key of [127.0.0.1]:" in result.stdout and "is not known" in result.stdout
