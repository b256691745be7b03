"""One lock per (table, target) in the stage, so overlapping runs cannot interleave.

The lock is an object created only if absent (S3 conditional PUT, local
``O_EXCL``) holding owner, host, pid and an expiry that a live run renews from
a background thread. A second run exits with code 7 naming the holder. A lock
is taken over, with a warning, when its owner is gone: on this host its pid is
dead; on another host (where a pid cannot be checked) its expiry passed.

Renewal is a compare-and-swap (S3 ``If-Match`` on the ETag; on a local stage
under a ``flock``): it never writes over a lock another run took. Known limit:
two runs that find the same stale lock at the same instant may both delete it;
the read-back after creating narrows that window to the time between one run's
create and the other's delete.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType

from src.core.stage import Stage
from src.errors import LockHeldError, step
from src.utils.logging_setup import get_logger
from src.utils.scratch import pid_alive

DEFAULT_TTL_SECONDS = 120.0
log = get_logger("lock")


@dataclass(frozen=True)
class LockInfo:
    """The content of a lock object."""

    owner: str
    host: str
    pid: int
    acquired_at: float
    expires_at: float

    def describe(self) -> str:
        """Human description of the holder."""
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at))
        return f"{self.owner} (host {self.host}, pid {self.pid}, since {started})"


class TableLock:
    """Context manager holding one table's lock for the duration of a run."""

    def __init__(
        self,
        stage: Stage,
        key: str,
        *,
        owner: str,
        table: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        self.stage = stage
        self.key = key
        self.owner = owner
        self.table = table
        self.ttl = ttl_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._body = b""  # the lock object's bytes as this run last wrote them
        self.lost = False

    def _info(self) -> LockInfo:
        now = time.time()
        return LockInfo(self.owner, socket.gethostname(), os.getpid(), now, now + self.ttl)

    def _read(self) -> LockInfo | None:
        data = self.stage.get_bytes(self.key)
        if data is None:
            return None
        try:
            return LockInfo(**json.loads(data))
        except (ValueError, TypeError):
            # Unreadable lock: treat as held by nobody we can check, expired now.
            return LockInfo("unknown", "unknown", -1, 0.0, 0.0)

    def _is_stale(self, holder: LockInfo) -> bool:
        if holder.host == socket.gethostname() and holder.pid > 0:
            return not pid_alive(holder.pid)
        return holder.expires_at < time.time()

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeldError` naming the holder."""
        with step(f"taking the lock of table {self.table}"):
            self._acquire()
        self._thread = threading.Thread(target=self._renew_loop, name="lock-renew", daemon=True)
        self._thread.start()

    def _acquire(self) -> None:
        body = json.dumps(asdict(self._info())).encode()
        if not self.stage.create_exclusive(self.key, body):
            holder = self._read()
            if holder is not None and not self._is_stale(holder):
                raise LockHeldError(
                    f"table {self.table} is locked by another run: {holder.describe()}; "
                    f"wait for it to finish (lock {self.stage.uri(self.key)})"
                )
            if holder is not None:
                log.warning("taking over stale lock", table=self.table, previous=holder.describe())
                self.stage.delete([self.key])
            if not self.stage.create_exclusive(self.key, body):
                current = self._read()
                who = current.describe() if current else "another run"
                raise LockHeldError(f"table {self.table} is locked by another run: {who}")
        held = self.stage.get_bytes(self.key)
        if held != body:
            raise LockHeldError(f"table {self.table}: lock was taken by another run meanwhile")
        self._body = body  # what renewal swaps, only while the object still holds it

    def confirm(self) -> None:
        """LockHeldError unless this run still holds the lock (a read of the lock object).

        Called before every watermark write and before a load commits: a run
        whose lock was taken over (an expired lock, an operator's delete) stops
        there and writes nothing more.
        """
        with step(f"checking the lock of table {self.table}"):
            holder = self._read()
        if not self.lost and holder is not None and holder.owner == self.owner:
            return
        self.lost = True
        who = holder.describe() if holder is not None else "nobody: the lock object is gone"
        raise LockHeldError(
            f"table {self.table}: this run lost its lock (now held by {who}); it stopped "
            "and wrote nothing more; run it again once no other run holds the table"
        )

    def _renew_loop(self) -> None:
        """Push the expiry on, by compare-and-swap: never over a lock another run took."""
        while not self._stop.wait(self.ttl / 3):
            renewed = json.dumps(asdict(self._info())).encode()
            try:
                if not self.stage.replace_if(self.key, self._body, renewed):
                    self.lost = True
                    log.error("lock lost to another run", table=self.table)
                    return
                self._body = renewed
            except Exception as exc:  # renewal retries on the next tick
                log.warning("lock renewal failed", table=self.table, error=str(exc))

    def release(self) -> None:
        """Stop renewing and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with step(f"releasing the lock of table {self.table}"):
            holder = self._read()
            if holder is not None and holder.owner == self.owner:
                self.stage.delete([self.key])

    def __enter__(self) -> TableLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
