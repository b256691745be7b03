"""What a scheduler does with each exit code of ``sync pipeline`` and ``verify`` (SPEC §9).

Kept apart from :mod:`src.integrations.airflow` so that the mapping, which docs/airflow.md
documents, is plain Python with a unit test and no Airflow import.
"""

from __future__ import annotations

from typing import Literal

from src.errors import ConfigError, DataError, LoadError, LockHeldError, PartialFailure

Outcome = Literal["success", "skip", "fail", "retry"]

# A human must act first: the configuration, a failed table of several, a data error
# (for verify: the tables differ). Retrying would only fail the same way.
NO_RETRY = frozenset({ConfigError.exit_code, PartialFailure.exit_code, DataError.exit_code})


def task_outcome(exit_code: int, try_number: int) -> Outcome:
    """How the task that ran the command should end, on its ``try_number`` (1 = first).

    0 succeeds; 7 (another run holds the lock, and does the work) is a skip; 1, 3 and
    4 fail without retry; 2, 5 and 130 are retried; 6 (a load failed, nothing
    committed) is retried once, then fails, so a target that refuses every load is
    seen within two tries. Any other code (a worker that killed the process, e.g.
    the OOM killer's -9) is retried like a fault.
    """
    if exit_code == 0:
        return "success"
    if exit_code == LockHeldError.exit_code:
        return "skip"
    if exit_code in NO_RETRY:
        return "fail"
    if exit_code == LoadError.exit_code and try_number > 1:
        return "fail"
    return "retry"
