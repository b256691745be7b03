"""S3 faults on command for the test S3 server (issue #12): the next K requests of a kind fail.

``POST /__faults__`` with a JSON body ``{"kind": "PUT", "count": 3, "status": 503}``
arms the server: the next ``count`` requests of that kind answer ``status`` with
the error document S3 sends (``SlowDown`` for 503, ``InternalError`` for 500),
then requests pass again. Kinds: ``PUT`` (object uploads, multipart parts
included), ``GET`` (object reads), ``LIST`` (bucket listings), ``DELETE`` (single
and batch deletes). ``GET /__faults__`` answers how many are still armed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
CONTROL_PATH = "/__faults__"
_CODES = {
    503: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
}


def request_kind(environ: dict[str, Any]) -> str | None:
    """PUT / GET / LIST / DELETE for an S3 request (None: something else, e.g. HEAD)."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    query = {name for name, _ in parse_qsl(environ.get("QUERY_STRING", ""), True)}
    path = environ.get("PATH_INFO", "/").strip("/")
    is_bucket = "/" not in path
    if method == "PUT" and not is_bucket:
        return "PUT"
    if method == "GET":
        return "LIST" if is_bucket else "GET"
    if method == "DELETE" or (method == "POST" and "delete" in query):
        return "DELETE"
    return None


class FaultMiddleware:
    """WSGI middleware answering armed requests with S3's own error documents."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._armed: dict[str, tuple[int, int]] = {}  # kind -> (requests left, status)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        kind = request_kind(environ)
        status = self._take(kind) if kind else None
        if status is None:
            return self.app(environ, start_response)
        code, message = _CODES.get(status, ("InternalError", "injected fault"))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>injected-fault</RequestId></Error>"
        ).encode()
        reason = "Slow Down" if status == 503 else "Internal Server Error"
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {reason}", headers)
        return [body]

    def _take(self, kind: str) -> int | None:
        with self._lock:
            left, status = self._armed.get(kind, (0, 0))
            if left <= 0:
                return None
            self._armed[kind] = (left - 1, status)
            return status

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            order = json.loads(environ["wsgi.input"].read(size) or b"{}")
            with self._lock:
                self._armed[str(order["kind"]).upper()] = (
                    int(order["count"]),
                    int(order["status"]),
                )
        with self._lock:
            body = json.dumps({k: v[0] for k, v in self._armed.items()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def inject(endpoint_url: str, kind: str, count: int, status: int = 503) -> None:
    """Arm the server at ``endpoint_url``: the next ``count`` ``kind`` requests fail."""
    import urllib.request

    body = json.dumps({"kind": kind, "count": count, "status": status}).encode()
    request = urllib.request.Request(endpoint_url + CONTROL_PATH, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
