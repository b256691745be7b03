"""Shared fixtures: real MariaDB, PostgreSQL, S3 API server and sshd on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import MySQLDatabase, PgSchema, mysql_database, pg_schema
from tests.support.s3_server import S3Bucket, S3Server
from tests.support.s3_server import s3_bucket as make_s3_bucket
from tests.support.s3_server import s3_server as start_s3_server
from tests.support.sshd import SshdServer, sshd_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``airflow`` run last: .venv-airflow builds while the others run."""
    items.sort(key=lambda item: item.get_closest_marker("airflow") is not None)


@pytest.fixture
def mysql_db() -> Iterator[MySQLDatabase]:
    """A fresh MariaDB database for one test."""
    with mysql_database() as db:
        yield db


@pytest.fixture
def pg() -> Iterator[PgSchema]:
    """A fresh PostgreSQL schema for one test."""
    with pg_schema() as schema:
        yield schema


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3 API server (moto server mode + AWS limits) in a subprocess on loopback.

    Fields: ``endpoint_url``, ``port``, ``access_key``/``secret_key`` ("testing"),
    ``region`` ("us-east-1"), ``log_path``, ``process``; ``client()`` gives a
    path-style boto3 S3 client, ``env()`` the AWS_* variables for a subprocess.
    """
    with start_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[S3Bucket]:
    """A fresh, uniquely named bucket on the session's S3 server, for one test.

    Yields an ``S3Bucket`` with ``.server`` (the ``S3Server``), ``.name`` (the
    bucket name), ``.client`` (a boto3 S3 client for the server) and ``.keys(prefix)``
    (all keys, paginated). The bucket is emptied and deleted afterwards.
    """
    with make_s3_bucket(s3_server) as bucket:
        yield bucket


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """The session's OpenSSH server on 127.0.0.1 with throwaway keys.

    Fields: ``host`` ("127.0.0.1"), ``port``, ``user`` (current user),
    ``private_key_path`` (authorised), ``wrong_key_path`` (not authorised),
    ``known_hosts_path`` (host key for ``[127.0.0.1]:<port>``), ``log_path``,
    ``pid``, ``config_path``.
    """
    with sshd_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server
