"""Write Arrow batches into Parquet files and upload them, off the reading thread.

The reader (main thread) hands batches to :class:`ParquetSink`, which encodes
them into a local temporary Parquet file **in the caller's thread**; when the
caller closes a file, one worker thread uploads it, verifies the uploaded size
and calls ``on_uploaded`` — in file order, from that one thread, so watermark
updates never race. Uploading the previous file overlaps reading and encoding
the next one; the queue of closed files is bounded, so disk and memory stay
bounded whatever the table size.

Why encode in the caller's thread: connectorx holds the GIL while it produces
a batch, so an encoder thread only ran between batches (its ``write_batch``
calls took 4.5 s of wall time for 2M rows, 0.4 s inline) while up to four
batches waited in its queue. Inline, the run takes as long (connectorx's Rust
producer keeps fetching while Arrow encodes, and the Parquet writer releases
the GIL) and the backup's peak RSS drops from 268-310 MB to 231-238 MB on the
SPEC §10.1 table (2M rows; docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from src.core.stage import Stage
from src.core.table_schema import POSITION_METADATA_KEY, SCHEMA_METADATA_KEY
from src.errors import StageError
from src.utils.faults import fault_point
from src.utils.logging_setup import get_logger
from src.utils.memory import release_memory
from src.utils.scratch import scratch_dir, sweep_dead_runs

log = get_logger("backup")

_QUEUE_DEPTH = 2  # closed files waiting for upload (each one is on local disk)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class StagedFile:
    """A file that is uploaded and verified."""

    key: str
    uri: str
    rows: int
    bytes: int
    position: Any  # the reader's position after the file's last row
    sha256: str  # of the file as written, before the upload
    etag: str | None  # S3's ETag of the upload


class ParquetSink:
    """Context manager: ``write(batch)``, ``close_file(key, position)``, repeat."""

    def __init__(
        self,
        stage: Stage,
        schema: pa.Schema,
        *,
        compression: str,
        schema_json: str,
        on_uploaded: Callable[[StagedFile], None],
        footer_position: Callable[[Any], str] | None = None,
        statistics_columns: Sequence[str] = (),
    ) -> None:
        """``statistics_columns``: the columns whose min/max each row group records."""
        self.stage = stage
        self.statistics_columns = list(statistics_columns)
        self.footer_position = footer_position
        self.schema = schema.with_metadata({SCHEMA_METADATA_KEY: schema_json.encode()})
        self.compression = None if compression == "none" else compression
        self.on_uploaded = on_uploaded
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="parquet-upload", daemon=True)
        swept = sweep_dead_runs()  # what killed runs left behind
        if swept:
            log.info("removed scratch directories of dead runs", directories=swept)
        self._tmpdir = scratch_dir()
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._files = 0
        self.rows_in_file = 0

    # --------------------------------------------------------------- caller
    def __enter__(self) -> ParquetSink:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Files closed before a failure are still uploaded (their rows are whole);
            # the open one is abandoned.
            self._put(("stop", None), check=False)
            self._thread.join()
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self._tmpdir.cleanup()
            release_memory()
        if exc is None:
            self._raise_if_failed()

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch to the current file (encoded now, in this thread)."""
        if not batch.num_rows:
            return
        self._raise_if_failed()
        if self._writer is None:
            self._files += 1
            self._path = os.path.join(self._tmpdir.name, f"{self._files:06d}.parquet")
            self._writer = self._open(self._path)
        self._writer.write_batch(batch)
        self.rows_in_file += batch.num_rows

    def close_file(self, key: str, position: Any) -> None:
        """Finish the current file as ``key``; it is uploaded in the background."""
        if self._writer is None or not self.rows_in_file:
            return
        if self.footer_position is not None:
            meta = {POSITION_METADATA_KEY: self.footer_position(position).encode()}
            self._writer.add_key_value_metadata(meta)
        self._writer.close()
        self._writer = None
        self._put(("upload", (self._path, key, self.rows_in_file, position)))
        self.rows_in_file = 0

    def _put(self, item: tuple[str, Any], *, check: bool = True) -> None:
        while True:
            if check:
                self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    return
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            kind, value = self._queue.get()
            if kind == "stop":
                break
            if self._error is not None:
                continue  # drain: the caller raises on its next call
            try:
                self._upload(*value)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc

    def _open(self, path: str) -> pq.ParquetWriter:
        # Microsecond timestamps: Redshift misreads nanoseconds (FIELD_NOTES).
        return pq.ParquetWriter(
            path,
            self.schema,
            compression=self.compression,
            coerce_timestamps="us",
            allow_truncated_timestamps=False,
            use_dictionary=False,  # measured: half the write time, smaller files (§10 table)
            # Each page's CRC: a flipped byte in a data page fails the load's read instead of
            # loading another value (the load verifies them; FIELD_NOTES, staged-file integrity).
            write_page_checksum=True,
            # Min/max of the cursor and key columns only (what a reader looking for a row
            # uses): those of the text columns were a quarter of the encoding, 0.40 ->
            # 0.33 s for the 2M rows of the §10 table.
            write_statistics=self.statistics_columns or False,
        )

    def _upload(self, path: str, key: str, rows: int, position: Any) -> None:
        size = os.path.getsize(path)
        sha256 = file_sha256(path)
        etag = self.stage.put_file(key, path)
        uploaded = self.stage.size(key)
        if uploaded != size:
            raise StageError(
                f"upload of {self.stage.uri(key)} did not verify: "
                f"{uploaded} bytes stored, {size} written"
            )
        os.unlink(path)
        fault_point("after_upload")
        self.on_uploaded(StagedFile(key, self.stage.uri(key), rows, size, position, sha256, etag))
