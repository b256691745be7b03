"""Named fault points for crash tests (SPEC §11): the process dies right there.

Set ``BACKUP_TEST_FAULT=<name>`` in a test's subprocess environment; at the
point of that name the process sends itself SIGKILL, exactly as an operator's
``kill -9`` or an OOM kill would. Never set in production.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "BACKUP_TEST_FAULT"
POINTS = frozenset(
    {
        "after_upload",
        "mid_put_bytes",
        "after_manifest",
        "mid_copy",
        "before_ledger_insert",
        "before_load_commit",
        "after_load_commit",
    }
)


def fault_point(name: str) -> None:
    """Die here when the test environment asks for this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
