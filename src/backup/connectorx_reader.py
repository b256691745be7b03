"""The fast reader: connectorx turns the server's rows into Arrow columns in Rust.

Memory: connectorx's Rust producer runs ahead of the consumer into
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
:data:`src.backup.mysql_reader.WHOLE_READ_ROWS` rows, done on a worker thread; alone, the stream is
faster (it overlaps the read with the caller's writing: 4.3 s against 4.7 s for
a 2M-row backup in 50,000-row chunks).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Callable, Iterator
from typing import ClassVar, Literal

import pyarrow as pa

from src.backup.mysql_reader import MySQLReader, Params
from src.core.connections import SESSION_TIME_ZONE_SQL
from src.core.table_schema import TableSchema
from src.errors import DataError, NativeDecodeError, first_line

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


def connectorx_blockers(schema: TableSchema) -> list[str]:
    """Why connectorx cannot read ``schema`` here; empty when it can."""
    reasons = []
    if importlib.util.find_spec("connectorx") is None:
        reasons.append("connectorx is not installed")
    for col in schema.columns:
        if col.kind not in CONNECTORX_SAFE_KINDS:
            reasons.append(f"column {col.name!r} ({col.column_type}) is not verified with it")
    return reasons
