"""The fault soak, bounded for CI: 12 random network and S3 faults under a concurrent writer
(#12; README names the longer run)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.pipelines import ROOT


def test_random_faults_under_a_concurrent_writer() -> None:
    # The README's command, as an operator runs it (with fewer faults and rows).
    result = subprocess.run(
        [sys.executable, "-m", "tests.soak.fault_harness", "--faults", "12", "--rows", "50000",
         "--seed", "20261202"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["faults"] == 12
    assert len(summary["kinds"]) >= 3  # several kinds of fault, not one
    assert any(kind.startswith("s3_") for kind in summary["kinds"])  # the stage's too
    assert summary["kinds"].get("flipped", 0) >= 1  # a damaged staged file, quarantined
    assert summary["source_rows"] > 50_000  # the writer inserted during the soak
