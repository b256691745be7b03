"""Hand memory back to the operating system between stages."""

from __future__ import annotations

import contextlib
import ctypes
import sys

import pyarrow as pa


def release_memory() -> None:
    """Hand memory freed by a finished stage back to the OS.

    Arrow's allocator (mimalloc) and glibc's malloc keep freed pages for reuse;
    a ``sync pipeline`` that loads after backing up would otherwise carry the
    backup's high-water mark into the load and add the load's on top.
    https://arrow.apache.org/docs/python/generated/pyarrow.MemoryPool.html
    https://man7.org/linux/man-pages/man3/malloc_trim.3.html
    """
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc: no malloc_trim
            ctypes.CDLL(None).malloc_trim(0)
