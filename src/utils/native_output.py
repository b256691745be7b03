"""Under ``--json-logs``, every line on stderr is JSON: text written to fd 2 is wrapped.

Native code writes to file descriptor 2 behind Python's back: connectorx's Rust
panic hook prints the panic message (and a backtrace with ``RUST_BACKTRACE``)
when it reports a zero date or a lost connection; a child process may print
too. A log shipper that parses stderr line by line would choke on those lines.
:func:`json_stderr` points fd 2 at a pipe for the command's lifetime; a thread
copies each line to the real stderr, unchanged when it is a JSON object already
(the log lines), else wrapped as one JSON event that says where it came from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Iterator

_JOIN_SECONDS = 2.0  # a child process may still hold the pipe: never wait longer


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
        level, source = "warning", "native"  # a Rust panic message, a backtrace line
    return json.dumps(
        {
            "event": text,
            "level": level,
            "source": source,
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
        ensure_ascii=False,
    )


@contextlib.contextmanager
def json_stderr() -> Iterator[None]:
    """Route fd 2 through a pipe whose lines reach the real stderr as JSON."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    out_fd = os.dup(real)  # the thread's own copy: `real` is closed when the command ends

    def copy() -> None:
        with (
            os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as lines,
            os.fdopen(out_fd, "w", encoding="utf-8", buffering=1) as out,
        ):
            for line in lines:
                out.write(wrap_line(line) + "\n")

    thread = threading.Thread(target=copy, name="json-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes this process's last write end of the pipe
        os.close(real)
        thread.join(_JOIN_SECONDS)
