"""What native code writes to stderr: Rust panic text dropped, and JSON under ``--json-logs``.

Native code writes to file descriptor 2 behind Python's back: connectorx's Rust
panic hook prints the panic message (and a whole backtrace with
``RUST_BACKTRACE``) when it meets a zero date or a lost connection, both of
which the reader reports itself as one clear line; a child process may print
too. :func:`native_stderr` points fd 2 at a pipe for the command's lifetime; a
thread copies each line to the real stderr, except a Rust panic's lines
(kept with ``--debug``). Under ``--json-logs`` every line becomes JSON: left
as it is when it is a JSON object already (the log lines), else wrapped as
one event that says where it came from. In text mode Python's own
``sys.stderr`` writes to the real stderr directly, so a terminal is still a
terminal (progress bars) and nothing Python prints waits on the thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import sys
import threading
from collections.abc import Iterator

_JOIN_SECONDS = 2.0  # a child process may still hold the pipe: never wait longer
_PANIC_START = re.compile(r"^thread '.*'( \(\d+\))? panicked at ")  # newer Rust adds "(tid)"
_FRAME = re.compile(r"^\s+(\d+: |at )")  # "   3: connectorx::…", "             at src/…"
_MESSAGE_LINES = 20  # a panic message longer than this ends the dropped block anyway


def wrap_line(line: str) -> str:
    """``line`` as a JSON log line (returned as it is when it already is one)."""
    text = line.rstrip("\n")
    if text.startswith("{") and text.endswith("}"):
        try:
            json.loads(text)
            return text
        except ValueError:
            pass
    if text.startswith(("Error:", "✗")):
        level, source = "error", "cli"
    elif text.startswith("✓"):
        level, source = "info", "cli"
    else:
        level, source = "warning", "native"  # a child's line, a C library's message
    return json.dumps(
        {
            "event": text,
            "level": level,
            "source": source,
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
        ensure_ascii=False,
    )


class PanicFilter:
    """Tells a Rust panic's lines (header, message, backtrace, notes) from the others.

    Rust prints ``thread '…' panicked at file:line:col:``, the message, then
    either ``note: run with `RUST_BACKTRACE=1` …`` or ``stack backtrace:``,
    numbered frames with ``at`` locations and a closing ``note:``.
    https://doc.rust-lang.org/std/panic/fn.set_hook.html (the default hook).
    """

    def __init__(self) -> None:
        self._state: str | None = None  # None, "message" or "backtrace"
        self._message_lines = 0

    def is_panic(self, line: str) -> bool:
        """Whether ``line`` belongs to a panic report (feed every line, in order)."""
        if _PANIC_START.match(line):
            self._state, self._message_lines = "message", 0
            return True
        if self._state == "message":
            if line.startswith("stack backtrace:"):
                self._state = "backtrace"
            elif line.startswith("note: "):
                self._state = None
            else:
                self._message_lines += 1
                if self._message_lines > _MESSAGE_LINES:
                    self._state = None
                    return False
            return True
        if self._state == "backtrace":
            if _FRAME.match(line):
                return True
            self._state = None
            return line.startswith("note: ")
        return False


@contextlib.contextmanager
def native_stderr(*, json_lines: bool, show_panics: bool) -> Iterator[None]:
    """Route fd 2 through a pipe: Rust panic text dropped unless ``show_panics``; JSON lines
    when ``json_lines`` (then Python's stderr goes through the pipe too, to be wrapped)."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    out_fd = os.dup(real)  # the thread's own copy: `real` is closed when the command ends
    python_stderr = sys.stderr
    if not json_lines:
        sys.stderr = io.TextIOWrapper(
            os.fdopen(os.dup(real), "wb", buffering=0),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
    panics = PanicFilter()

    def copy() -> None:
        with (
            os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as lines,
            os.fdopen(out_fd, "w", encoding="utf-8", buffering=1) as out,
        ):
            for line in lines:
                if panics.is_panic(line) and not show_panics:
                    continue
                out.write(wrap_line(line) + "\n" if json_lines else line)

    thread = threading.Thread(target=copy, name="native-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(real, 2)  # closes this process's last write end of the pipe
        os.close(real)
        thread.join(_JOIN_SECONDS)
