"""The chunk loop of one table's backup run: read a chunk, write it, move on.

Files hold whole chunks (a chunk bigger than a file is split at a row
boundary, except for ``timestamp_only`` whose groups of equal timestamps must
stay whole); the position after a file's last row travels with the file to the
watermark. While a load runs alongside and waits for files, a file also ends
after a batch once it holds :data:`EARLY_FILE_ROWS` (the run's first file:
:data:`FIRST_READ_ROWS`), so the load starts on the first rows of a window
instead of after its whole first file.

With a load alongside, a chunk is read in queries of at most
:data:`ALONGSIDE_READ_ROWS` rows (:data:`FIRST_READ_ROWS` first, whose file is
the first pass's; :data:`EARLY_FILE_ROWS` while the load waits
for files, and for the first :data:`SMALL_WINDOW_ROWS` rows of a run, so that an
everyday window never ends in one big read whose rows the load only then starts
on): connectorx reads such results whole with the GIL released, so the
load's thread runs while the server reads (see :mod:`src.backup.mysql_reader`);
the queries continue one another by key, exactly as chunks do. Without a load
alongside, a query is streamed and reads at least :data:`SPAN_ROWS` rows: a
chunk smaller than that takes its rows from a query that goes on into the next
chunks (:mod:`src.backup.open_query`), because every query costs a pipeline
restart that read-ahead does not hide (the 2M rows of the SPEC §10.1 table in
50,000-row chunks: 2.45-2.6 s in 40 queries, 2.3-2.4 s in 8). Chunks stay the
unit of progress and of the caps; a query never reads past a cap. Two things
keep the loop near the speed of the server:

- when a chunk's rows are all in, the next chunk's query is sent before the
  last batch is written, so the server and connectorx keep reading while
  Parquet encodes; it is used only if it is exactly the query the loop then
  builds;
- dates are read natively, and after connectorx fails on one (a zero date) the
  run carries on from the position after the last written row with the dates
  selected as text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from src.backup.conversion_stats import ConversionStats
from src.backup.keyset import ChunkQuery, Position, Window
from src.backup.mysql_reader import WHOLE_READ_ROWS, BatchStream, MySQLReader
from src.backup.open_query import OpenQuery
from src.backup.parquet_sink import ParquetSink
from src.config.settings import RetryConfig
from src.errors import NativeDecodeError, SourceConnectionError
from src.utils.logging_setup import get_logger

if TYPE_CHECKING:
    from src.backup.plan import BackupResult

log = get_logger("backup")
EARLY_FILE_ROWS = 25_000  # the smallest file ended early for a waiting load
# Rows per query with a load alongside (measured on the SPEC §10.1 incremental run:
# 25,000-row reads let the first merge start after 0.4 s instead of after the whole
# 100,000-row first chunk; 100,000 once the load is busy keeps a backfill's queries few).
ALONGSIDE_READ_ROWS = 100_000
# Until a run has read this many rows it reads EARLY_FILE_ROWS at a time even while the
# load is busy: a window of this size may end at any read, and the load's last pass then
# takes only the last small read (an incremental run's last pass after a 50,000-row read
# took 0.6 s, after a 25,000-row read 0.3 s).
SMALL_WINDOW_ROWS = 2 * ALONGSIDE_READ_ROWS
# A run's first query with a load alongside, and its first file: the load is the slower
# side of an incremental run, so its first pass should start as soon as it can (SPEC
# §10.1 incremental run: the first pass starts 0.2-0.3 s sooner than after a 25,000-row
# read, the run ends 0.03-0.14 s sooner, medians of interleaved runs on a noisy machine).
FIRST_READ_ROWS = 10_000
# The fewest rows a query reads without a load alongside (it may span chunks). Bounds
# what connectorx's unbounded channel can hold while the writer waits (see mysql_reader).
SPAN_ROWS = 250_000


class ChunkLoop:
    """Reads a run's chunks into ``sink`` until the window is exhausted or a cap is hit.

    ``strategy`` is a :class:`RowBasedBackupStrategy` or a :class:`PrimaryKeyPass`;
    ``file_key(chunk, file)`` names the files, ``on_chunk(result)`` reports
    progress. ``pos`` is where the run stands: after the last row written.
    """

    def __init__(
        self,
        reader: MySQLReader,
        sink: ParquetSink,
        strategy: Any,
        window: Window,
        *,
        chunk_size: int,
        rows_per_file: int,
        limit: int | None,
        max_chunks: int | None,
        table_name: str,
        file_key: Callable[[int, int], str],
        on_chunk: Callable[[BackupResult], None] | None = None,
        retries: RetryConfig | None = None,
        load_waiting: Callable[[], bool] | None = None,
        first_chunk: int = 0,
    ) -> None:
        """``first_chunk``: the number of this loop's first chunk (a second walk of one run)."""
        self.reader = reader
        self.sink = sink
        self.strategy = strategy
        self.window = window
        self.chunk_size = chunk_size
        self.rows_per_file = rows_per_file
        self.limit = limit
        self.max_chunks = max_chunks
        self.table_name = table_name
        self.file_key = file_key
        self.on_chunk = on_chunk
        self.retries = retries or RetryConfig()
        self.load_waiting = load_waiting
        self.pos = Position()
        self.chunk_no = first_chunk
        self._files_in_chunk = 0
        self._written = 0  # rows of the current chunk in the sink
        self._ahead: tuple[ChunkQuery, int, BatchStream] | None = None  # query, rows, stream
        self._open: OpenQuery | None = None  # the query the next chunk goes on with
        self._files_closed = 0  # in this run

    def run(self, pos: Position, result: BackupResult) -> None:
        """Stage chunk after chunk from ``pos``, counting into ``result``."""
        self.pos = pos
        try:
            while (stop := self._cap(result.rows, self.chunk_no)) is None:
                limit = self._chunk_limit(result.rows)
                self._files_in_chunk = self._written = 0
                stats = ConversionStats()
                try:
                    if self.strategy.kind == "timestamp_only":
                        query = self.strategy.chunk_query(self.pos, self.window, limit)
                        fetched = self._group_chunk(self._stream(query, limit), result, stats)
                    else:
                        fetched = self._chunk(limit, result.rows, stats)
                except NativeDecodeError as exc:
                    self.strategy = self._dates_as_text(exc)
                    if not self._written:
                        continue  # nothing of this chunk is written: read it again
                    fetched = limit  # carry on after the last written row
                except SourceConnectionError as exc:
                    self._recover(exc, result)
                    if not self._written:
                        continue
                    fetched = limit
                _count(stats, result)
                if not self._written:
                    break
                result.rows += self._written
                result.chunks += 1
                log.info(
                    "chunk read",
                    table=self.table_name,
                    chunk=self.chunk_no,
                    rows=self._written,
                    total=result.rows,
                )
                if self.on_chunk:
                    self.on_chunk(result)
                self.chunk_no += 1
                if fetched < limit:
                    break  # the window is exhausted
            result.stopped_by = stop
            self._close_file()
        finally:
            if self._ahead is not None:
                self._ahead[2].close()
            if self._open is not None:  # a chunk cut short by a recovery left it unread
                self._open.stream.close()

    # ------------------------------------------------------------------ caps
    def _cap(self, rows: int, chunk: int) -> str | None:
        """The cap that stops the run before chunk number ``chunk``, if any."""
        if self.limit is not None and rows >= self.limit:
            return "limit"
        if self.max_chunks is not None and chunk >= self.max_chunks:
            return "max_chunks"
        return None

    def _chunk_limit(self, rows: int) -> int:
        return self.chunk_size if self.limit is None else min(self.chunk_size, self.limit - rows)

    def _spans(self) -> bool:
        """Whether a query may read on into the next chunks (see the module docstring)."""
        return self.load_waiting is None and self.chunk_size < SPAN_ROWS

    def _rows_to_cap(self, done: int) -> int:
        """The rows a run that has read ``done`` may still read (SPAN_ROWS when uncapped)."""
        caps = [SPAN_ROWS + done]
        if self.limit is not None:
            caps.append(self.limit)
        if self.max_chunks is not None:
            caps.append(self.max_chunks * self.chunk_size)
        return min(caps) - done

    # --------------------------------------------------------------- reading
    def _read_rows(self, remaining: int, done: int) -> int:
        """The rows of the next query: ``remaining`` left in the chunk, ``done`` read so far."""
        if self._spans():
            return max(remaining, self._rows_to_cap(done))
        if self.load_waiting is None:
            return remaining  # one query per chunk
        waiting = self.load_waiting()  # asked at every query: it raises a failed load's error
        if done == 0:
            return min(remaining, FIRST_READ_ROWS)
        small = done < SMALL_WINDOW_ROWS or waiting
        return min(remaining, EARLY_FILE_ROWS if small else ALONGSIDE_READ_ROWS)

    def _stream(self, query: ChunkQuery, rows: int) -> BatchStream:
        """A query's rows: the query sent ahead when it is this one, else a new read."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead[0] == query:
                return ahead[2]
            ahead[2].close()
        return self._read(query, rows)

    def _next_query(self, remaining: int, done: int) -> tuple[ChunkQuery, int]:
        """The next keyset query from ``pos``: the one sent ahead when it starts there."""
        if self._ahead is not None:
            _, rows, _ = self._ahead
            query = self.strategy.chunk_query(self.pos, self.window, rows)
            most = self._read_rows(remaining, done) if self._spans() else remaining
            if rows <= most and query == self._ahead[0]:
                return query, rows
        rows = self._read_rows(remaining, done)
        return self.strategy.chunk_query(self.pos, self.window, rows), rows

    def _send_next(self, batch: pa.RecordBatch, rows: int, remaining: int) -> None:
        """A query is complete after ``batch``: send the next one now (``rows`` read by
        then; ``remaining`` rows left in its chunk, none: the next chunk's first query)."""
        if self._spans():
            remaining = 0
        elif not remaining:
            if self._cap(rows, self.chunk_no + 1) is not None:
                return
            remaining = self._chunk_limit(rows)
        n = self._read_rows(remaining, rows)
        if n <= 0:
            return  # a cap ends the run there
        after = self.strategy.position_after(batch, self.pos)
        query = self.strategy.chunk_query(after, self.window, n)
        self._ahead = (query, n, self._read(query, n, start=True))

    def _read(self, query: ChunkQuery, rows: int, start: bool = False) -> BatchStream:
        # Read whole (GIL released) only while the load's thread must run meanwhile:
        # alone, the stream is faster. A timestamp_only chunk may be bigger: it streams.
        whole = self.load_waiting is not None and rows <= WHOLE_READ_ROWS
        return self.reader.read(query.sql, query.params, start=start, whole=whole)

    def _chunk(self, limit: int, rows_before: int, stats: ConversionStats) -> int:
        """Read and write a keyset chunk query by query; return the rows read."""
        fetched = 0
        try:
            while fetched < limit:
                if self._open is None:
                    remaining, done = limit - fetched, rows_before + fetched
                    query, rows = self._next_query(remaining, done)
                    stream = self._stream(query, rows)
                    self._open = OpenQuery(stream, rows, done + rows, remaining - rows)
                query_ = self._open
                for batch in query_.take(limit - fetched, self._on_last):
                    self._write(batch)
                    fetched += batch.num_rows
                if query_.finished:
                    stats.add(query_.stream.stats)
                    self._open = None
                    if query_.exhausted:
                        break  # the window is exhausted
        except BaseException:
            if self._open is not None:  # read again from pos by the next query
                stats.add(self._open.stream.stats)
                self._open.stream.close()
                self._open = None
            raise
        return fetched

    def _on_last(self, batch: pa.RecordBatch) -> None:
        """The open query's last batch has arrived: send the next query now."""
        assert self._open is not None
        self._send_next(batch, self._open.done, self._open.remaining)

    def _write(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` into the sink, ending files where they are full (or early)."""
        offset = 0
        while offset < batch.num_rows:
            room = self.rows_per_file - self.sink.rows_in_file
            piece = batch.slice(offset, min(room, batch.num_rows - offset))
            offset += piece.num_rows
            self.sink.write(piece)
            self._written += piece.num_rows
            self.pos = self.strategy.position_after(piece, self.pos)
            if self.sink.rows_in_file >= self.rows_per_file or self._early():
                self._close_file()

    def _early(self) -> bool:
        """End the file now: a load alongside waits for files and this one is big enough."""
        waiting = self.load_waiting
        least = EARLY_FILE_ROWS if self._files_closed else FIRST_READ_ROWS
        return waiting is not None and self.sink.rows_in_file >= least and waiting()

    def _group_chunk(
        self, stream: BatchStream, result: BackupResult, stats: ConversionStats
    ) -> int:
        """timestamp_only: read the chunk, complete its last group, then write it whole."""
        try:
            batches = [b for b in stream if b.num_rows]
        finally:
            stats.add(stream.stats)
        fetched = sum(b.num_rows for b in batches)
        if batches:
            batches = self._complete_group(batches, result)
        for batch in batches:
            self.sink.write(batch)
            self._written += batch.num_rows
        if batches:
            self.pos = self.strategy.position_after(batches[-1], self.pos)
        self._close_file()  # files end only where groups of equal timestamps are whole
        return fetched

    def _complete_group(
        self, batches: list[pa.RecordBatch], result: BackupResult
    ) -> list[pa.RecordBatch]:
        """Replace the chunk's last group by all rows sharing its timestamp."""
        import pyarrow.compute as pc

        strategy = self.strategy
        last_ts = strategy.position_after(batches[-1], Position()).ts
        column = strategy.schema.column(strategy.ts_col or "").target_name
        table = pa.Table.from_batches(batches)
        before = table.filter(pc.not_equal(table[column], pa.scalar(last_ts, table[column].type)))
        query = strategy.group_query(last_ts)
        stream = self.reader.read(query.sql, query.params)
        group = [b for b in stream if b.num_rows]
        _count(stream.stats, result)
        return [*before.combine_chunks().to_batches(), *group]

    def _recover(self, exc: SourceConnectionError, result: BackupResult) -> None:
        """After a cut read: wait, drop the connections, and let the loop read on from ``pos``.

        ``pos`` is after the last row *written* to the sink, so the next query
        neither skips nor repeats a row. Raises ``exc`` once the retries are spent.
        """
        if result.retries >= self.retries.attempts:
            raise SourceConnectionError(f"{exc} (gave up after {result.retries} retries)") from None
        result.retries += 1
        wait = self.retries.wait(result.retries)
        log.warning(
            "MySQL read cut; reconnecting and resuming after the last written row",
            table=self.table_name,
            retry=result.retries,
            of=self.retries.attempts,
            wait_seconds=wait,
            error=str(exc),
        )
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                self._ahead[2].close()
            self._ahead = None
        self.reader.close()
        time.sleep(wait)

    def _dates_as_text(self, exc: NativeDecodeError) -> Any:
        """The strategy with dates selected as text, after connectorx failed on one.

        Raises ``exc`` when dates are text already: the value is not a date.
        """
        schema = self.strategy.schema
        if not schema.reads_dates_natively:
            raise exc
        log.warning(
            "connectorx cannot decode a date natively (a zero date?); reading on with "
            "dates selected as text",
            table=self.table_name,
            error=str(exc),
        )
        return self.strategy.with_schema(schema.with_dates_as_text())

    # --------------------------------------------------------------- writing
    def _close_file(self) -> None:
        self.sink.close_file(self.file_key(self.chunk_no, self._files_in_chunk), self.pos)
        self._files_in_chunk += 1
        self._files_closed += 1


def _count(stats: ConversionStats, result: BackupResult) -> None:
    result.zero_dates += stats.zero_dates
    result.nul_chars += stats.nul_chars
    result.truncated += stats.truncated
