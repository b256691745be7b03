"""The fault soak, bounded for CI: 20 random network and S3 faults under a concurrent writer
(#12)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.pipelines import ROOT


def test_random_faults_under_a_concurrent_writer() -> None:
    # The README's command, as an operator runs it (with fewer faults and rows).
    result = subprocess.run(
        [sys.executable, "-m", "tests.soak.fault_harness", "--faults", "20", "--rows", "100000",
         "--seed", "20261202"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["faults"] == 20
    assert len(summary["kinds"]) >= 3  # several kinds of fault, not one
    assert any(kind.startswith("s3_") for kind in summary["kinds"])  # the stage's too
    assert summary["source_rows"] > 100_000  # the writer inserted during the soak
