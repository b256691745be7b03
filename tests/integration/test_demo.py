"""The README's demo command works."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_runs() -> None:
    result = subprocess.run(
        ["bash", "scripts/demo.sh", "500"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seeded 500 rows into demo_shop.parcels" in result.stdout
    assert "OK     mysql   DEMO_MYSQL" in result.stdout
    assert "ERROR" not in result.stdout
