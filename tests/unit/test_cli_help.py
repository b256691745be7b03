"""--help is fast and documented; usage errors exit 1 (SPEC §4, §9, §10)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    [],
    ["status"],
    ["config"],
    ["config", "list-pipelines"],
    ["config", "show-pipeline"],
    ["config", "validate"],
]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_is_fast(command: list[str]) -> None:
    run_cli(*command, "--help")  # warm the bytecode cache
    best = min(_timed(command) for _ in range(3))
    assert best < 0.5, f"--help took {best:.2f}s"


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = run_cli(*command, "--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    return elapsed


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from src.cli.main import cli; "
        "CliRunner().invoke(cli, ['status', '--help']); "
        "heavy = [m for m in ('pyarrow', 'boto3', 'obstore', 'pymysql', 'psycopg2', 'connectorx', "
        "'paramiko', 'pydantic') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_cli_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_cli_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_usage_error_exits_1_with_one_error_line() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: No such command 'no-such-command'."


def test_unknown_pipeline_exits_1() -> None:
    result = run_cli("config", "show-pipeline", "nope")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: unknown pipeline 'nope' (known: demo_pipeline)"
    )
    assert "Traceback" not in result.stderr


def test_bad_config_exits_1_listing_problems(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "connections.yml").write_text("connections: {sources: {S: {host: [}}}\n")
    result = run_cli("--config-dir", str(tmp_path), "config", "validate")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: invalid configuration (1 problem):"
    assert lines[1].strip() == (
        "connections.yml: line 1, column 36: invalid YAML: expected the node content, but found '}'"
    )


def test_debug_shows_traceback() -> None:
    result = run_cli("--debug", "config", "show-pipeline", "nope")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
