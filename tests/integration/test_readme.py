"""Every command the README shows runs (after the demo has set up its data)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_readme_names_the_two_commands() -> None:
    commands = readme_commands()
    assert "scripts/demo.sh" in commands
    assert "scripts/test.sh" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci


def test_readme_cli_commands_run() -> None:
    demo = subprocess.run(
        ["bash", "scripts/demo.sh", "2000"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert demo.returncode == 0, demo.stderr
    cli = [c for c in readme_commands() if c.startswith("python -m src.cli.main")]
    assert len(cli) >= 6
    for command in cli:
        args = shlex.split(command)
        result = subprocess.run(
            [sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


def test_readme_soak_command_is_the_one_ci_runs() -> None:
    soak = [c for c in readme_commands() if "tests.soak.kill_harness" in c]
    text = (ROOT / "README.md").read_text()
    assert "tests.soak.kill_harness --kills 10" in text
    harness_test = (ROOT / "tests" / "integration" / "test_kill_harness.py").read_text()
    assert '"tests.soak.kill_harness", "--kills", "10"' in harness_test
    assert soak == []  # shown inline, run by test_kill_harness.py


def test_readme_fault_soak_command_is_the_one_ci_runs() -> None:
    text = (ROOT / "README.md").read_text()
    assert "tests.soak.fault_harness --faults 12 --rows 50000" in text
    harness_test = (ROOT / "tests" / "integration" / "test_fault_harness.py").read_text()
    assert '"tests.soak.fault_harness", "--faults", "12", "--rows", "50000"' in harness_test
