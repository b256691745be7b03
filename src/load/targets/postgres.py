"""PostgreSQL as a target: native types, ``COPY … FROM STDIN`` streamed from Parquet.

The COPY is in PostgreSQL's binary format, encoded from the Arrow batches by
pgpq, whenever every column's binary form is the one its column type reads
(all of SPEC §7's types but JSONB, whose binary input wants a version byte);
else CSV. Binary saves the server its text parsing: 2M rows of the SPEC §10.1
table copied in 3.1 s binary against 5.0 s CSV, same rows (docs/benchmarks.md).
https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pgpq import ArrowToPostgresBinaryEncoder

from src.config.capabilities import POSTGRES
from src.core.json_text import strip_json_nul_escapes
from src.core.stage import LocalStage, Stage
from src.core.table_schema import ColumnSpec, TableSchema
from src.errors import CorruptStagedFile, LoadError, StageError, first_line
from src.load.targets.base import COMMON_TYPES, StagedFileRef, TargetDialect
from src.utils.faults import fault_point
from src.utils.memory import release_memory
from src.utils.naming import quote_pg

_BOUNDED_STRINGS = ("char", "varchar", "enum", "set", "time")
# Pages of a table that merges keep this percentage for the rows' new versions, so an
# update stays on its page (a HOT update: no new index entry, less WAL). Measured on the
# SPEC §10.1 table, 25,000 of 2M rows upserted after a checkpoint: 194 ms and 69 MB of
# WAL at 90 against 249 ms and 86 MB at 100 (the default), for 11 % more pages.
# https://www.postgresql.org/docs/current/storage-hot.html
MERGE_FILLFACTOR = 90
# MERGE arrived in PostgreSQL 15. Measured there (25,000 and 100,000 changed rows of the
# 2M-row SPEC §10.1 table, interleaved, after a checkpoint): 7-11 % faster than the same
# INSERT … ON CONFLICT DO UPDATE; the everyday incremental run ~0.1 s faster.
MERGE_SINCE = 150000
_UNIQUE_KEY_SQL = """
SELECT 1 FROM pg_index i
WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = cardinality(%s::text[])
  AND ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid
            AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])) <@ %s::text[]
LIMIT 1"""


class PostgresDialect(TargetDialect):
    """PostgreSQL: VARCHAR counts characters; TEXT and JSONB for unbounded text."""

    capabilities = POSTGRES

    def is_duplicate_key(self, exc: BaseException) -> bool:
        """SQLSTATE 23505, unique_violation."""
        return getattr(exc, "pgcode", None) == "23505"

    def merges_by_key(self, cur: Any, target: str, pk: list[str]) -> bool:
        """PostgreSQL 15+ and an immediate, whole-table unique index on exactly ``pk``:
        the index ON CONFLICT (key) would take as its arbiter.

        https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
        """
        if cur.connection.server_version < MERGE_SINCE:
            return False
        cur.execute(_UNIQUE_KEY_SQL, (target, pk, pk))
        return cur.fetchone() is not None

    def is_upsert_refusal(self, exc: BaseException) -> bool:
        """21000: a key twice in the batch; 42P10: no unique constraint on the key columns.

        https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
        """
        return getattr(exc, "pgcode", None) in ("21000", "42P10")

    def table_options(self, schema: TableSchema, source_table: str, *, merges: bool) -> str:
        """``WITH (fillfactor = 90)`` for a table that merges (see MERGE_FILLFACTOR)."""
        return f"WITH (fillfactor = {MERGE_FILLFACTOR})" if merges else ""

    def column_type(self, col: ColumnSpec) -> str:
        """SPEC §7's PostgreSQL column."""
        t = col.arrow_type
        if pa.types.is_decimal(t):
            return f"NUMERIC({t.precision},{t.scale})"
        if pa.types.is_string(t):
            if col.is_json:
                return "JSONB"
            if col.data_type in ("char", "varchar") and col.character_maximum_length:
                return f"VARCHAR({col.character_maximum_length})"
            if col.data_type in _BOUNDED_STRINGS:
                return "VARCHAR"
            return "TEXT"
        return "BYTEA" if pa.types.is_binary(t) else COMMON_TYPES[str(t)]

    def copy_files(
        self,
        cursor: Any,
        stage: Stage,
        table: str,
        schema: TableSchema,
        files: list[StagedFileRef],
        load_prefix: str,
    ) -> int:
        """One ``COPY … FROM STDIN`` of every file, encoded while the COPY runs.

        ``table`` has :meth:`column_type`'s types (the staging table, or a target
        whose columns match them: the caller copies straight into it only then).
        A thread reads the Parquet batches and encodes them (binary, else CSV;
        both release the GIL) into a bounded queue; psycopg2 pulls from it and
        sends (releasing the GIL too), so encoding the next batch overlaps the
        server reading the previous one.
        """
        json_columns = frozenset(c.target_name for c in schema.columns if c.is_json)
        binary = not json_columns
        cols = ", ".join(quote_pg(c.target_name) for c in schema.columns)
        sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT {'binary' if binary else 'csv'})"
        if not files:
            return 0
        try:
            with _CopyStream(stage, files, json_columns) as stream:
                try:
                    cursor.copy_expert(sql, stream, size=_READ_SIZE)
                except Exception:
                    if stream.error is not None:  # psycopg2 wraps it in QueryCanceled
                        raise stream.error from None
                    raise
        finally:
            release_memory()
        return int(cursor.rowcount)


