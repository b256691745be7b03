"""The S3 stage: a bucket, or any S3-compatible server through ``endpoint_url``.

Implements :class:`src.core.stage.Stage` with boto3: paginated listings,
deletes in batches of at most 1000 keys, conditional creates for locks, and
every botocore error classified in one method (:meth:`S3Stage.classify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from src.config.settings import StageConfig
from src.core.stage import MAX_KEYS_PER_REQUEST, StagedObject
from src.errors import ConfigError, StageError, StageUnavailableError

# S3 error codes that a later retry can get past.
_TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}
)


class S3Stage:
    """A bucket (AWS S3 or an S3-compatible server)."""

    def __init__(self, name: str, cfg: StageConfig) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not cfg.bucket_name:
            raise ConfigError(f"s3_configs.{name}: bucket_name is required")
        self.name = name
        self.bucket = cfg.bucket_name
        perf = cfg.performance
        self._client: Any = boto3.client(
            "s3",
            region_name=cfg.region,
            endpoint_url=cfg.endpoint_url,
            aws_access_key_id=cfg.access_key_id.get_secret_value() if cfg.access_key_id else None,
            aws_secret_access_key=(
                cfg.secret_access_key.get_secret_value() if cfg.secret_access_key else None
            ),
            config=Config(
                max_pool_connections=perf.max_pool_connections,
                retries={"max_attempts": perf.retry_max_attempts, "mode": perf.retry_mode},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"} if cfg.endpoint_url else None,
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=perf.multipart_threshold,
            multipart_chunksize=perf.multipart_chunksize,
            max_concurrency=perf.max_concurrency,
        )
        self._endpoint = cfg.endpoint_url or "AWS S3"

    def classify(self, action: str, exc: Exception) -> StageError:
        """boto3's error as ours: the stage unreachable or throttled (transient), or failed.

        An unreachable S3 is a stage error (exit 5), like any other S3 failure.
        Throttling and server errors are transient
        (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
        """
        from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

        where = f"S3 bucket {self.bucket} ({self._endpoint})"
        if isinstance(exc, ConnectionError | ReadTimeoutError):
            return StageUnavailableError(f"{where}: cannot connect while trying to {action}")
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "?")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _TRANSIENT_S3_CODES or status >= 500:
                return StageUnavailableError(f"{where}: {action} failed: {code} (retry later)")
            return StageError(f"{where}: {action} failed: {code}")
        return StageError(f"{where}: {action} failed: {type(exc).__name__}: {exc}")

    def uri(self, key: str) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        """The key of ``s3://bucket/key`` in this bucket."""
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise StageError(f"{uri} is not in bucket {self.bucket}")
        return uri[len(prefix) :]

    def put_bytes(self, key: str, data: bytes) -> None:
        """One PUT: S3 replaces whole objects atomically."""
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except Exception as exc:
            raise self.classify(f"write {key}", exc) from exc

    def put_file(self, key: str, path: str) -> None:
        """Upload with the configured multipart settings."""
        try:
            self._client.upload_file(path, self.bucket, key, Config=self._transfer)
        except Exception as exc:
            raise self.classify(f"upload {key}", exc) from exc

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Conditional PUT (``If-None-Match: *``): exactly one creator wins.

        https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        """
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise self.classify(f"create {key}", exc) from exc
        except Exception as exc:
            raise self.classify(f"create {key}", exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        """GET the object, None on 404."""
        from botocore.exceptions import ClientError

        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self.classify(f"read {key}", exc) from exc
        except Exception as exc:
            raise self.classify(f"read {key}", exc) from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """A ranged GET."""
        try:
            reply = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
            )
            data: bytes = reply["Body"].read()
            return data
        except Exception as exc:
            raise self.classify(f"read {key}", exc) from exc

    def size(self, key: str) -> int | None:
        """HEAD the object, None on 404."""
        from botocore.exceptions import ClientError

        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self.classify(f"inspect {key}", exc) from exc
        except Exception as exc:
            raise self.classify(f"inspect {key}", exc) from exc

    def list(self, prefix: str) -> Iterator[StagedObject]:
        """All pages of ListObjectsV2 under ``prefix``."""
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": MAX_KEYS_PER_REQUEST},
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield StagedObject(item["Key"], int(item["Size"]), item["LastModified"])
        except Exception as exc:
            raise self.classify(f"list {prefix}", exc) from exc

    def delete(self, keys: Iterable[str]) -> int:
        """DeleteObjects in batches of at most 1000 keys; any per-key error fails."""
        batch: list[str] = []
        deleted = 0

        def flush() -> int:
            try:
                reply = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except Exception as exc:
                raise self.classify(f"delete {len(batch)} objects", exc) from exc
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise StageError(
                    f"S3 bucket {self.bucket}: could not delete {len(errors)} objects "
                    f"(first: {first.get('Key')}: {first.get('Code')})"
                )
            return len(batch)

        for key in keys:
            batch.append(key)
            if len(batch) == MAX_KEYS_PER_REQUEST:
                deleted += flush()
                batch = []
        if batch:
            deleted += flush()
        return deleted

    def check(self) -> str:
        """HEAD the bucket, then write and delete a probe object."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise self.classify("reach the bucket", exc) from exc
        key = "watermarks/v2/.status-probe"
        self.put_bytes(key, b"ok")
        self.delete([key])
        return f"bucket {self.bucket} reachable, watermarks/v2/ writable"
