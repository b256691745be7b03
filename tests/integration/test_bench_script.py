"""scripts/bench.py keeps working: a tiny end-to-end run prints every measure.

The real numbers come from a manual run (docs/benchmarks.md); this only runs the
script on 2,000 rows against the local MariaDB and PostgreSQL, in databases and
schemas of its own, without writing docs/benchmarks.md, with the peers (dlt and
Sling, in .venv-peers, which scripts/test.sh builds in the background).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURES = ["a.", "b.", "c.", "d.", "e.", "f.", "g.", "h.", "i.", "j.", "k.", "p.", "v."]


def test_bench_script_runs_end_to_end() -> None:
    prefix = f"benchtest{os.getpid()}"
    record = ROOT / "docs" / "benchmarks.md"
    before = record.read_bytes() if record.exists() else None
    started = time.monotonic()
    command = [sys.executable, "scripts/bench.py", "--rows", "2000", "--skip-s3", "--no-record"]
    command += ["--many-tables", "5", "--peers", "--pairs", "2"]
    result = subprocess.run(
        [*command, "--prefix", prefix, "--cleanup"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 120, f"took {elapsed:.0f} s"
    out = result.stdout
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| measure | value | reference | ratio | goal | result |")
    rows = {line.split("|")[1].strip()[:2]: line for line in table[1:]}
    peers = [line for line in table[1:] if line.startswith("| p. ")]
    assert sorted(rows) == MEASURES, out
    # Every measured row has a value; the skipped S3 row says so.
    for key in ["a.", "b.", "d.", "e.", "f.", "h.", "i.", "j."]:
        assert re.search(r"\| \d+\.\d\d s \|", rows[key]), rows[key]
    assert re.search(r"\| \d+\.\d\d MB \|", rows["g."]), rows["g."]
    assert "skipped (--skip-s3)" in rows["c."]
    # Ratios against the references, and a verdict on every goal.
    for key in ["b.", "e.", "f."]:
        assert re.search(r"\| \d+\.\d\d× \|", rows[key]), rows[key]
    for key in ["b.", "e.", "f.", "g.", "h.", "i."]:
        assert re.search(r"\| (pass|\*\*FAIL\*\*) \|", rows[key]), rows[key]
    # Each peer's two runs (checked against the source by the script), then f and j
    # against the faster one.
    assert len(peers) == 6, peers
    for line in peers:
        assert re.search(r"\| \d+\.\d\d s \|", line), line
    for line in peers[4:]:
        assert re.search(r"\| \d+\.\d\d× \| ≥ .* \| (pass|\*\*FAIL\*\*) \|", line), line
    assert "- peers: dlt 1.31.0" in out and "Sling 1.4.11" in out
    assert "2,000 rows" in out and "- machine: " in out and "- command: " in out
    assert (record.read_bytes() if record.exists() else None) == before  # --no-record
