"""The optional test against a real Redshift cluster (SPEC §11 (3)).

Skipped unless these are set (CI has no cluster):

- ``REDSHIFT_TEST_DSN``: libpq DSN or URL of a database on the cluster, e.g.
  ``postgresql://user:password@cluster.xxxx.us-east-1.redshift.amazonaws.com:5439/dev``;
- ``REDSHIFT_TEST_IAM_ROLE``: a role attached to the cluster that reads the bucket;
- ``REDSHIFT_TEST_S3_BUCKET`` (and ``REDSHIFT_TEST_S3_REGION``, default
  ``us-east-1``): a bucket for the stage; credentials come from the usual AWS
  variables or profile.

The every-type table goes MySQL → Parquet on S3 → ``COPY … FORMAT AS PARQUET
MANIFEST`` → merge through the CLI, then a new row through a second run.
Everything it creates is removed at the end: a schema of its own on the
cluster, and the keys of its table in the bucket.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from src.utils.naming import table_slug
from tests.integration.test_mysql_types import create_every_type
from tests.support.databases import MySQLDatabase
from tests.support.pipelines import SCOPE, Project, make_project

REQUIRED = ("REDSHIFT_TEST_DSN", "REDSHIFT_TEST_IAM_ROLE", "REDSHIFT_TEST_S3_BUCKET")
MISSING = [name for name in REQUIRED if not os.environ.get(name)]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"no Redshift cluster: {MISSING} unset")


@pytest.fixture
def cluster() -> Iterator[dict[str, Any]]:
    """Connection parameters of the cluster and a fresh schema on it, dropped after."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(os.environ["REDSHIFT_TEST_DSN"])
    schema = f"s3rb_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        yield params | {"schema": schema}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def cluster_project(
    tmp: Path, db: MySQLDatabase, table: str, cfg: dict[str, Any], rs: Any
) -> Project:
    """The every-type pipeline staging to the bucket and loading into the cluster."""
    project = make_project(tmp, db, {table: cfg})
    path = project.config_dir / "connections.yml"
    connections = yaml.safe_load(path.read_text())
    connections["connections"]["targets"]["pg"] = {
        "type": "redshift",
        "host": rs["host"],
        "port": int(rs.get("port", 5439)),
        "database": rs["dbname"],
        "username": rs["user"],
        "password": "${REDSHIFT_TEST_PASSWORD}",
        "schema": rs["schema"],
        "iam_role": os.environ["REDSHIFT_TEST_IAM_ROLE"],
    }
    connections["s3_configs"] = {
        "s3": {
            "bucket_name": os.environ["REDSHIFT_TEST_S3_BUCKET"],
            "region": os.environ.get("REDSHIFT_TEST_S3_REGION", "us-east-1"),
            "incremental_path": f"{rs['schema']}/incremental/",
        }
    }
    path.write_text(yaml.safe_dump(connections))
    # The CLI's children get no AWS_* variables unless the project passes them on.
    project.env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    project.env["REDSHIFT_TEST_PASSWORD"] = rs.get("password", "")
    return project


def remove_staged_keys(db: MySQLDatabase, schema: str) -> None:
    """Delete the test table's keys: data, watermark, lock and manifests."""
    import boto3

    bucket = os.environ["REDSHIFT_TEST_S3_BUCKET"]
    client = boto3.client("s3", region_name=os.environ.get("REDSHIFT_TEST_S3_REGION", "us-east-1"))
    slug = table_slug(SCOPE, db.name, "every_type")
    keys = []
    for prefix in (f"{schema}/incremental/", "watermarks/v2/", "manifests/"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if slug in o["Key"]]
    for start in range(0, len(keys), 1000):
        objects = [{"Key": k} for k in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": objects})


def test_every_type_loads_and_merges_on_a_real_cluster(
    tmp_path: Path, mysql_db: MySQLDatabase, cluster: dict[str, Any]
) -> None:
    import psycopg2

    table, cfg = create_every_type(mysql_db)
    project = cluster_project(tmp_path, mysql_db, table, cfg, cluster)
    try:
        project.cli("sync", "pipeline", "-p", "p", "-t", table, check=True)
        mysql_db.execute("INSERT INTO every_type (id, vc) VALUES (5, 'five')")
        project.cli("sync", "pipeline", "-p", "p", "-t", table, check=True)
        conn = psycopg2.connect(**{k: v for k, v in cluster.items() if k != "schema"})
        with conn, conn.cursor() as cur:
            cur.execute(f'SELECT * FROM "{cluster["schema"]}".every_type ORDER BY id')
            names = [d[0] for d in cur.description]
            rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        conn.close()
        assert sorted(rows) == [1, 2, 3, 5]
        assert rows[5]["vc"] == "five"
        top = rows[1]
        assert top["vc"] == "😀" * 8 and top["i"] == 2147483647
        assert top["biu"] == Decimal("18446744073709551615")
        assert top["dec38"] == Decimal("9999999999999999999999999999.9999999999")
        assert top["dt6"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
        assert top["ts3"] == dt.datetime(2038, 1, 19, 3, 14, 7, 999000)
        assert top["tm6"] == "838:59:59.000001"
        assert rows[2]["vc"] == "ab"  # NUL stripped
        assert all(v is None for k, v in rows[3].items() if k != "id")
    finally:
        remove_staged_keys(mysql_db, cluster["schema"])
