"""The S3 stage: a bucket, or any S3-compatible server through ``endpoint_url``.

Implements :class:`src.core.stage.Stage` with obstore (Rust's ``object_store``
crate): paginated listings, deletes in batches of at most 1000 keys,
conditional creates for locks, and every error classified in one method
(:meth:`S3Stage.classify`).

Why obstore and not boto3: boto3 took 0.3 s to import and to build its client
(botocore parses the S3 model and endpoint rules, ~1 MB of JSON), on every run
and before the first row can be read, because the table's lock and watermark
live in the bucket; obstore takes 9 ms. Its requests run in Rust without the
GIL, so uploads no longer slow the reading thread (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.config.settings import StageConfig
from src.core.stage import MAX_KEYS_PER_REQUEST, StagedObject
from src.errors import ConfigError, StageError, StageUnavailableError, first_line
from src.utils.stage_keys import WATERMARK_PREFIX

if TYPE_CHECKING:
    from obstore.store import ClientConfig

# S3 error codes that a later retry can get past.
# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
_TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}
)
# object_store's errors carry the HTTP status and S3's XML error body only as text.
_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]+)</Code>")
_UNREACHABLE = ("error sending request", "kind: Connect", "kind: Timeout", "timed out")
# A stalled connection is cut after READ_TIMEOUT; one request (a part of at most
# multipart_chunksize, or a file below multipart_threshold) may take REQUEST_TIMEOUT.
CONNECT_TIMEOUT = timedelta(seconds=10)
READ_TIMEOUT = timedelta(seconds=60)
REQUEST_TIMEOUT = timedelta(minutes=10)
NO_CREDENTIALS = (
    "no AWS credentials: set access_key_id and secret_access_key, or AWS's default chain "
    "(AWS_ACCESS_KEY_ID, a profile, an instance role)"
)


class S3Stage:
    """A bucket (AWS S3 or an S3-compatible server)."""

    def __init__(self, name: str, cfg: StageConfig) -> None:
        from obstore.store import S3Store

        if not cfg.bucket_name:
            raise ConfigError(f"s3_configs.{name}: bucket_name is required")
        self.name = name
        self.bucket = cfg.bucket_name
        self._perf = cfg.performance
        self._endpoint = cfg.endpoint_url or "AWS S3"
        options: ClientConfig = {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "timeout": REQUEST_TIMEOUT,
            "pool_max_idle_per_host": str(self._perf.max_pool_connections),
            "allow_http": bool(cfg.endpoint_url and cfg.endpoint_url.startswith("http://")),
        }
        settings: dict[str, Any] = {}
        if cfg.region:
            settings["region"] = cfg.region
        if cfg.endpoint_url:
            settings["endpoint"] = cfg.endpoint_url
        self._store = S3Store(
            self.bucket,
            # boto3's rule: path-style for a custom endpoint and for names with dots
            virtual_hosted_style_request=not cfg.endpoint_url and "." not in self.bucket,
            client_options=options,
            retry_config={"max_retries": max(0, self._perf.retry_max_attempts - 1)},
            credential_provider=_credentials(name, cfg),
            **settings,
        )

    def classify(self, action: str, exc: Exception) -> StageError:
        """obstore's error as ours: the stage unreachable or throttled (transient), or failed.

        An unreachable S3 is a stage error (exit 5), like any other S3 failure.
        Throttling and server errors are transient
        (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
        """
        where = f"S3 bucket {self.bucket} ({self._endpoint})"
        text = str(exc)
        if NO_CREDENTIALS in text:
            return StageError(f"{where}: {NO_CREDENTIALS}")
        code, status = _s3_code(text), _status(text)
        reply = code or status
        if code in _TRANSIENT_S3_CODES or status >= 500:
            return StageUnavailableError(f"{where}: {action} failed: {reply} (retry later)")
        if reply:
            return StageError(f"{where}: {action} failed: {reply}")
        if any(sign in text for sign in _UNREACHABLE):
            return StageUnavailableError(f"{where}: cannot connect while trying to {action}")
        return StageError(f"{where}: {action} failed: {type(exc).__name__}: {first_line(exc)}")

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
            self._store.put(key, data, use_multipart=False)
        except Exception as exc:
            raise self.classify(f"write {key}", exc) from exc

    def put_file(self, key: str, path: str) -> str | None:
        """One PUT below ``multipart_threshold``; a multipart upload from it on; the ETag.

        Either way the object appears whole or not at all. A single PUT holds the
        file in memory (object_store signs the payload's SHA-256, which S3 checks).
        """
        perf = self._perf
        file = Path(path)
        try:
            result = self._store.put(
                key,
                file,
                use_multipart=file.stat().st_size >= perf.multipart_threshold,
                chunk_size=perf.multipart_chunksize,
                max_concurrency=perf.max_concurrency,
            )
        except Exception as exc:
            raise self.classify(f"upload {key}", exc) from exc
        return result.get("e_tag")

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Conditional PUT (``If-None-Match: *``): exactly one creator wins.

        https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        """
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            self._store.put(key, data, mode="create", use_multipart=False)
            return True
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            if _s3_code(str(exc)) == "ConditionalRequestConflict":  # a create raced ours
                return False
            raise self.classify(f"create {key}", exc) from exc

    def replace_if(self, key: str, expected: bytes, data: bytes) -> bool:
        """Compare and swap: a GET, then a PUT with ``If-Match`` on that GET's ETag.

        S3 refuses the PUT (412) when another writer replaced the object between.
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        """
        from obstore.exceptions import PreconditionError

        try:
            got = self._store.get(key)
            etag, current = got.meta["e_tag"], bytes(got.bytes())
        except Exception as exc:
            if _missing(exc):
                return False
            raise self.classify(f"read {key}", exc) from exc
        if current != expected:
            return False
        try:
            self._store.put(key, data, mode={"e_tag": etag}, use_multipart=False)
            return True
        except PreconditionError:
            return False
        except Exception as exc:
            if _s3_code(str(exc)) in ("ConditionalRequestConflict", "PreconditionFailed"):
                return False
            raise self.classify(f"write {key}", exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        """GET the object, None when the key does not exist."""
        try:
            return bytes(self._store.get(key).bytes())
        except Exception as exc:
            if _missing(exc):
                return None
            raise self.classify(f"read {key}", exc) from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """A ranged GET."""
        try:
            return bytes(self._store.get_range(key, start=start, end=end))
        except Exception as exc:
            raise self.classify(f"read {key}", exc) from exc

    def size(self, key: str) -> int | None:
        """HEAD the object, None on 404."""
        try:
            return int(self._store.head(key)["size"])
        except Exception as exc:
            if _missing(exc):
                return None
            raise self.classify(f"inspect {key}", exc) from exc

    def list(self, prefix: str) -> Iterator[StagedObject]:
        """All pages of ListObjectsV2 under ``prefix``.

        object_store lists whole path segments (``a/b`` lists ``a/b/…``), so a
        prefix that ends inside a name lists its folder and keeps the matches.
        """
        folder = prefix if prefix.endswith("/") else prefix.rpartition("/")[0]
        try:
            pages = self._store.list(folder or None, chunk_size=MAX_KEYS_PER_REQUEST)
            for page in pages:
                for item in page:
                    if item["path"].startswith(prefix):
                        yield StagedObject(
                            item["path"], int(item["size"]), item["last_modified"], item["e_tag"]
                        )
        except Exception as exc:
            raise self.classify(f"list {prefix}", exc) from exc

    def delete(self, keys: Iterable[str]) -> int:
        """DeleteObjects in batches of at most 1000 keys; any per-key error fails."""
        batch: list[str] = []
        deleted = 0

        def flush() -> int:
            try:
                self._store.delete(batch)
            except Exception as exc:
                raise self.classify(f"delete {len(batch)} objects", exc) from exc
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
        """List the bucket, then write and delete a probe object."""
        try:
            next(iter(self._store.list(WATERMARK_PREFIX, chunk_size=1)), None)
        except Exception as exc:
            raise self.classify("reach the bucket", exc) from exc
        key = f"{WATERMARK_PREFIX}.status-probe"
        self.put_bytes(key, b"ok")
        self.delete([key])
        return f"bucket {self.bucket} reachable, {WATERMARK_PREFIX} writable"


def _credentials(name: str, cfg: StageConfig) -> Any:
    """The configured key pair, or boto3's default chain (environment, profile, role).

    A provider, not the store's own settings: the store would otherwise mix in
    ``AWS_*`` variables (a session token from the environment with a
    configured key breaks every signature). boto3 is imported only for the default chain.
    """
    key_id, secret = cfg.access_key_id, cfg.secret_access_key
    if (key_id is None) != (secret is None):
        raise ConfigError(
            f"s3_configs.{name}: give both access_key_id and secret_access_key, or neither "
            "(then AWS's default credential chain is used)"
        )
    if key_id is None or secret is None:
        return _DefaultChain()
    credential = {
        "access_key_id": key_id.get_secret_value(),
        "secret_access_key": secret.get_secret_value(),
        "token": None,
        "expires_at": None,
    }
    return lambda: credential


class _DefaultChain:
    """boto3's default credential chain, looked up at the first request (as boto3 did)."""

    def __init__(self) -> None:
        self._provider: Any = None

    def __call__(self) -> Any:
        if self._provider is None:
            from obstore.auth.boto3 import Boto3CredentialProvider

            try:
                self._provider = Boto3CredentialProvider()
            except ValueError:  # boto3 found nothing
                raise ValueError(NO_CREDENTIALS) from None
        return self._provider()


def _s3_code(text: str) -> str:
    found = _CODE.search(text)
    return found.group(1) if found else ""


def _status(text: str) -> int:
    found = _STATUS.search(text)
    return int(found.group(1)) if found else 0


def _missing(exc: Exception) -> bool:
    """A missing key (not a missing bucket, which is a failure)."""
    return isinstance(exc, FileNotFoundError) and _s3_code(str(exc)) != "NoSuchBucket"
