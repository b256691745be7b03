"""The stage: where Parquet files, manifests, watermarks and locks live.

Two implementations of one small interface: ``S3Stage`` in
:mod:`src.core.s3_stage` (a bucket, or an S3-compatible server) and
:class:`LocalStage` here (a directory: the embedded default). Keys are always
``/``-separated relative paths built by :mod:`src.utils.naming`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from src.errors import StageError
from src.utils.atomic import atomic_link, atomic_write
from src.utils.faults import fault_point

_GUARD = ".guard-"  # the flock files of compare-and-swap writes (never listed)

# AWS caps ListObjectsV2 pages and DeleteObjects batches at 1000 keys.
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
MAX_KEYS_PER_REQUEST = 1000


@dataclass(frozen=True)
class StagedObject:
    """One object in the stage."""

    key: str
    size: int
    last_modified: dt.datetime
    etag: str | None = None  # S3's; a local stage has none


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

    def put_file(self, key: str, path: str) -> str | None:
        """Upload a local file as ``key``; the object's ETag (None on a local stage)."""
        ...

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if absent; False when it already exists."""
        ...

    def replace_if(self, key: str, expected: bytes, data: bytes) -> bool:
        """Replace ``key`` with ``data`` only while it holds ``expected``; False otherwise."""
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

    @contextmanager
    def _os_errors(self, doing: str, key: str) -> Iterator[None]:
        """A full disk, a read-only or unwritable directory: a stage error naming the path."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StageError(
                f"stage {self.name}: cannot {doing} {self.root / key}: {reason}; "
                "check the disk's free space and the directory's permissions"
            ) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        """Temp file, fsync, rename: readers see the old or the new bytes, never half."""
        with self._os_errors("write", key), atomic_write(self._path(key)) as handle:
            half = len(data) // 2
            handle.write(data[:half])
            handle.flush()
            # A crash test dies here, with half the bytes written (watermark writes go
            # through this method): the document must still hold its old bytes.
            fault_point("mid_put_bytes")
            handle.write(data[half:])

    def put_file(self, key: str, path: str) -> str | None:
        """Bring a local file in atomically (temp name, fsync, rename); no ETag here.

        Hard-linked when ``path`` lies on the stage's file system (a scratch
        directory beside it): nothing is copied, where a copy read and wrote every
        byte again (64 MB for the 2M-row benchmark table). Elsewhere (a tmpfs
        ``/tmp``) copied.
        """
        target = self._path(key)
        with self._os_errors("write", key):
            if atomic_link(Path(path), target):
                return None
            with atomic_write(target) as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 4 * 1024 * 1024)
        return None

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """O_EXCL create: exactly one of several racing creators wins."""
        path = self._path(key)
        with self._os_errors("create", key):
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._os_errors("create", key), self._guard(path):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                path.unlink(missing_ok=True)  # a lock half-written is no lock
                raise
        return True

    def replace_if(self, key: str, expected: bytes, data: bytes) -> bool:
        """Compare and swap: the read, the compare and the rename under the key's guard.

        Every writer that must not be overtaken (this, :meth:`create_exclusive`)
        holds an exclusive ``flock`` of a guard file beside the key meanwhile.
        """
        path = self._path(key)
        with self._os_errors("write", key), self._guard(path):
            try:
                if path.read_bytes() != expected:
                    return False
            except FileNotFoundError:
                return False
            with atomic_write(path) as handle:
                handle.write(data)
        return True

    @contextmanager
    def _guard(self, path: Path) -> Iterator[None]:
        """An exclusive ``flock`` of ``.guard-<name>`` beside ``path`` (kept: never swept)."""
        fd = os.open(path.with_name(_GUARD + path.name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

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
            if not path.is_file() or path.name.startswith((".tmp-", _GUARD)):
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
                with self._os_errors("delete", key):
                    self._path(key).unlink()
                count += 1
            except FileNotFoundError:
                continue
        return count

    def sweep_temp_files(self, prefix: str, older_than_seconds: float) -> int:
        """Remove the ``.tmp-*`` files a killed writer left under ``prefix``; how many went.

        Only files last modified more than ``older_than_seconds`` ago: a live
        writer's temp file is seconds old (0 where the caller's lock keeps every
        other writer out).
        """
        base = self.root / prefix
        if not base.is_dir():
            return 0
        cutoff = dt.datetime.now(dt.UTC).timestamp() - older_than_seconds
        removed = 0
        for path in base.rglob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
        return removed

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
