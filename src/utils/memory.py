"""The process's memory: glibc's malloc tuned at start, freed memory handed back.

connectorx (Rust: its Arrow buffers), pgpq (Rust: the COPY bytes) and
psycopg2 allocate through glibc's malloc, not through Arrow's jemalloc pool
(whose peak on the SPEC §10.1 full sync is ~27 MB of the process's ~250 MB).
Two glibc defaults make that memory creep with the size of the run; see
M_ARENA_MAX and M_MMAP_THRESHOLD in https://man7.org/linux/man-pages/man3/mallopt.3.html

- Arenas: every connectorx call runs its producer on fresh threads, and glibc
  gives threads their own arenas (up to 8 per core); freed batches then
  fragment across arenas (measured: 196 -> 246 MB over 80 chunks of 100k rows;
  flat at ~180 MB with 2 arenas).
- The mmap threshold: glibc raises it, up to 32 MB, each time an mmapped block
  is freed, so after the first batches the big column buffers come from the
  arenas and stay there, fragmented. Fixed at 256 KiB they are mmapped and
  returned whole: the full sync peaked at 204-219 MB for 2M rows and 215 MB for
  10M, against 234-254 and 267-279 MB with the moving threshold, in about the
  same time (backup alone 4.44 s against 4.42, mean of 3).

:func:`tune_malloc` runs when the command line starts (:mod:`src.cli.main`),
before any thread exists. Either setting given by its environment variable
(``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) is left alone; elsewhere than
glibc it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys


def release_memory() -> None:
    """Hand memory freed by a finished stage back to the OS.

    Arrow's allocator and glibc's malloc keep freed pages for reuse;
    a ``sync pipeline`` that loads after backing up would otherwise carry the
    backup's high-water mark into the load and add the load's on top.
    https://arrow.apache.org/docs/python/generated/pyarrow.MemoryPool.html
    https://man7.org/linux/man-pages/man3/malloc_trim.3.html
    """
    import pyarrow as pa  # not at import: the command line imports this module at start

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc: no malloc_trim
            ctypes.CDLL(None).malloc_trim(0)


# From glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 256 * 1024
_tuned = False


def tune_malloc() -> None:
    """Cap glibc's arenas and fix its mmap threshold for this process, once."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's (ctypes.util costs 17 ms)
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(_M_ARENA_MAX, ARENAS)
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc (musl has neither knob)
