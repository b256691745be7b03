"""Exit code → scheduler outcome (docs/airflow.md's table; src/integrations/outcomes.py)."""

from __future__ import annotations

import pytest

from src.integrations.outcomes import task_outcome


@pytest.mark.parametrize(
    ("code", "first", "later"),
    [
        (0, "success", "success"),
        (1, "fail", "fail"),  # configuration: a human must fix it
        (2, "retry", "retry"),  # connection
        (3, "fail", "fail"),  # some tables failed
        (4, "fail", "fail"),  # data error / verify found differences
        (5, "retry", "retry"),  # stage
        (6, "retry", "fail"),  # load: retried once, then failed
        (7, "skip", "skip"),  # another run holds the lock
        (130, "retry", "retry"),  # interrupted
        (-9, "retry", "retry"),  # killed by a signal (e.g. the OOM killer)
    ],
)
def test_task_outcome(code: int, first: str, later: str) -> None:
    assert task_outcome(code, try_number=1) == first
    assert task_outcome(code, try_number=2) == later
