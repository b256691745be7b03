"""Streaming MySQL readers of the backup stage: connectorx (fast) and PyMySQL (fallback).

Both take a pyformat SQL template (``%s`` / ``%(name)s`` placeholders, literal
``%`` doubled, as :meth:`TableSchema.select_list` produces) with its
parameters, and yield final Arrow batches of ``TableSchema.arrow_schema``
through :mod:`src.backup.arrow_convert`; for the same query they yield equal
batches. Sessions run in UTC with utf8mb4 (SPEC §5).

Memory: PyMySQL streams through a server-side cursor, so it holds one batch
whatever the query. connectorx's Rust producer runs ahead of the consumer into
an unbounded channel (``std::sync::mpsc::channel`` in connectorx 0.4.6's
arrowstream destination,
https://github.com/sfu-db/connector-x/blob/main/connectorx/src/destinations/arrowstream/mod.rs),
so when the Parquet writer is slower than the server it can hold up to one whole
*query result*: measured 322 MB for an unLIMITed 2M-row SPEC §10.1 table read
at one batch per second. Bound it with the chunk query's LIMIT, as every
strategy does.

The GIL: connectorx's stream waits for each batch inside Rust *holding* the
GIL, so while it reads, the process's other Python threads (a load running
alongside the extract) get ~10-25 % of their time (measured on 100,000 rows);
its whole-result mode releases the GIL for the read (other threads ran at
80-100 %). A caller whose other threads must run during the read (the load
alongside the extract) therefore asks for a whole read of at most
:data:`WHOLE_READ_ROWS` rows, done on a worker thread; alone, the stream is
faster (it overlaps the read with the caller's writing: 4.3 s against 4.7 s for
a 2M-row backup in 50,000-row chunks).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import pyarrow as pa
import pymysql
import pymysql.cursors
from pymysql.converters import encoders

from src.backup.conversion_stats import ConversionStats
from src.core.connections import SESSION_TIME_ZONE_SQL, MySQLEndpoint
from src.core.driver_errors import connection_failed
from src.core.table_schema import TableSchema
from src.errors import DataError, NativeDecodeError, first_line
from src.utils.logging_setup import get_logger

log = get_logger("backup")

Params = Sequence[Any] | Mapping[str, Any]
ReaderChoice = Literal["auto", "connectorx", "pymysql"]

# Rows per batch (and so per Parquet row group). Smaller than the default chunk
# (100,000) so that encoding a batch overlaps reading the next: on the SPEC §10.1
# table 50,000 ran ~5% faster than 100,000, with ~25 MB less peak RSS.
DEFAULT_BATCH_SIZE = 50_000
# The most rows a whole read may return (GIL released, see above): the caller's
# LIMIT; with the read-ahead two such results (~20 MB each on the SPEC §10.1 table)
# are held.
WHOLE_READ_ROWS = 100_000
# connectorx 0.4 (pinned) panics, through pyo3's PanicException, in two ways that matter.
# A DATE/DATETIME value mysql_common cannot convert (a zero date), in a nullable column
# and in a NOT NULL one (a legacy NOT NULL DEFAULT '0000-00-00'):
#   Could not retrieve `core::option::Option<chrono::naive::date::NaiveDate>`: ...
#   Could not retrieve `chrono::naive::date::NaiveDate`: ...
_DATE_PANIC = re.compile(
    r"Could not retrieve `(?:core::option::Option<)?chrono::naive::"
    r"(?:date::NaiveDate|datetime::NaiveDateTime)>?`"
)
# The connection lost mid-read (server KILL, a reset, a dropped tunnel): a panic from the
# stream, a RuntimeError from a whole read:
#   cx writer failed: Source(MySQLError(CodecError { IO error: `bytes remaining on stream' }))
#   CodecError { IO error: `bytes remaining on stream' }
_CONNECTION_PANIC = re.compile(r"MySQLError\((?:CodecError|IoError|DriverError)|IO error", re.I)
# Column kinds verified through connectorx 0.4.6 with mysql_schema's projection
# (tests/integration/test_mysql_types.py): all of them today; dates natively, and
# as text after a zero date (NativeDecodeError). A kind added to mysql_schema later
# goes to PyMySQL until it is verified and listed here.
CONNECTORX_SAFE_KINDS: frozenset[str] = frozenset(
    {"integer", "unsigned_bigint", "decimal", "decimal_text", "float", "double", "bit_bool"}
    | {"bit_int", "string", "date", "datetime", "timestamp", "time", "binary"}
)


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


class _WholeRead:
    """One connectorx whole-result read on a worker thread (the GIL is free meanwhile)."""

    def __init__(self, read: Callable[[], pa.Table]) -> None:
        self._read = read
        self._table: pa.Table | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mysql-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._table = self._read()
        except BaseException as exc:  # PanicException too: re-raised in the consumer
            self._error = exc

    def batches(self, size: int) -> Iterator[pa.RecordBatch]:
        """The result's batches of at most ``size`` rows, once the read is done."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._table is not None
        table, self._table = self._table, None  # the batches alone keep the rows alive
        yield from table.to_batches(max_chunksize=size)


