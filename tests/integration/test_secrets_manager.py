"""Passwords from AWS Secrets Manager, never in a file (issue #33, item 3).

moto's server (the test S3 API server answers every AWS service) holds the secret;
the CLI reaches it through boto3's default chain (``AWS_ENDPOINT_URL_SECRETS_MANAGER``
points it there). A MySQL user whose password lives only in the secret syncs, and the
value appears in no output, report or watermark.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project
from tests.support.s3_server import S3Bucket, S3Server

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "at", "cdc_id_column": "id"}


def test_a_source_password_from_secrets_manager(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_server: S3Server
) -> None:
    password = "Sm-" + secrets.token_hex(8)
    user = "sm_" + secrets.token_hex(4)
    import boto3

    sm = boto3.client(
        "secretsmanager",
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )
    arn = sm.create_secret(
        Name=f"db/{user}", SecretString=json.dumps({"username": user, "password": password})
    )["ARN"]
    mysql_db.execute("CREATE TABLE o (id INT PRIMARY KEY, at DATETIME NOT NULL)")
    mysql_db.execute("INSERT INTO o SELECT seq, '2025-01-01' FROM seq_1_to_100")
    mysql_db.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
    try:
        mysql_db.execute(f"GRANT SELECT ON `{mysql_db.name}`.* TO '{user}'@'127.0.0.1'")
        table = f"{mysql_db.name}.o"
        source = {"username": user, "password": {"secret": arn, "key": "password"}}
        project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg, source_extra=source)
        project.env.update(s3_server.env())
        project.env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = s3_server.endpoint_url
        result = project.cli("--debug", "sync", "pipeline", "-p", "p", "--json-output", "-")
        assert result.returncode == 0, result.stderr
        assert pg.execute("SELECT COUNT(*) FROM o") == [(100,)]
        shown = project.cli("config", "show-pipeline", "p")
        for text in (result.stdout, result.stderr, shown.stdout, shown.stderr,
                     json.dumps(project.watermark(table))):  # fmt: skip
            assert password not in text
        # A secret that is not there, or without the key: one line naming it, exit 1.
        pg.execute("DELETE FROM s3_backup_load_ledger")  # new stages onto this target
        for wrong, words in (({"secret": arn + "-gone"}, "could not be read"),
                             ({"secret": arn, "key": "pass"}, "with the key 'pass'")):  # fmt: skip
            bad = make_project(
                tmp_path / words[:4], mysql_db, {table: HYBRID}, pg=pg,
                source_extra={"username": user, "password": wrong},
            )  # fmt: skip
            bad.env.update(project.env)
            failed = bad.cli("sync", "pipeline", "-p", "p")
            lines = [line for line in failed.stderr.splitlines() if line.startswith("Error:")]
            assert failed.returncode == 1 and len(lines) == 1 and words in lines[0], failed.stderr
            assert password not in failed.stderr
    finally:
        mysql_db.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def test_a_redshift_target_logs_in_with_temporary_iam_credentials(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    """``iam_auth``: GetClusterCredentials (moto's server implements it; Serverless'
    GetCredentials it does not) gives ``IAM:<db_user>`` and a password used once. The
    target here is the local PostgreSQL behind a ``redshift`` entry (trust auth: the role
    must exist, the password is whatever Redshift said)."""
    import boto3

    server = s3_bucket.server
    redshift = boto3.client(
        "redshift", endpoint_url=server.endpoint_url, region_name=server.region,
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
    )  # fmt: skip
    cluster = "dw-" + secrets.token_hex(3)
    redshift.create_cluster(
        ClusterIdentifier=cluster, NodeType="ra3.xlplus", MasterUsername="admin",
        MasterUserPassword="Admin-0000", DBName="postgres",
    )  # fmt: skip
    role = "IAM:loader_" + secrets.token_hex(3)
    pg.execute(f'CREATE ROLE "{role}" LOGIN')
    pg.execute(f'GRANT USAGE ON SCHEMA "{pg.name}" TO "{role}"')
    try:
        target = {
            "type": "redshift",
            "username": "ignored",
            "iam_auth": {"cluster_identifier": cluster, "db_user": role.removeprefix("IAM:")},
        }
        project = make_project(tmp_path, mysql_db, {}, pg=pg, bucket=s3_bucket, target_extra=target)
        project.env.update(server.env())
        project.env["AWS_ENDPOINT_URL_REDSHIFT"] = server.endpoint_url
        status = project.cli("status", "--json")
        checks = {c["component"]: c for c in json.loads(status.stdout)["checks"]}
        assert checks["target"]["status"] == "OK", status.stdout + status.stderr
        missing = make_project(
            tmp_path / "missing", mysql_db, {}, pg=pg, bucket=s3_bucket,
            target_extra={**target, "iam_auth": {"cluster_identifier": "nope", "db_user": "x"}},
        )  # fmt: skip
        missing.env.update(project.env)
        refused = missing.cli("status", "--json")
        checks = {c["component"]: c for c in json.loads(refused.stdout)["checks"]}
        assert "temporary credentials for nope could not be read" in checks["target"]["detail"]
    finally:
        pg.execute(f'REVOKE ALL ON SCHEMA "{pg.name}" FROM "{role}"')
        pg.execute(f'DROP ROLE IF EXISTS "{role}"')
