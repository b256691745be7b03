"""The watermark document's bookkeeping: loaded files move in order, the list stays bounded."""

from __future__ import annotations

from pathlib import Path

from src.core.simple_watermark_manager import PROCESSED_FILES_KEPT, Watermark


def test_mark_processed_moves_in_order_each_once_and_bounds_the_list() -> None:
    wm = Watermark(table_name="s:d.t", target="pg", cdc_strategy="hybrid")
    names = [f"k_{n:05d}" for n in range(PROCESSED_FILES_KEPT + 250)]
    wm.backup_s3_files = [*names, "pending"]
    wm.mark_processed(names[:10])
    wm.mark_processed(names[5:])  # five of them again
    assert wm.backup_s3_files == ["pending"]
    assert wm.processed_s3_files == names[250:]
    assert wm.metadata.loaded_files_forgotten == 250
    assert wm.metadata.forgotten_through == names[249]
    wm.refresh_counts()
    assert wm.mysql_state.s3_files_created == len(names) + 1
    assert "quarantined_s3_files" not in wm.document()


def test_changes_from_two_threads_are_never_lost(tmp_path: Path) -> None:
    """Guards SimpleWatermarkManager.changing's lock: the backup appends staged files
    while the load alongside moves loaded ones, each a read-change-write of the list.

    The sleep between reading and writing back forces the thread switch that loses
    an update when the two are not serialised.
    """
    import threading
    import time

    from src.core.simple_watermark_manager import SimpleWatermarkManager
    from src.core.stage import LocalStage

    store = SimpleWatermarkManager(
        LocalStage("local", str(tmp_path)),
        "watermarks/t.json",
        table_name="s:db.t",
        target="pg",
        cdc_strategy="id_only",
    )
    staged = [f"file-{n}" for n in range(60)]

    def backup() -> None:
        for uri in staged:
            with store.changing() as wm:
                files = list(wm.backup_s3_files)
                time.sleep(0.001)
                wm.backup_s3_files = [*files, uri]

    def load() -> None:
        while True:
            with store.changing() as wm:
                pending = list(wm.backup_s3_files)
                time.sleep(0.001)
                wm.mark_processed(pending)
                if len(wm.processed_s3_files) == len(staged):
                    return

    threads = [threading.Thread(target=backup), threading.Thread(target=load, daemon=True)]
    for thread in threads:
        thread.start()
    threads[0].join()
    threads[1].join(timeout=10)
    doc = store.refresh()
    assert sorted(doc.processed_s3_files + doc.backup_s3_files) == sorted(staged)


def test_a_failure_that_cannot_be_recorded_leaves_the_original_error(tmp_path: Path) -> None:
    """A stage's failure path: the watermark write fails too (here: the lock is lost), and
    the run must still end with its own error (its exit code), not the write's."""
    import pytest

    from src.core.simple_watermark_manager import SimpleWatermarkManager
    from src.core.stage import LocalStage
    from src.errors import DataError, LockHeldError

    def lost() -> None:
        raise LockHeldError("this run lost its lock")

    store = SimpleWatermarkManager(
        LocalStage("local", str(tmp_path)), "watermarks/v2/t.json",
        table_name="s:d.t", target="pg", cdc_strategy="hybrid", guard=lost,
    )  # fmt: skip
    original = DataError("a zero date in column d")
    with pytest.raises(DataError):
        try:
            raise original
        except DataError as exc:
            store.record_failure("mysql_state", exc)  # logs, never raises
            raise
    assert not (tmp_path / "watermarks/v2/t.json").exists()
