"""A run's local scratch space (Parquet files before upload), and what killed runs left there.

Scratch directories are named ``s3backup-<pid>-…`` in the system temp
directory, so a run can tell the leftovers of a dead run (its pid is gone:
``kill -9``, an OOM kill) from a live run's, and removes only the former.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "s3backup-"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A new scratch directory of this process, removed when closed."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")


def sweep_dead_runs(root: str | None = None) -> int:
    """Remove the scratch directories of processes that no longer exist; how many went."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
