"""Named fault points for crash and race tests (SPEC §11).

Set ``BACKUP_TEST_FAULT=<name>`` in a test's subprocess environment; at the
point of that name the process sends itself SIGKILL, exactly as an operator's
``kill -9`` or an OOM kill would. Set ``BACKUP_TEST_PAUSE=<name>:<directory>``
and the process stops there instead: it creates ``<directory>/reached`` and
waits (up to a minute) until the test creates ``<directory>/go``, so the test
can act at exactly that moment (take the lock away, change the source). Never
set in production.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAULT_ENV = "BACKUP_TEST_FAULT"
PAUSE_ENV = "BACKUP_TEST_PAUSE"
_PAUSE_LIMIT_SECONDS = 60.0
POINTS = frozenset(
    {
        "after_upload",
        "mid_put_bytes",
        "after_manifest",
        "mid_copy",
        "before_ledger_insert",
        "before_load_commit",
        "after_load_commit",
        "before_repair_delete",
    }
)


def fault_point(name: str) -> None:
    """Die, or pause, here when the test environment asks for this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get(PAUSE_ENV)
    if pause and pause.partition(":")[0] == name:
        folder = Path(pause.partition(":")[2])
        (folder / "reached").touch()
        deadline = time.monotonic() + _PAUSE_LIMIT_SECONDS
        while not (folder / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
