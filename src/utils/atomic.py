"""Write a local file so that readers see the old bytes or the new ones, never half."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(target: Path, prefix: str = ".tmp-") -> Iterator[BinaryIO]:
    """Yield a temp file beside ``target``; on success fsync it and rename it over ``target``.

    On any failure the temp file is removed and ``target`` keeps its old bytes.
    ``os.replace`` is atomic on POSIX file systems
    (https://docs.python.org/3/library/os.html#os.replace).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_link(source: Path, target: Path, prefix: str = ".tmp-") -> bool:
    """Give ``source``'s file the name ``target`` too, atomically and without a copy.

    A hard link under a temp name beside ``target``, fsync, rename: readers see
    the old file or the whole new one. False, and nothing done, when no hard
    link can be made there (another file system: EXDEV); the caller copies.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{prefix}{uuid.uuid4().hex}"
    try:
        os.link(source, tmp)
    except OSError:
        return False
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True
