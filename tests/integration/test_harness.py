"""Tests of the test harness itself: the S3 server's AWS limits and the loopback sshd.

The S3 tests would fail against bare moto (it returns every key for a large
``MaxKeys`` and accepts delete batches over 1,000), so they prove the wrapper is
in the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paramiko
import pymysql
import pytest
import sshtunnel
from botocore.exceptions import ClientError

from tests.support.s3_server import S3Bucket, S3Server, s3_bucket
from tests.support.sshd import SshdServer

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306


def _put_many(bucket: S3Bucket, keys: list[str]) -> None:
    def put(key: str) -> None:
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b"x")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, keys))


@pytest.fixture(scope="module")
def bucket_1100(s3_server: S3Server) -> Iterator[S3Bucket]:
    """A bucket holding 1,100 small objects, shared by the read-only listing tests."""
    with s3_bucket(s3_server, prefix="list") as bucket:
        _put_many(bucket, [f"k/{i:05d}" for i in range(1100)])
        yield bucket


def test_list_objects_v2_max_keys_is_clamped_to_1000(bucket_1100: S3Bucket) -> None:
    page = bucket_1100.client.list_objects_v2(Bucket=bucket_1100.name, MaxKeys=5000)
    assert page["KeyCount"] == 1000
    assert len(page["Contents"]) == 1000
    assert page["IsTruncated"] is True
    assert page.get("NextContinuationToken")


def test_list_objects_v1_max_keys_is_clamped_to_1000(bucket_1100: S3Bucket) -> None:
    page = bucket_1100.client.list_objects(Bucket=bucket_1100.name, MaxKeys=5000)
    assert len(page["Contents"]) == 1000
    assert page["IsTruncated"] is True


def test_paginator_sees_every_key(bucket_1100: S3Bucket) -> None:
    paginator = bucket_1100.client.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket_1100.name, PaginationConfig={"PageSize": 5000}))
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    assert len(pages) == 2
    assert len(keys) == len(set(keys)) == 1100
    assert keys == sorted(keys)


def test_delete_objects_over_1000_is_malformed_xml(s3_bucket: S3Bucket) -> None:
    keys = [f"d/{i:05d}" for i in range(1001)]
    _put_many(s3_bucket, keys)
    client: Any = s3_bucket.client

    with pytest.raises(ClientError) as excinfo:
        client.delete_objects(Bucket=s3_bucket.name, Delete={"Objects": [{"Key": k} for k in keys]})
    assert excinfo.value.response["Error"]["Code"] == "MalformedXML"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(s3_bucket.keys()) == 1001  # nothing was deleted

    result = client.delete_objects(
        Bucket=s3_bucket.name, Delete={"Objects": [{"Key": k} for k in keys[:1000]]}
    )
    assert len(result["Deleted"]) == 1000
    assert not result.get("Errors")
    assert s3_bucket.keys() == [keys[1000]]


def test_s3_server_runs_in_a_separate_process(s3_server: S3Server) -> None:
    import os

    assert s3_server.process.pid != os.getpid()
    assert s3_server.process.poll() is None
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")


def _tunnel(sshd: SshdServer, key_path: str) -> sshtunnel.SSHTunnelForwarder:
    return sshtunnel.SSHTunnelForwarder(
        (sshd.host, sshd.port),
        ssh_username=sshd.user,
        ssh_pkey=key_path,
        ssh_config_file=None,
        allow_agent=False,
        host_pkey_directories=[],
        remote_bind_address=(MYSQL_HOST, MYSQL_PORT),
        local_bind_address=("127.0.0.1", 0),
        set_keepalive=0,
    )


def test_sshtunnel_forward_to_mariadb(sshd: SshdServer) -> None:
    tunnel = _tunnel(sshd, str(sshd.private_key_path))
    tunnel.start()
    try:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=tunnel.local_bind_port,
            user="root",
            password="",
            connect_timeout=10,
            read_timeout=10,
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                assert cur.fetchall() == ((1,),)
        finally:
            conn.close()
    finally:
        tunnel.stop(force=True)


def test_known_hosts_matches_the_server_host_key(sshd: SshdServer) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            sshd.host,
            sshd.port,
            username=sshd.user,
            key_filename=str(sshd.private_key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        _, stdout, _ = client.exec_command("echo ok", timeout=10)
        assert stdout.read().strip() == b"ok"
    finally:
        client.close()


def test_wrong_key_is_rejected(sshd: SshdServer) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.connect(
                sshd.host,
                sshd.port,
                username=sshd.user,
                key_filename=str(sshd.wrong_key_path),
                look_for_keys=False,
                allow_agent=False,
                timeout=10,
            )
    finally:
        client.close()

    tunnel = _tunnel(sshd, str(sshd.wrong_key_path))
    try:
        with pytest.raises(sshtunnel.BaseSSHTunnelForwarderError):
            tunnel.start()
    finally:
        _close_failed_tunnel(tunnel)


def _close_failed_tunnel(tunnel: sshtunnel.SSHTunnelForwarder) -> None:
    """Release a tunnel whose start() failed.

    sshtunnel 0.5.1 binds its local forward servers even when the SSH login fails,
    and ``stop()`` then calls ``socketserver.shutdown()`` on servers that never ran
    ``serve_forever`` — which blocks forever. Close their sockets instead.
    """
    for server in tunnel._server_list:
        server.server_close()
    tunnel._server_list = []
