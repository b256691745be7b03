"""Each driver's errors land on the right side of the recovery axis (issue #10, 5)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from src.config.settings import StageConfig
from src.core.s3_stage import S3Stage
from src.errors import StageError, StageUnavailableError, is_transient


@pytest.fixture
def stage() -> S3Stage:
    return S3Stage("s3", StageConfig(bucket_name="bkt", endpoint_url="http://127.0.0.1:9"))


def client_error(code: str, status: int) -> ClientError:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
    ],
    ids=["slowdown", "500", "unreachable", "denied", "no-bucket"],
)
def test_s3_errors_are_stage_errors_transient_or_not(
    stage: S3Stage, error: Exception, transient: bool
) -> None:
    classified = stage.classify("write k", error)
    assert isinstance(classified, StageError) and classified.exit_code == 5
    assert is_transient(classified) is transient
    assert isinstance(classified, StageUnavailableError) is transient
    assert "S3 bucket bkt (http://127.0.0.1:9)" in str(classified)


def test_connection_failed_tells_a_lost_connection_from_a_refused_statement() -> None:
    import psycopg2
    import psycopg2.errors
    import pymysql

    from src.core.driver_errors import connection_failed

    assert connection_failed(psycopg2.InterfaceError("connection already closed"))
    assert connection_failed(psycopg2.OperationalError("server closed the connection"))
    assert not connection_failed(psycopg2.errors.UniqueViolation("duplicate key"))
    assert connection_failed(pymysql.err.OperationalError(2013, "Lost connection"))
    assert connection_failed(pymysql.err.OperationalError(1927, "Connection was killed"))
    assert not connection_failed(pymysql.err.OperationalError(1205, "Lock wait timeout"))
    assert not connection_failed(pymysql.err.ProgrammingError(1064, "syntax"))
    assert not connection_failed(ValueError("not a driver error"))
