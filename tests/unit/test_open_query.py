"""OpenQuery: a query's rows taken chunk by chunk, in order, and its result ended at its LIMIT."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from src.backup.conversion_stats import ConversionStats
from src.backup.open_query import OpenQuery
from src.errors import DataError


class Stream:
    """A reader's stream of batches of ``ids``; ``ended`` once its generator has finished
    (PyMySQL closes its cursor only then)."""

    def __init__(self, ids: list[int], batch: int) -> None:
        self.stats = ConversionStats()
        self.ended = False
        self._batches = self._gen(ids, batch)

    def _gen(self, ids: list[int], batch: int) -> Iterator[pa.RecordBatch]:
        for start in range(0, len(ids), batch):
            yield pa.record_batch({"id": ids[start : start + batch]})
        self.ended = True

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)


def _take(query: OpenQuery, n: int, last: list[Any]) -> list[int]:
    return [i for b in query.take(n, last.append) for i in b.column("id").to_pylist()]


def test_chunks_take_a_querys_rows_in_order_across_cut_batches() -> None:
    stream = Stream(list(range(23)), batch=5)
    query = OpenQuery(stream, rows=23, done=23, remaining=0)  # type: ignore[arg-type]
    last: list[Any] = []
    taken = [_take(query, 7, last) for _ in range(4)]
    assert taken == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21)), [21, 22]]
    assert query.finished and not query.exhausted  # its LIMIT: the window may go on
    assert len(last) == 1 and last[0].column("id").to_pylist() == [20, 21, 22]


def test_the_result_is_ended_as_its_last_row_arrives() -> None:
    """Guards the drain after the LIMIT's last batch (PyMySQL's cursor, one connection)."""
    stream = Stream(list(range(10)), batch=5)
    query = OpenQuery(stream, rows=10, done=10, remaining=0)  # type: ignore[arg-type]
    assert _take(query, 10, []) == list(range(10))
    assert stream.ended and query.finished


def test_a_short_result_exhausts_the_window() -> None:
    query = OpenQuery(Stream([1, 2, 3], batch=5), rows=10, done=10, remaining=0)  # type: ignore[arg-type]
    assert _take(query, 5, []) == [1, 2, 3]
    assert _take(query, 5, []) == []
    assert query.finished and query.exhausted


def test_rows_past_the_limit_are_refused() -> None:
    query = OpenQuery(Stream(list(range(8)), batch=4), rows=4, done=4, remaining=0)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="more rows than the query's LIMIT"):
        _take(query, 8, [])
