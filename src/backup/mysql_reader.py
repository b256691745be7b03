"""Streaming MySQL readers of the backup stage: the interface, PyMySQL, and the choice.

Both readers (:mod:`src.backup.connectorx_reader`, fast; :class:`PyMySQLReader`,
the fallback) take a pyformat SQL template (``%s`` / ``%(name)s`` placeholders,
literal ``%`` doubled, as :meth:`TableSchema.select_list` produces) with its
parameters, and yield final Arrow batches of ``TableSchema.arrow_schema``
through :mod:`src.backup.arrow_convert`; for the same query they yield equal
batches. Sessions run in UTC with utf8mb4 (SPEC §5). PyMySQL streams through a
server-side cursor, so it holds one batch whatever the query.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import pyarrow as pa
import pymysql
import pymysql.cursors
from pymysql.converters import encoders

from src.backup.conversion_stats import ConversionStats
from src.core.connections import MySQLEndpoint
from src.core.driver_errors import connection_failed
from src.core.table_schema import TableSchema
from src.utils.logging_setup import get_logger

log = get_logger("backup")

Params = Sequence[Any] | Mapping[str, Any]
ReaderChoice = Literal["auto", "connectorx", "pymysql"]

# Rows per batch (and so per Parquet row group). Smaller than the default chunk
# (100,000) so that encoding a batch overlaps reading the next: on the SPEC §10.1
# table 50,000 ran ~5% faster than 100,000, with ~25 MB less peak RSS.
DEFAULT_BATCH_SIZE = 50_000
# The most rows a whole read may return (connectorx with the GIL released): the caller's
# LIMIT; with the read-ahead two such results (~20 MB each on the SPEC §10.1 table)
# are held.
WHOLE_READ_ROWS = 100_000


class BatchStream(Iterator[pa.RecordBatch]):
    """The final batches of one query, with running counters of what conversion changed."""

    def __init__(self, raw: Iterator[pa.RecordBatch], schema: TableSchema) -> None:
        self._raw = raw
        self._schema = schema
        self.stats = ConversionStats()
        self.rows = 0
        self.batches = 0

    def __next__(self) -> pa.RecordBatch:
        raw = next(self._raw)
        # Imported on the first rows (pyarrow.compute: ~45 ms): a run with nothing new
        # never converts any. Not while a whole read runs: an empty one took 8-99 ms on
        # a busy machine, so no wait tells an empty read from one with rows.
        from src.backup.arrow_convert import convert_batch

        try:
            batch, stats = convert_batch(raw, self._schema)
        except BaseException:
            self.close()  # frees the reader's connection for the next query
            raise
        self.stats.add(stats)
        self.rows += batch.num_rows
        self.batches += 1
        return batch

    def close(self) -> None:
        """Stop reading; the reader abandons the rest of the result."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class MySQLReader(ABC):
    """Reads one table's chunk queries as final Arrow batches; one interface, two drivers."""

    name: ClassVar[str]

    def __init__(
        self, endpoint: MySQLEndpoint, schema: TableSchema, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.endpoint = endpoint
        self.schema = schema
        self.batch_size = batch_size
        self._conn: pymysql.connections.Connection | None = None

    def _connection(self) -> pymysql.connections.Connection:
        if self._conn is None or not self._conn.open:
            # No decoders (conv holds encoders only) and bytes instead of str: values stay
            # raw and Arrow parses whole columns; see FIELD_NOTES "Reading MySQL fast".
            self._conn = self.endpoint.connect(conv=dict(encoders), use_unicode=False)
        return self._conn

    def _live_connection(self) -> pymysql.connections.Connection:
        # Chunks can be minutes apart (upload, load): reconnect when the server dropped
        # the idle session (wait_timeout). PyMySQL deprecated ping(reconnect=True).
        try:
            self._connection().ping(reconnect=False)
        except pymysql.err.Error:
            self.close()
        return self._connection()

    def render(self, sql: str, params: Params = ()) -> str:
        """The exact SQL text sent for ``sql`` and ``params`` (PyMySQL's own escaping)."""
        with self._connection().cursor() as cur:
            return str(cur.mogrify(sql, params))

    def read(
        self, sql: str, params: Params = (), *, start: bool = False, whole: bool = False
    ) -> BatchStream:
        """Run ``sql`` and stream its rows as final batches of ``self.schema``.

        ``sql`` is always a pyformat template, even without parameters (``%%`` for a
        literal ``%``); its projection must be ``self.schema.select_list()``.
        Nothing is sent before the first batch is asked for, unless ``start`` is
        set and the driver can run a query beside an unfinished one (connectorx):
        then the query is sent now and its rows arrive while the caller finishes
        the previous stream. ``whole``: connectorx reads the result whole, with the
        GIL released, for a caller whose other threads must run meanwhile; the
        query's LIMIT must be at most :data:`WHOLE_READ_ROWS`. Errors surface
        from the stream either way.
        """
        return BatchStream(self._raw_batches(sql, params, start, whole), self.schema)

    @abstractmethod
    def _raw_batches(
        self, sql: str, params: Params, start: bool, whole: bool
    ) -> Iterator[pa.RecordBatch]:
        """Raw batches in the projection's column order."""

    def close(self) -> None:
        """Close the reader's connection."""
        conn, self._conn = self._conn, None
        if conn is not None and conn.open:
            with contextlib.suppress(pymysql.err.Error):  # the server already dropped it
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PyMySQLReader(MySQLReader):
    """PyMySQL ``SSCursor``: server-side streaming, raw bytes, columns parsed by Arrow."""

    name = "pymysql"

    def _raw_batches(
        self, sql: str, params: Params, start: bool, whole: bool
    ) -> Iterator[pa.RecordBatch]:
        # One connection, one result at a time: `start` and `whole` cannot apply; it streams
        # (and its socket reads release the GIL anyway).
        names = [c.name for c in self.schema.columns]
        types = [pa.binary() for _ in names]  # every value arrives as bytes
        finished = False
        try:
            conn = self._live_connection()
            cur = conn.cursor(pymysql.cursors.SSCursor)
            cur.execute(sql, params)
            while True:
                fetched = cur.fetchmany(self.batch_size)
                if not fetched:
                    break
                columns = list(zip(*fetched, strict=True))
                arrays = [pa.array(col, typ) for col, typ in zip(columns, types, strict=True)]
                yield pa.RecordBatch.from_arrays(arrays, names=names)
            finished = True
        except pymysql.err.MySQLError as exc:
            if connection_failed(exc):
                raise self.endpoint.connection_error(exc) from exc
            raise
        finally:
            if finished:
                cur.close()
            else:
                # Abandoned mid-result: SSCursor.close() would read every remaining row;
                # dropping the connection stops the server instead.
                self.close()


def make_reader(
    endpoint: MySQLEndpoint,
    schema: TableSchema,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    prefer: ReaderChoice = "auto",
) -> MySQLReader:
    """Pick the reader for a table: connectorx unless :func:`connectorx_blockers` objects.

    No column type forces the fallback today: through the projection of
    :mod:`src.backup.mysql_schema` every type ``load_table_schema`` accepts reaches
    connectorx as an integer, float, string or binary column (see
    CONNECTORX_SAFE_KINDS). PyMySQL is used when connectorx is missing or when
    ``prefer="pymysql"``. (The SSH tunnel forwards in a child process, so
    connectorx, which holds the GIL while it reads, works through it.)
    """
    from src.backup.connectorx_reader import ConnectorxReader, connectorx_blockers

    if prefer == "pymysql" or (prefer == "auto" and connectorx_blockers(schema)):
        return PyMySQLReader(endpoint, schema, batch_size)
    if prefer == "auto" and (why := endpoint.connectorx_blocker):
        log.info("reading with PyMySQL to keep the TLS settings", reason=why)
        return PyMySQLReader(endpoint, schema, batch_size)
    return ConnectorxReader(endpoint, schema, batch_size)
