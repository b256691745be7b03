"""LocalStage.put_file: the file arrives whole under its key, linked or copied, never half."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from src.core.stage import LocalStage

KEY = "incremental/t/t_0001.parquet"
DATA = os.urandom(1 << 20)


def _put(stage_dir: Path, source: Path) -> Path:
    source.write_bytes(DATA)
    LocalStage("local", str(stage_dir)).put_file(KEY, str(source))
    source.unlink()  # as the Parquet sink does once the upload is verified
    target = stage_dir / KEY
    assert target.read_bytes() == DATA
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left
    return target


def test_on_the_same_file_system_the_file_is_linked_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "scratch.parquet"
    source.write_bytes(DATA)
    inode = source.stat().st_ino
    LocalStage("local", str(tmp_path / "stage")).put_file(KEY, str(source))
    assert (tmp_path / "stage" / KEY).stat().st_ino == inode  # the same file, not a copy
    source.unlink()
    assert (tmp_path / "stage" / KEY).read_bytes() == DATA


def test_the_file_is_whole_under_its_key(tmp_path: Path) -> None:
    _put(tmp_path / "stage", tmp_path / "scratch.parquet")


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev,
    reason="needs a second file system (/dev/shm)",
)
def test_from_another_file_system_the_file_is_copied(tmp_path: Path) -> None:
    source = Path("/dev/shm") / f"s3backup-test-{os.getpid()}.parquet"
    try:
        target = _put(tmp_path / "stage", source)
        assert target.stat().st_nlink == 1
    finally:
        source.unlink(missing_ok=True)
