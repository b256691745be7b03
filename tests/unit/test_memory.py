"""tune_malloc, run as the command line starts: freed native buffers go back to the OS
instead of staying in glibc's heap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.utils.memory import MMAP_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]
BLOCK = 2 * MMAP_THRESHOLD

# In a fresh process: free one block of twice the threshold (glibc's moving threshold
# then rises past it), then allocate 20 such blocks, each touched and followed by a
# 64 KiB one that stays; free the big ones and print how much RSS they still hold.
_PROBE = """
import contextlib, ctypes, io, sys
if sys.argv[1] == "cli":  # the command line started (and ended) in this process
    from src.cli.main import cli
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli.main(["--help"])
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
size = int(sys.argv[2])
first = libc.malloc(size)
ctypes.memset(first, 1, size)
libc.free(first)
before = rss()
blocks, pins = [], []
for _ in range(20):
    blocks.append(libc.malloc(size))
    ctypes.memset(blocks[-1], 1, size)
    pins.append(libc.malloc(65536))
for b in blocks:
    libc.free(b)
print(rss() - before)
"""


def _kept_mb(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(BLOCK)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_big_buffers_leave_the_process() -> None:
    untuned, tuned = _kept_mb("default"), _kept_mb("cli")
    freed = 20 * BLOCK >> 20
    # The control: with glibc's moving threshold the blocks freed stay resident.
    assert untuned >= 0.8 * freed, (
        f"without tuning only {untuned} MB stayed: the probe shows nothing"
    )
    assert tuned <= 0.1 * freed, f"{tuned} MB of freed buffers stayed in the heap"
