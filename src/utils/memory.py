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
  arenas and stay there, fragmented: a full sync peaked at 234-254 MB for 2M
  rows and 267-279 MB for 10M. Fixed, blocks above it are mmapped and returned
  whole. At 256 KiB every column buffer of a batch was (216-223 MB for 2M rows,
  226 MB for 10M), but each was page-faulted in afresh: a third of the run's
  system time. At 4 MiB a batch's buffers (a few hundred KiB to 2 MiB for 50,000
  rows) are reused from the two arenas: 229-233 MB for 2M rows and 239 MB for
  10M, still flat, and the full sync 6.2-6.4 -> 5.8-6.1 s for 2M rows, 28.8 ->
  27.3 s for 10M (system time 1.1 -> 0.75 s, 5.3 -> 3.3 s).

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
MMAP_THRESHOLD = 4 * 1024 * 1024
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
