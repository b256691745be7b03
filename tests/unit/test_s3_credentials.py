"""The S3 stage signs with the configured keys alone, whatever ``AWS_*`` the environment holds.

A tiny HTTP server on loopback records the headers of one PUT (moto does not check
signatures, so it cannot tell whose credentials signed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from src.config.settings import StageConfig
from src.core.s3_stage import S3Stage
from src.errors import ConfigError


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("ETag", '"e"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_configured_keys_sign_without_the_environments_token(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ENVTOKEN")
    cfg = StageConfig(
        bucket_name="b",
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="CONFIGKEY",
        secret_access_key="s",
    )
    S3Stage("s3", cfg).put_bytes("k", b"v")
    (headers,) = _Recorder.seen
    assert "Credential=CONFIGKEY/" in headers["authorization"]
    assert "x-amz-security-token" not in headers
    assert headers["x-amz-content-sha256"] != "UNSIGNED-PAYLOAD"  # S3 checks the bytes


def test_half_a_key_pair_is_refused() -> None:
    cfg = StageConfig(bucket_name="b", access_key_id="k")
    with pytest.raises(ConfigError, match="give both access_key_id and secret_access_key"):
        S3Stage("s3", cfg)
