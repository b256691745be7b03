"""Write a local file so that readers see the old bytes or the new ones, never half."""

from __future__ import annotations

import os
import tempfile
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
