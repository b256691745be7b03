"""The README's demo command works: seed, sync, change, sync again, counts match."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_runs() -> None:
    result = subprocess.run(
        ["bash", "scripts/demo.sh", "3000"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seeded 3000 rows into demo_shop.parcels" in result.stdout
    assert any(
        line.split()[:3] == ["OK", "mysql", "DEMO_MYSQL"] for line in result.stdout.splitlines()
    )
    assert "MariaDB demo_shop.parcels: 3500 rows" in result.stdout
    assert "PostgreSQL demo_shop.parcels: 3500 rows (1000 updated)" in result.stdout
    assert "1,500 rows loaded" in result.stderr
