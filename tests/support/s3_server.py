"""A real S3 API over HTTP on loopback: moto's server mode plus AWS limits moto lacks.

moto (5.2.x) in server mode answers the S3 REST API, but it does not enforce two
limits the product must respect on AWS:

* ``ListObjects``/``ListObjectsV2`` (and ``ListObjectVersions``) return at most
  1,000 keys a page whatever ``max-keys`` asks for; moto returns everything.
* A multi-object delete (``POST /bucket?delete``) with more than 1,000
  ``<Object>`` entries is rejected with ``400 MalformedXML``; moto accepts it.

:class:`AwsLimitsMiddleware` wraps moto's WSGI application to enforce both. The
server runs in a **separate process** (``python -m tests.support.s3_server
--port N``): the product's Arrow-native MySQL reader holds the GIL while it
reads, which would starve a server thread in the test process.

Use :func:`s3_server` to start one for a test session.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

AWS_MAX_KEYS = 1000
AWS_MAX_DELETE_OBJECTS = 1000

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0

_MALFORMED_XML_MESSAGE = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AwsLimitsMiddleware:
    """WSGI middleware enforcing the AWS S3 limits moto's server mode does not."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        names = {name for name, _ in query}
        if method == "GET" and "max-keys" in names:
            self._clamp_max_keys(environ, query)
        elif method == "POST" and "delete" in names and self._is_bucket_path(environ):
            count = self._count_delete_objects(environ)
            if count is not None and count > AWS_MAX_DELETE_OBJECTS:
                return self._malformed_xml(start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _clamp_max_keys(environ: dict[str, Any], query: list[tuple[str, str]]) -> None:
        changed = False
        clamped: list[tuple[str, str]] = []
        for name, value in query:
            if name == "max-keys":
                try:
                    too_big = int(value) > AWS_MAX_KEYS
                except ValueError:
                    too_big = False  # let moto answer the malformed value
                if too_big:
                    value = str(AWS_MAX_KEYS)
                    changed = True
            clamped.append((name, value))
        if not changed:
            return
        new_query = urlencode(clamped)
        environ["QUERY_STRING"] = new_query
        for uri_key in ("RAW_URI", "REQUEST_URI"):
            uri = environ.get(uri_key)
            if uri:
                environ[uri_key] = f"{uri.split('?', 1)[0]}?{new_query}"

    @staticmethod
    def _is_bucket_path(environ: dict[str, Any]) -> bool:
        """True for ``/`` (virtual-hosted style) or ``/bucket`` (path style)."""
        segments = [s for s in environ.get("PATH_INFO", "/").split("/") if s]
        return len(segments) <= 1

    @staticmethod
    def _count_delete_objects(environ: dict[str, Any]) -> int | None:
        """Read the body, put it back for moto, and count its ``<Object>`` entries."""
        stream = environ["wsgi.input"]
        length_text = environ.get("CONTENT_LENGTH") or ""
        if length_text.isdigit():
            body = stream.read(int(length_text))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            return None  # no length and no terminated stream: leave it to moto
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return None  # moto answers malformed XML itself
        return sum(1 for el in root if el.tag.rsplit("}", 1)[-1] == "Object")

    @staticmethod
    def _malformed_xml(start_response: StartResponse) -> list[bytes]:
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Error><Code>MalformedXML</Code>"
            f"<Message>{_MALFORMED_XML_MESSAGE}</Message>"
            f"<RequestId>{request_id}</RequestId>"
            "<HostId>moto-aws-limits</HostId></Error>"
        ).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/xml"),
                ("Content-Length", str(len(body))),
                ("x-amz-request-id", request_id),
            ],
        )
        return [body]


