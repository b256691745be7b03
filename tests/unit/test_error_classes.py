"""Each driver's errors land on the right side of the recovery axis (issue #10, 5)."""

from __future__ import annotations

import pytest
from obstore.exceptions import GenericError, NotFoundError

from src.config.settings import StageConfig
from src.core.s3_stage import S3Stage
from src.errors import StageError, StageUnavailableError, is_transient


@pytest.fixture
def stage() -> S3Stage:
    config = StageConfig(
        bucket_name="bkt",
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
        performance={"retry_max_attempts": 1},
    )
    return S3Stage("s3", config)


def s3_reply(kind: type[Exception], code: str, status: int) -> Exception:
    """An error as obstore words it: the status line, then S3's XML body."""
    return kind(
        f"Error performing PUT http://127.0.0.1:9/bkt/k in 5ms - Server returned non-2xx "
        f'status code: {status} X: <?xml version="1.0"?>\n<Error><Code>{code}</Code>'
        "<Message>m</Message></Error>\n\nDebug source:\n..."
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (s3_reply(GenericError, "SlowDown", 503), True),
        (s3_reply(GenericError, "InternalError", 500), True),
        (s3_reply(GenericError, "AccessDenied", 403), False),
        (s3_reply(NotFoundError, "NoSuchBucket", 404), False),
    ],
    ids=["slowdown", "500", "denied", "no-bucket"],
)
def test_s3_errors_are_stage_errors_transient_or_not(
    stage: S3Stage, error: Exception, transient: bool
) -> None:
    classified = stage.classify("write k", error)
    assert isinstance(classified, StageError) and classified.exit_code == 5
    assert is_transient(classified) is transient
    assert isinstance(classified, StageUnavailableError) is transient
    assert "S3 bucket bkt (http://127.0.0.1:9)" in str(classified)
    assert "\n" not in str(classified) and "Debug source" not in str(classified)


def test_an_unreachable_s3_is_transient(stage: S3Stage) -> None:
    """A real request: nothing listens on port 9."""
    with pytest.raises(StageUnavailableError, match="cannot connect while trying to read k"):
        stage.get_bytes("k")


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
