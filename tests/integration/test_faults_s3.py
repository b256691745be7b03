"""S3 answering 503 SlowDown / 500 (#12): ridden out when brief, exit 5 when it lasts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_faults import HYBRID, errors, parcels
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import make_project
from tests.support.s3_faults import inject
from tests.support.s3_server import S3Bucket


def test_brief_s3_throttling_is_ridden_out(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table = parcels(mysql_db, 5_000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg, bucket=s3_bucket)
    endpoint = s3_bucket.server.endpoint_url
    inject(endpoint, "PUT", 2, 503)
    inject(endpoint, "LIST", 1, 500)
    result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 0, result.stderr
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 5_000


def test_s3_down_for_good_exits_5_and_a_rerun_mends_it(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table = parcels(mysql_db, 5_000)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg, bucket=s3_bucket)
    endpoint = s3_bucket.server.endpoint_url
    inject(endpoint, "PUT", 1_000, 503)
    try:
        result = project.cli("sync", "pipeline", "-p", "p")
    finally:
        inject(endpoint, "PUT", 0, 503)
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = errors(result.stderr)
    assert endpoint in line or "S3" in line, line
    assert "SlowDown (retry later)" in line, line  # S3's own code, classified transient
    assert f"taking the lock of table {table}" in line, line  # the step that failed
    again = project.cli("sync", "pipeline", "-p", "p")
    assert again.returncode == 0, again.stderr
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 5_000
    recorded = project.watermark(table)["processed_s3_files"]
    keys = set(s3_bucket.keys())
    assert all(uri.split("/", 3)[3] in keys for uri in recorded)
    assert json.loads(json.dumps(recorded))  # the watermark is readable JSON
