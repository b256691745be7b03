"""One streamed keyset query that a chunk may leave unfinished, for the next chunk to go on.

Without a load alongside, :class:`src.backup.chunk_loop.ChunkLoop` reads queries
of more rows than a chunk (see its ``SPAN_ROWS``): each chunk takes its rows in
order, and the rest of a batch it cut waits here for the next chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from src.backup.mysql_reader import BatchStream
from src.errors import DataError


class OpenQuery:
    """A query's stream, taken from chunk by chunk in order.

    ``rows`` is its LIMIT, ``done`` the run's rows at its end and ``remaining``
    the rows its chunk has left then (for a query inside one chunk).
    """

    def __init__(self, stream: BatchStream, rows: int, done: int, remaining: int) -> None:
        self.stream, self.rows, self.done, self.remaining = stream, rows, done, remaining
        self.got = 0  # rows the stream has produced
        self.ended = False  # the stream has ended
        self._left: pa.RecordBatch | None = None  # rows produced but not yet taken

    @property
    def finished(self) -> bool:
        """Every row of the query is taken."""
        return self._left is None and self.ended

    @property
    def exhausted(self) -> bool:
        """The query ended short of its LIMIT: no rows are left in the window."""
        return self.ended and self.got < self.rows

    def take(self, n: int, on_last: Callable[[pa.RecordBatch], None]) -> Iterator[pa.RecordBatch]:
        """Up to ``n`` rows in order; ``on_last(batch)`` as the LIMIT's last batch arrives."""
        while n > 0 and not self.finished:
            if self._left is not None:
                batch, self._left = self._left, None
            else:
                got = next(self.stream, None)
                if got is None:
                    self.ended = True
                    return
                batch = got
                self.got += batch.num_rows
                if self.got >= self.rows:
                    on_last(batch)
                    # End the result now (PyMySQL closes its cursor only then).
                    if next(self.stream, None) is not None:
                        raise DataError("MySQL returned more rows than the query's LIMIT")
                    self.ended = True
            if batch.num_rows > n:
                batch, self._left = batch.slice(0, n), batch.slice(n)
            n -= batch.num_rows
            yield batch
