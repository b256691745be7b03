"""A TCP proxy on loopback that breaks connections on command (issue #12's fault injection).

Put it between the tool and a real server (MariaDB, PostgreSQL, the S3 API server,
sshd): point the tool's config at ``proxy.port`` and tell the proxy what to do:

- :meth:`FaultProxy.reset_all` — reset every open connection now (TCP RST);
- :meth:`FaultProxy.reset_after` — reset the connection that carries the
  ``n``-th byte from the servers from now on (the middle of a result set);
- :meth:`FaultProxy.stall` — stop forwarding for ``seconds`` (a hung network);
- :meth:`FaultProxy.latency` — delay every chunk forwarded by ``seconds``.

New connections are always accepted and forwarded: a reconnect after a reset
reaches the server, as it would after a real network blip.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_CHUNK = 64 * 1024


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    closed: bool = False

    def reset(self) -> None:
        """Close both ends with SO_LINGER 0: the peers see a connection reset.

        A thread blocked in ``recv`` keeps its socket open past ``close()``, so
        both are first shut for reading (which wakes them), then closed.
        """
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.close()


@dataclass
class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``; break it on command."""

    upstream_host: str
    upstream_port: int
    port: int = 0
    connections: int = 0  # accepted so far
    resets: int = 0  # connections this proxy reset
    _pairs: list[_Pair] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reset_after: int | None = None  # bytes from the servers, then reset that connection
    _counted: int = 0
    _stall_until: float = 0.0
    _latency: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    refuse_after_reset: bool = False  # once a reset happened, refuse new connections
    _refusing: bool = False

    def start(self) -> FaultProxy:
        """Listen on a free loopback port and accept in a thread."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop accepting and reset what is open."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset_all(count=False)

    # ------------------------------------------------------------ commands
    def reset_all(self, count: bool = True) -> int:
        """Reset every open connection now; return how many."""
        with self._lock:
            pairs = [p for p in self._pairs if not p.closed]
        for pair in pairs:
            pair.reset()
        if count and pairs:
            self.resets += len(pairs)
            self._refuse_if_asked()
        return len(pairs)

    def reset_after(self, n: int) -> None:
        """Reset the connection carrying the ``n``-th byte from the servers, from now on."""
        with self._lock:
            self._counted = 0
            self._reset_after = n

    def stall(self, seconds: float) -> None:
        """Forward nothing, either way, for ``seconds``."""
        self._stall_until = time.monotonic() + seconds

    def latency(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds`` (0: none)."""
        self._latency = seconds

    # ------------------------------------------------------------- workers
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                server = socket.create_connection((self.upstream_host, self.upstream_port))
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.append(pair)
                self.connections += 1
            for src, dst, upstream in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump, args=(pair, src, dst, upstream), daemon=True
                ).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while not pair.closed:
                data = src.recv(_CHUNK)
                if not data:
                    break
                while time.monotonic() < self._stall_until and not pair.closed:
                    time.sleep(0.01)
                if self._latency:
                    time.sleep(self._latency)
                if from_server and self._should_reset(len(data)):
                    self.resets += 1
                    self._refuse_if_asked()
                    pair.reset()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not pair.closed:  # a reset sends no orderly FIN
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

    def _refuse_if_asked(self) -> None:
        if self.refuse_after_reset:
            self._refusing = True  # an accept() already waiting still returns once
            with contextlib.suppress(OSError):
                self._listener.close()  # reconnects are refused from now on

    def _should_reset(self, size: int) -> bool:
        with self._lock:
            if self._reset_after is None:
                return False
            self._counted += size
            if self._counted < self._reset_after:
                return False
            self._reset_after = None  # one reset per command
            return True


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    """A started :class:`FaultProxy` to ``host:port``, closed afterwards."""
    proxy = FaultProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.close()
