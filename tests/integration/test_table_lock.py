"""The per-table lock on both stage kinds (SPEC §8): exclusive, renewed, stale takeover."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from src.config.settings import StageConfig
from src.core.s3_stage import S3Stage
from src.core.stage import LocalStage, Stage
from src.core.table_lock import TableLock
from src.errors import LockHeldError
from tests.support.s3_server import S3Bucket

KEY = "watermarks/v2/locks/src_shop_orders_pg.lock"


@pytest.fixture(params=["local", "s3"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Stage:
    if request.param == "local":
        return LocalStage("local", str(tmp_path / "stage"))
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    cfg = StageConfig(
        bucket_name=bucket.name,
        region=bucket.server.region,
        endpoint_url=bucket.server.endpoint_url,
        access_key_id=SecretStr(bucket.server.access_key),
        secret_access_key=SecretStr(bucket.server.secret_key),
    )
    return S3Stage("s3", cfg)


def _lock(stage: Stage, owner: str, ttl: float = 60.0) -> TableLock:
    return TableLock(stage, KEY, owner=owner, table="shop.orders", ttl_seconds=ttl)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_is_refused_naming_the_holder(stage: Stage) -> None:
    with _lock(stage, "sync_first"):
        with pytest.raises(LockHeldError) as info:
            _lock(stage, "sync_second").acquire()
        assert "sync_first" in str(info.value)
        assert f"host {socket.gethostname()}" in str(info.value)
        assert info.value.exit_code == 7
    # Released: the next run gets it.
    with _lock(stage, "sync_third"):
        assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_third"
    assert stage.get_bytes(KEY) is None


def test_lock_of_dead_local_process_is_taken_over(stage: Stage) -> None:
    now = time.time()
    stale = {
        "owner": "sync_killed",
        "host": socket.gethostname(),
        "pid": _dead_pid(),
        "acquired_at": now,
        "expires_at": now + 3600,
    }
    stage.put_bytes(KEY, json.dumps(stale).encode())
    with _lock(stage, "sync_new"):
        assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_new"


def test_remote_lock_is_held_until_it_expires(stage: Stage) -> None:
    now = time.time()
    remote = {"owner": "sync_remote", "host": "other-worker", "pid": 1, "acquired_at": now}
    stage.put_bytes(KEY, json.dumps({**remote, "expires_at": now + 60}).encode())
    with pytest.raises(LockHeldError, match="sync_remote"):
        _lock(stage, "sync_local").acquire()
    stage.put_bytes(KEY, json.dumps({**remote, "expires_at": now - 1}).encode())
    with _lock(stage, "sync_local"):
        assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_local"


def test_live_run_renews_its_lock(stage: Stage) -> None:
    with _lock(stage, "sync_long", ttl=0.9):
        first = json.loads(stage.get_bytes(KEY) or b"{}")["expires_at"]
        time.sleep(1.2)
        later = json.loads(stage.get_bytes(KEY) or b"{}")["expires_at"]
        assert later > first


def test_release_never_deletes_someone_elses_lock(stage: Stage) -> None:
    lock = _lock(stage, "sync_a")
    lock.acquire()
    lock._stop.set()  # stop renewing, then simulate a takeover by another run
    now = time.time()
    other = {"owner": "sync_b", "host": "h", "pid": 1, "acquired_at": now, "expires_at": now + 60}
    stage.put_bytes(KEY, json.dumps(other).encode())
    lock.release()
    assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_b"


class _TakenOverBeforeEachWrite:
    """A stage on which another run takes the lock just before each write of it.

    Whatever write renewal uses, the takeover lands between its read and its write:
    an unconditional PUT would overwrite the other run's lock.
    """

    def __init__(self, inner: Stage, body: bytes) -> None:
        self.inner, self.body, self.armed = inner, body, False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def _take_over(self, key: str) -> None:
        if self.armed and key == KEY:
            self.inner.put_bytes(KEY, self.body)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._take_over(key)
        self.inner.put_bytes(key, data)

    def replace_if(self, key: str, expected: bytes, data: bytes) -> bool:
        self._take_over(key)
        return self.inner.replace_if(key, expected, data)


def test_renewal_never_writes_over_a_lock_another_run_took(stage: Stage) -> None:
    now = time.time()
    other = {"owner": "sync_b", "host": "h", "pid": 1, "acquired_at": now, "expires_at": now + 60}
    racing = _TakenOverBeforeEachWrite(stage, json.dumps(other).encode())
    lock = _lock(racing, "sync_a", ttl=0.6)  # type: ignore[arg-type]
    lock.acquire()
    racing.armed = True
    time.sleep(0.5)  # two renewals' worth
    assert lock.lost
    assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_b"
    lock.release()
    assert json.loads(stage.get_bytes(KEY) or b"{}")["owner"] == "sync_b"
