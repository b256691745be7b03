"""``tests/unit`` runs with no service at all: a test here that opens a network connection fails.

Unit tests are pure functions and this process's own objects; a test that needs
MariaDB, PostgreSQL, the S3 API server, sshd or a child process that talks to them
belongs in ``tests/integration``. Enforced here rather than by stopping the shared
servers (the other tests use them): every socket ``connect`` from this process to
an address other than a Unix socket of its own is refused.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkInUnitTest(AssertionError):
    """A unit test tried to reach a server."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        raise NetworkInUnitTest(f"a unit test connected to {address}: move it to tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
