"""The watermark document's bookkeeping: loaded files move in order, the list stays bounded."""

from __future__ import annotations

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
