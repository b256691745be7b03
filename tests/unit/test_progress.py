"""The live progress line on a terminal, and silence off one."""

from __future__ import annotations

import io

from src.backup.plan import BackupResult
from src.cli.progress import LiveProgress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_lines_on_a_terminal_with_rate_and_eta() -> None:
    out = FakeTty()
    progress = LiveProgress(out)
    progress.update(BackupResult("shop.orders", rows=50_000, seconds=1.0, estimated_rows=200_000))
    progress.update(BackupResult("shop.items", rows=10, seconds=1.0))
    progress.update(BackupResult("shop.orders", rows=100_000, seconds=2.0, estimated_rows=200_000))
    text = out.getvalue()
    assert "shop.orders" in text and "100,000 rows, 50,000 rows/s" in text
    assert "ETA 0:02" in text  # 100,000 rows left at 50,000 rows/s
    assert "shop.items" in text and "10 rows" in text
    progress.done("shop.orders")
    progress.done("shop.items")
    assert progress._progress is None  # stopped with the last table


def test_nothing_is_drawn_off_a_terminal() -> None:
    out = io.StringIO()
    progress = LiveProgress(out)
    progress.update(BackupResult("shop.orders", rows=5, seconds=1.0))
    assert out.getvalue() == ""


def test_rows_loaded_alongside_the_extract_join_the_tables_line() -> None:
    from src.load.load_stage import LoadResult

    out = FakeTty()
    progress = LiveProgress(out)
    progress.loaded(LoadResult("shop.orders", rows=7))  # no bar yet: nothing to join
    progress.update(BackupResult("shop.orders", rows=50_000, seconds=1.0))
    progress.loaded(LoadResult("shop.orders", rows=25_000))
    assert "25,000 loaded" in out.getvalue()
    progress.done("shop.orders")
