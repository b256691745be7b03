"""The stage: where Parquet files, manifests, watermarks and locks live.

Two implementations of one small interface: :class:`S3Stage` (a bucket, or
any S3-compatible server through ``endpoint_url``) and :class:`LocalStage` (a
directory: the embedded default). Keys are always ``/``-separated relative
paths built by :mod:`src.utils.naming`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from src.config.settings import StageConfig
from src.errors import ConfigError, StageError, StageUnavailableError
from src.utils.atomic import atomic_write
from src.utils.faults import fault_point

# AWS caps ListObjectsV2 pages and DeleteObjects batches at 1000 keys.
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
MAX_KEYS_PER_REQUEST = 1000


@dataclass(frozen=True)
class StagedObject:
    """One object in the stage."""

    key: str
    size: int
    last_modified: dt.datetime


class Stage(Protocol):
    """What the rest of the code needs from a stage."""

    name: str

    def uri(self, key: str) -> str:
        """The address operators and Redshift know the key by (s3://… or a path)."""
        ...

    def key_of(self, uri: str) -> str:
        """Inverse of :meth:`uri`; StageError for an address outside this stage."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write (replace) an object atomically."""
        ...

    def put_file(self, key: str, path: str) -> None:
        """Upload a local file as ``key``."""
        ...

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if absent; False when it already exists."""
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        ...

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of an existing object."""
        ...

    def list(self, prefix: str) -> Iterator[StagedObject]:
        """Every object under ``prefix`` (all pages)."""
        ...

    def delete(self, keys: Iterable[str]) -> int:
        """Delete keys (batches of at most 1000); returns how many were deleted."""
        ...

    def check(self) -> str:
        """Prove the stage is reachable and writable; a short description."""
        ...


class LocalStage:
    """A directory standing in for a bucket (the embedded default)."""

    def __init__(self, name: str, root: str) -> None:
        self.name = name
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StageError(f"stage key {key!r} escapes the stage directory")
        return path

    def uri(self, key: str) -> str:
        """The file's absolute path."""
        return str(self._path(key))

    def key_of(self, uri: str) -> str:
        """The key of an absolute path inside the stage directory."""
        path = Path(uri)
        if not path.is_absolute() or self.root not in path.parents:
            raise StageError(f"{uri} is not in stage directory {self.root}")
        return path.relative_to(self.root).as_posix()

    def put_bytes(self, key: str, data: bytes) -> None:
        """Temp file, fsync, rename: readers see the old or the new bytes, never half."""
        with atomic_write(self._path(key)) as handle:
            half = len(data) // 2
            handle.write(data[:half])
            handle.flush()
            # A crash test dies here, with half the bytes written (watermark writes go
            # through this method): the document must still hold its old bytes.
            fault_point("mid_put_bytes")
            handle.write(data[half:])

    def put_file(self, key: str, path: str) -> None:
        """Copy a local file in atomically (temp copy, fsync, rename)."""
        with atomic_write(self._path(key)) as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 4 * 1024 * 1024)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """O_EXCL create: exactly one of several racing creators wins."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def get_bytes(self, key: str) -> bytes | None:
        """The file's bytes, or None."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Read part of a file."""
        with open(self._path(key), "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)

    def size(self, key: str) -> int | None:
        """The file's size, or None."""
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[StagedObject]:
        """Every file whose key starts with ``prefix``, sorted by key."""
        base = self.root / prefix if prefix.endswith("/") else (self.root / prefix).parent
        if not base.is_dir():
            return
        found = []
        for path in base.rglob("*"):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                stat = path.stat()
                modified = dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC)
                found.append(StagedObject(key, stat.st_size, modified))
        yield from sorted(found, key=lambda o: o.key)

    def delete(self, keys: Iterable[str]) -> int:
        """Unlink each file; missing ones are skipped."""
        count = 0
        for key in keys:
            try:
                self._path(key).unlink()
                count += 1
            except FileNotFoundError:
                continue
        return count

    def check(self) -> str:
        """Write, read back and delete a probe file."""
        key = "watermarks/v2/.status-probe"
        try:
            self.put_bytes(key, b"ok")
            ok = self.get_bytes(key) == b"ok"
            self.delete([key])
        except OSError as exc:
            raise StageError(f"stage {self.name}: {self.root} is not writable: {exc}") from exc
        if not ok:
            raise StageError(f"stage {self.name}: probe file did not read back")
        return f"directory {self.root} writable"


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
