"""Logging to stderr (and optionally a file) with secret redaction.

structlog renders our events; the standard library's loggers (boto3,
paramiko, …) go through the same scrubbing filter. The last processor replaces
every registered secret value — and its URL-encoded form — with ``***`` in
every event, exception text included, so no password or key reaches a log line.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

# structlog.dev and structlog.tracebacks import rich when they can, only to draw
# exceptions, which our renderers get as text from format_exc_info anyway. Hidden
# while structlog loads, rich (with pygments and attrs) stays out of every command's
# start: 25-40 ms (`python -X importtime`). Commands that draw with rich import it
# themselves, later.
_HIDE_RICH = "rich" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]  # import rich -> ImportError
try:
    import structlog
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

MASK = "***"
_secrets: list[str] = []
_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Add secret values that must never appear in any output."""
    with _lock:
        known = set(_secrets)
        for value in values:
            # Very short values would mask random substrings of every line.
            if not value or len(value) < 3:
                continue
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                known.add(form)
        _secrets[:] = sorted(known, key=len, reverse=True)


def scrub_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, BaseException):
        return scrub_text(repr(value))
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """structlog processor: scrub every value of the event (runs last before rendering)."""
    scrubbed: dict[str, Any] = _scrub(dict(event_dict))
    return scrubbed


class _TeeLogger:
    """A structlog logger that writes each rendered line to several streams."""

    def __init__(self, streams: list[TextIO]) -> None:
        self._streams = streams

    def msg(self, message: str) -> None:
        line = scrub_text(message) + "\n"
        with _lock:
            for stream in self._streams:
                stream.write(line)
                stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(
    *,
    debug: bool = False,
    quiet: bool = False,
    json_logs: bool = False,
    log_file: str | None = None,
) -> None:
    """Set up structlog and stdlib logging once per process (called by the CLI)."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    streams: list[TextIO] = [sys.stderr]
    if log_file:
        streams.append(open(log_file, "a", encoding="utf-8"))  # noqa: SIM115 - process-long
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: _TeeLogger(streams),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers.clear()
    for stream in streams:
        handler = logging.StreamHandler(stream)
        handler.addFilter(_ScrubFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        root.addHandler(handler)
    # Third-party libraries are chatty (botocore logs every header at DEBUG): warnings only.
    root.setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger (bound to ``name`` as ``component`` when given)."""
    # A lazy proxy: it resolves the configuration at each call, so a logger made at
    # import time follows configure_logging() (and structlog.testing.capture_logs).
    return structlog.get_logger(component=name) if name else structlog.get_logger()
