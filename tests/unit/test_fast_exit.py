"""src.cli.main.run: the program leaves without Python's module teardown, and loses nothing.

Its exit code is the command's, its output and exit handlers are complete, and a
non-daemon thread still running is waited for, as by a normal exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# argv: marker-file prefix, "thread" or "-", then the command line.
_PROBE = """
import atexit, pathlib, sys, threading, time
out = pathlib.Path(sys.argv[1])
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
if sys.argv[2] == "thread":
    def late():
        time.sleep(0.5)
        out.with_suffix(".thread").write_text("done")
    threading.Thread(target=late).start()
from src.cli.main import run
sys.argv = ["s3-backup", *sys.argv[3:]]
run()
print("not reached")
"""


def _probe(tmp_path: Path, mode: str, *args: str) -> subprocess.CompletedProcess[str]:
    marker = tmp_path / "m"
    return subprocess.run(
        [sys.executable, "-c", _PROBE, str(marker), mode, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--help"], 0, "stdout", "Usage:"),
        (["no-such-command"], 1, "stderr", "No such command"),
        (["--config-dir", "/nonexistent", "sync", "pipeline", "-p", "x"], 1, "stderr", "Error:"),
    ],
)
def test_the_exit_code_output_and_exit_handlers_are_the_commands(
    tmp_path: Path, args: list[str], code: int, stream: str, text: str
) -> None:
    result = _probe(tmp_path, "-", *args)
    assert result.returncode == code, result.stderr
    assert text in getattr(result, stream)
    assert "not reached" not in result.stdout
    assert (tmp_path / "m.atexit").read_text() == "ran"


def test_a_running_non_daemon_thread_is_waited_for(tmp_path: Path) -> None:
    result = _probe(tmp_path, "thread", "--help")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.thread").read_text() == "done"
    assert (tmp_path / "m.atexit").read_text() == "ran"


def test_the_console_script_is_the_same_entry_point() -> None:
    script = Path(sys.executable).parent / "s3-backup"  # installed by pip install -e .
    if not script.exists():
        pytest.skip("the s3-backup console script is not installed in this environment")
    assert "from src.cli.main import run" in script.read_text()
    ok = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "Usage:" in ok.stdout
    bad = subprocess.run([str(script), "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 1 and "No such command" in bad.stderr