_BATCH_ROWS = 10_000  # rows per encoded chunk (~1.6 MB of SPEC §10.1 rows); peak RSS grows with it
_QUEUE_DEPTH = 4  # chunks encoded ahead of the COPY
_READ_SIZE = 1 << 20  # bytes psycopg2 asks for per read() (its default is 8 KiB)


class _CopyStream:
    """A file-like ``read(size)`` over the COPY data of ``files``, produced by a thread."""

    def __init__(
        self, stage: Stage, files: list[StagedFileRef], json_columns: frozenset[str]
    ) -> None:
        """``json_columns``: JSONB columns (CSV then, their ``\\u0000`` escapes dropped)."""
        self._stage = stage
        self._files = files
        self._json_columns = json_columns
        self._queue: queue.Queue[pa.Buffer | bytes | BaseException | None]
        self._queue = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="copy-data", daemon=True)
        self._chunk = memoryview(b"")
        self._done = False
        self._sent_any = False
        self.error: BaseException | None = None  # what stopped the producer, if anything

    def __enter__(self) -> _CopyStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a producer waiting on a full queue
                self._queue.get_nowait()
        self._thread.join()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of CSV; ``b""`` at the end (psycopg2 then ends the COPY)."""
        while not self._chunk and not self._done:
            if self._sent_any:
                fault_point("mid_copy")
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                self._done = True
            else:
                self._chunk = memoryview(item)
        if size is None or size < 0:
            size = len(self._chunk)
        out, self._chunk = self._chunk[:size], self._chunk[size:]
        self._sent_any = self._sent_any or bool(out)
        return bytes(out)

    def _put(self, item: pa.Buffer | bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            json_columns = self._json_columns
            encode = (lambda b: _csv(b, json_columns)) if json_columns else _BinaryEncoder()
            for ref in self._files:
                for batch in _batches(self._stage, ref):
                    if not self._put(encode(batch)):
                        return
            if isinstance(encode, _BinaryEncoder) and not self._put(encode.trailer()):
                return
        except BaseException as exc:  # raised in the COPY's thread by read()
            self.error = exc
            self._put(exc)
            return
        self._put(None)


def _csv(batch: pa.RecordBatch, json_columns: frozenset[str]) -> pa.Buffer:
    """The batch as CSV rows (no copy: read() slices the buffer)."""
    sink = pa.BufferOutputStream()
    ready = _csv_ready(batch, json_columns)
    pacsv.write_csv(ready, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


class _BinaryEncoder:
    """Batches as one binary COPY stream: the header before the first, a trailer at the end.

    Made for the first batch's schema; a later batch of another schema (files of
    one schema group always share it) is refused rather than sent misencoded.
    """

    def __init__(self) -> None:
        self._schema: pa.Schema | None = None
        self._encoder: Any = None

    def __call__(self, batch: pa.RecordBatch) -> bytes:
        schema = batch.schema.remove_metadata()
        if self._encoder is None:
            self._schema, self._encoder = schema, ArrowToPostgresBinaryEncoder(schema)
            return bytes(self._encoder.write_header()) + bytes(self._encoder.write_batch(batch))
        if not schema.equals(self._schema):
            raise LoadError(f"staged files of one load differ in their Arrow schema: {schema}")
        return bytes(self._encoder.write_batch(batch))

    def trailer(self) -> bytes:
        """The stream's end (a header first when there were no batches)."""
        if self._encoder is None:  # no rows: the header and trailer alone (any schema)
            empty = ArrowToPostgresBinaryEncoder(pa.schema([]))
            return bytes(empty.write_header()) + bytes(empty.finish())
        return bytes(self._encoder.finish())


def _batches(stage: Stage, ref: StagedFileRef) -> Iterator[pa.RecordBatch]:
    """The file's record batches; a damaged page is the file's corruption, not the load's.

    Every page's CRC is verified (the backup writes them), and the whole file's
    SHA-256 against the one recorded when it was staged.
    """
    try:
        source = pq.ParquetFile(_open(stage, ref), page_checksum_verification=True)
        yield from source.iter_batches(batch_size=_BATCH_ROWS)
    except (PermissionError, FileNotFoundError) as exc:
        raise StageError(f"cannot read staged file {ref.uri}: {first_line(exc)}") from None
    except (pa.ArrowException, OSError) as exc:
        raise CorruptStagedFile(ref.uri, f"unreadable data: {first_line(exc)}") from None


def _open(stage: Stage, ref: StagedFileRef) -> pa.BufferReader:
    """The file's bytes, once their SHA-256 is the one recorded when it was staged."""
    if isinstance(stage, LocalStage):
        with open(stage.uri(ref.key), "rb") as handle:
            data = handle.read()
    else:
        found = stage.get_bytes(ref.key)
        if found is None:
            raise StageError(f"staged file {ref.uri} disappeared before it was loaded")
        data = found
    if ref.sha256 is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
        raise CorruptStagedFile(ref.uri, "its SHA-256 is not the one recorded when it was staged")
    return pa.BufferReader(data)


def _csv_ready(batch: pa.RecordBatch, json_columns: frozenset[str]) -> pa.RecordBatch:
    """Binary columns as PostgreSQL's ``\\x`` hex text (Arrow's CSV writer has no binary),
    JSON without the ``\\u0000`` escape JSONB refuses (:mod:`src.core.json_text`)."""
    arrays = []
    for array, fld in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_binary(fld.type):
            hexed = [None if v is None else "\\x" + v.hex() for v in array.to_pylist()]
            array = pa.array(hexed, pa.string())
        elif fld.name in json_columns:
            array = strip_json_nul_escapes(array)
        arrays.append(array)
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(arrays, names=names)