class ConnectorxReader(MySQLReader):
    """connectorx ``arrow_stream``: the server's rows become Arrow columns in Rust.

    connectorx cannot bind parameters, so the query is rendered by PyMySQL's
    ``mogrify`` on a real connection (same escaping, same sql_mode as what PyMySQL
    would send); that connection also fails fast on a bad host or password, where
    connectorx's pool retries for 30 s. connectorx holds the GIL while it reads: a
    tunnel forwarder serving it must run in another process (FIELD_NOTES).

    A value it cannot decode (a zero date selected natively) makes its Rust
    producer panic; the batches before it were whole, and the read ends with
    :class:`NativeDecodeError` (the panic message also reaches stderr, printed
    by Rust's panic hook).
    """

    name = "connectorx"
    # connectorx's default; measured ~5% faster than "text" on the SPEC §10.1 table.
    protocol: ClassVar[Literal["text", "binary"]] = "binary"

    def _raw_batches(
        self, sql: str, params: Params, start: bool, whole: bool
    ) -> Iterator[pa.RecordBatch]:
        # A generator body runs on the first next(): send the query before, if asked to.
        sent: Iterator[pa.RecordBatch] | BaseException | None = None
        if start:
            try:
                sent = self._send(sql, params, whole)  # returns once the read is running
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # raised from the stream, like a lazy read's
                sent = exc
        return self._batches(sql, params, sent, whole)

    def _send(self, sql: str, params: Params, whole: bool) -> Iterator[pa.RecordBatch]:
        import connectorx  # heavy (Rust extension): imported on first use

        url, text = self.endpoint.connectorx_url(), self.render(sql, params)
        setup = ["SET NAMES utf8mb4", SESSION_TIME_ZONE_SQL]
        if whole:
            read = _WholeRead(
                lambda: connectorx.read_sql(
                    url,
                    text,
                    return_type="arrow",
                    protocol=self.protocol,
                    pre_execution_query=setup,
                )
            )
            return read.batches(self.batch_size)
        return iter(
            connectorx.read_sql(
                url,
                text,
                return_type="arrow_stream",
                protocol=self.protocol,
                batch_size=self.batch_size,
                pre_execution_query=setup,
            )
        )

    def _batches(
        self,
        sql: str,
        params: Params,
        sent: Iterator[pa.RecordBatch] | BaseException | None,
        whole: bool,
    ) -> Iterator[pa.RecordBatch]:
        try:
            if isinstance(sent, BaseException):
                raise sent
            for batch in sent or self._send(sql, params, whole):
                if batch.num_rows:
                    yield batch
        except BaseException as exc:
            classified = self.classify(exc)
            if classified is exc:
                raise
            raise classified from exc

    def classify(self, exc: BaseException) -> BaseException:
        """connectorx's error as ours: a zero date, a lost connection, or a failed value.

        pyo3's ``PanicException`` derives from BaseException and carries only a
        message, so the panic is matched by its type and its message; a whole
        read reports a lost connection as a ``RuntimeError``. Anything else is
        returned as it is.
        """
        if type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime":
            text = self.endpoint.scrub(first_line(exc))
            if _DATE_PANIC.search(text):
                # The batches before it were whole and correct; nothing after it is read.
                return NativeDecodeError(
                    f"table {self.schema.qualified_name}: connectorx panicked on a date value "
                    f"({text})"
                )
            if _CONNECTION_PANIC.search(text):
                return self.endpoint.connection_error(RuntimeError(text))
            return DataError(
                f"table {self.schema.qualified_name}: connectorx failed on a value ({text}); "
                "rerun with --reader pymysql"
            )
        if isinstance(exc, RuntimeError):
            text = self.endpoint.scrub(first_line(exc))
            if "waiting for connection" in text or _CONNECTION_PANIC.search(text):
                # connectorx's pool timed out, or a whole read lost its connection
                return self.endpoint.connection_error(RuntimeError(text))
        return exc


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


def connectorx_blockers(schema: TableSchema) -> list[str]:
    """Why connectorx cannot read ``schema`` here; empty when it can."""
    reasons = []
    if importlib.util.find_spec("connectorx") is None:
        reasons.append("connectorx is not installed")
    for col in schema.columns:
        if col.kind not in CONNECTORX_SAFE_KINDS:
            reasons.append(f"column {col.name!r} ({col.column_type}) is not verified with it")
    return reasons


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
    if prefer == "pymysql" or (prefer == "auto" and connectorx_blockers(schema)):
        return PyMySQLReader(endpoint, schema, batch_size)
    if prefer == "auto" and (why := endpoint.connectorx_blocker):
        log.info("reading with PyMySQL to keep the TLS settings", reason=why)
        return PyMySQLReader(endpoint, schema, batch_size)
    return ConnectorxReader(endpoint, schema, batch_size)