def build_app() -> WsgiApp:
    """moto's dispatcher application (as ``moto.server`` builds it), wrapped in the limits
    and in the fault switch of :mod:`tests.support.s3_faults`."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from tests.support.s3_faults import FaultMiddleware

    return FaultMiddleware(AwsLimitsMiddleware(DomainDispatcherApplication(create_backend_app)))


def _exit_when_orphaned(parent_pid: int) -> None:
    """Exit the server if the process that started it dies (no stray servers after a kill)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def serve(host: str, port: int, parent_pid: int | None = None) -> None:
    """Serve the wrapped moto app until SIGTERM/SIGINT or, if given, ``parent_pid`` dies."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines

    def _exit(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    if parent_pid:
        threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    run_simple(host, port, build_app(), threaded=True, request_handler=MotoRequestHandler)


@dataclass
class S3Server:
    """A running S3 API server subprocess and how to reach it."""

    endpoint_url: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server (path-style addressing); ``config`` → botocore."""
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 60,
            "max_pool_connections": 32,
        }
        options.update(config)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**options),
        )

    def env(self) -> dict[str, str]:
        """Environment variables pointing AWS SDKs (e.g. a product subprocess) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }

    def log_text(self) -> str:
        """The server process's combined stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class S3Bucket:
    """A bucket created for one test on an :class:`S3Server`."""

    server: S3Server
    name: str
    client: Any = field(repr=False)
    """A boto3 S3 client for ``server`` (path-style addressing)."""

    def keys(self, prefix: str = "") -> list[str]:
        """All keys under ``prefix`` (paginated, so it sees past 1,000)."""
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]


@contextmanager
def s3_bucket(server: S3Server, prefix: str = "test") -> Iterator[S3Bucket]:
    """Create a uniquely named bucket on ``server``; empty and delete it on exit (best effort)."""
    client = server.client()
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    bucket = S3Bucket(server, name, client)
    try:
        yield bucket
    finally:
        try:
            keys = bucket.keys()
            for start in range(0, len(keys), AWS_MAX_DELETE_OBJECTS):
                batch = keys[start : start + AWS_MAX_DELETE_OBJECTS]
                client.delete_objects(
                    Bucket=name, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            client.delete_bucket(Bucket=name)
        except Exception:  # a dead server or leftover versions must not fail the test
            pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(server: S3Server) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        server.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5).list_buckets()
    except Exception:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(timeout: float) -> S3Server:
    log_dir = Path(tempfile.mkdtemp(prefix="s3-server-"))
    log_path = log_dir / "server.log"
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_ENDPOINT_URL_S3", None)
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.s3_server",
                    "--port",
                    str(port),
                    "--parent-pid",
                    str(os.getpid()),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = S3Server(f"http://127.0.0.1:{port}", port, log_path, process)
        deadline = time.monotonic() + timeout
        try:
            while not _answers(server):
                if process.poll() is not None:
                    output = server.log_text()
                    if "Address already in use" in output and attempt < attempts:
                        break  # lost a race for the port: try another one
                    raise RuntimeError(
                        f"S3 server exited with code {process.returncode} before answering "
                        f"on port {port}; its output:\n{output}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"S3 server did not answer on port {port} within {timeout:.0f} s; "
                        f"its output:\n{server.log_text()}"
                    )
                time.sleep(0.1)
            else:
                return server
        except BaseException:
            _stop(process)
            raise
    raise RuntimeError(f"S3 server could not bind a free port; its output:\n{server.log_text()}")


@contextmanager
def s3_server(timeout: float = STARTUP_TIMEOUT_S) -> Iterator[S3Server]:
    """Start the wrapped moto server in a subprocess on a free loopback port; stop it on exit.

    Raises ``RuntimeError`` (with the server's output) if it does not answer within ``timeout``.
    """
    server = _start(timeout)
    try:
        yield server
    finally:
        _stop(server.process)
        shutil.rmtree(server.log_path.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m tests.support.s3_server --port N [--host 127.0.0.1]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--parent-pid", type=int, default=None, help="exit when this process is gone"
    )
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.parent_pid)


if __name__ == "__main__":
    main()
