"""One JSON watermark per (source table, target), kept in the stage (SPEC §8).

The document records both stages' progress: where the next backup starts,
which staged files await loading and which are loaded. Writes replace the
whole document atomically (S3 PUT; local stage: temp file, fsync, rename).
A document that cannot be parsed is never treated as empty: the run stops
with a :class:`DataError` that says how to repair it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from src.core.stage import Stage
from src.errors import DataError, first_line, step
from src.utils.logging_setup import get_logger

log = get_logger("watermark")

CURRENT_VERSION = "2.1"
# The newest loaded files the document lists; older ones are counted, not named: the
# target's ledger holds every loaded file, and a document that grew with history made
# every run and every staged file slower (100,000 names: 10 MB rewritten per file).
PROCESSED_FILES_KEPT = 1000
# A key value as the document holds it: an integer, or the text of a string, decimal,
# date or time, or the hex of bytes (typed back by the key column's kind).
KeyValue = int | float | str


def utc_now_iso() -> str:
    """Now, UTC, ISO 8601 with offset (the format of every ``last_updated``)."""
    return dt.datetime.now(dt.UTC).isoformat()


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class _StageState(_State):
    """What both stages record: their status, last error and when."""

    status: str = "pending"
    error: str | None = None
    last_updated: str | None = None

    def finish(self, error: BaseException | None = None) -> None:
        """End the stage: ``success``, or ``failed`` with the error's text; stamped now."""
        self.status = "success" if error is None else "failed"
        self.error = None if error is None else (str(error) or type(error).__name__)
        self.last_updated = utc_now_iso()


class MySQLState(_StageState):
    """Progress of the backup stage."""

    last_timestamp: str | None = None
    last_id: KeyValue | None = None
    # The key columns after the id, when the keyset has more (a composite primary key).
    last_key: dict[str, Any] | None = None
    # The rows at last_timestamp may have changed since they were read: the run read them
    # before the source's clock had passed that value, or stopped among them. The next
    # run without a cap re-reads them (a merge table; src/backup/row_based.py).
    group_open: bool = False
    total_rows: int = 0
    last_session_rows: int = 0
    s3_files_created: int = 0
    last_session_files: int = 0
    execution_id: str | None = None


class RedshiftState(_StageState):
    """Progress of the load stage."""

    # schema.table the rows were loaded into (a changed target_name is then refused)
    target_table: str | None = None
    total_rows: int = 0
    last_session_rows: int = 0
    last_loaded_files: list[str] = Field(default_factory=list)


class WatermarkMetadata(_State):
    """Bookkeeping: creation time and manual overrides by operators."""

    created_at: str = Field(default_factory=utc_now_iso)
    manual_override: bool = False
    manual_set_time: str | None = None
    # A hybrid table's first run, read in primary-key order:
    # {"hi": <ts>, "last_pk": <key value, or a list of them for a composite key>}.
    initial_pass: dict[str, Any] | None = None
    # A null_cursor: include pass cut short by a cap: {"last_pk": [<key values>]}.
    null_pass: dict[str, Any] | None = None
    # Loaded files dropped from processed_s3_files (the oldest first), and the greatest
    # of their names: staged names sort by time, so an unlisted file up to it is loaded.
    loaded_files_forgotten: int = 0
    forgotten_through: str | None = None


class QuarantinedFile(_State):
    """A staged file the load could not read, set aside with what re-extracts its rows.

    ``below``: a backup position no row of the file is above (its own footer's,
    a later file's, or the watermark's); a ``verify --repair`` whose comparison
    covers it mends the rows and releases the entry.
    """

    file: str
    error: str
    quarantined_at: str = Field(default_factory=utc_now_iso)
    below: dict[str, Any] = Field(default_factory=dict)


class FileCheck(_State):
    """What a staged file was when it was staged: its SHA-256, and S3's ETag of it.

    The load compares before it trusts the file (the ETag against the listing,
    the digest against the bytes it reads): a file changed or damaged in the stage
    since is quarantined, not loaded.
    """

    sha256: str
    etag: str | None = None


class Watermark(_State):
    """The whole document (version 2.1)."""

    version: str = CURRENT_VERSION
    table_name: str
    target: str
    cdc_strategy: str
    mysql_state: MySQLState = Field(default_factory=MySQLState)
    redshift_state: RedshiftState = Field(default_factory=RedshiftState)
    backup_s3_files: list[str] = Field(default_factory=list)
    processed_s3_files: list[str] = Field(default_factory=list)
    # Not in SPEC §8's example: files set aside as unreadable (absent until one is).
    quarantined_s3_files: list[QuarantinedFile] = Field(default_factory=list)
    # Not in SPEC §8's example: the files awaiting load, as they were staged.
    file_checks: dict[str, FileCheck] = Field(default_factory=dict)
    metadata: WatermarkMetadata = Field(default_factory=WatermarkMetadata)

    def document(self) -> dict[str, Any]:
        """The JSON document (the fields beyond SPEC §8 only while they hold something)."""
        empty = {
            name for name in ("quarantined_s3_files", "file_checks") if not getattr(self, name)
        }
        return self.model_dump(mode="json", exclude=empty)

    def loaded_files(self) -> int:
        """Every loaded file: the listed ones and those the bounded list forgot."""
        return len(self.processed_s3_files) + self.metadata.loaded_files_forgotten

    def mark_processed(self, uris: list[str]) -> None:
        """Move ``uris`` from the staged list to the loaded one, in order, each once.

        Set look-ups: O(1) per file. The loaded list keeps the newest
        :data:`PROCESSED_FILES_KEPT`; the older ones are counted in ``metadata``.
        """
        done = set(uris)
        self.backup_s3_files = [u for u in self.backup_s3_files if u not in done]
        self.file_checks = {u: c for u, c in self.file_checks.items() if u not in done}
        known = set(self.processed_s3_files)
        self.processed_s3_files.extend(u for u in dict.fromkeys(uris) if u not in known)
        self.forget_oldest_loaded()

    def forget_oldest_loaded(self) -> None:
        """Bound ``processed_s3_files`` to the newest :data:`PROCESSED_FILES_KEPT` names."""
        excess = len(self.processed_s3_files) - PROCESSED_FILES_KEPT
        if excess <= 0:
            return
        forgotten = self.processed_s3_files[:excess]
        meta = self.metadata
        meta.loaded_files_forgotten += excess
        meta.forgotten_through = max([*forgotten, meta.forgotten_through or ""])
        self.processed_s3_files = self.processed_s3_files[excess:]

    def refresh_counts(self) -> None:
        """``s3_files_created``: staged + loaded files (SPEC §8), the forgotten ones included."""
        self.mysql_state.s3_files_created = len(self.backup_s3_files) + self.loaded_files()


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an old tool's v2.0 document to the 2.1 shape."""
    raw = dict(raw)
    if "processed_files" in raw and "processed_s3_files" not in raw:
        raw["processed_s3_files"] = raw.pop("processed_files")
    raw["version"] = CURRENT_VERSION
    return raw


class SimpleWatermarkManager:
    """Reads and writes one table's watermark document in the stage."""

    def __init__(
        self,
        stage: Stage,
        key: str,
        *,
        table_name: str,
        target: str,
        cdc_strategy: str,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.stage = stage
        self.key = key
        # Called before every write: the table lock's confirm(), which raises once
        # the lock is lost, so a run that lost it never writes the document again.
        self.guard = guard
        # The backup and the load of one table run share the document; while the
        # load runs alongside the extract (two threads), each change to it and its
        # write happen under this lock (:meth:`changing`), so neither stage's is lost.
        self.lock = threading.RLock()
        self._document: Watermark | None = None
        self._stored: bool | None = None  # whether the stage holds a document, once known
        self._identity = {"table_name": table_name, "target": target, "cdc_strategy": cdc_strategy}

    def check_guard(self) -> None:
        """Raise when the guard (the table's lock) says this run may not write."""
        if self.guard is not None:
            self.guard()

    def exists(self) -> bool:
        """True when a document is stored (known without a request once it was read)."""
        if self._stored is None:
            self._stored = self.stage.size(self.key) is not None
        return self._stored

    def read(self) -> Watermark:
        """The document, read from the stage once and then kept in memory.

        A fresh one when none is stored, never a guess. Both stages of a table
        run share this store, so the document is parsed once per run however
        long its file lists are; every write goes through :meth:`write`, which
        keeps the copy in memory current. :meth:`refresh` reads it again.
        """
        if self._document is None:
            self._document = self._load()
        return self._document

    def refresh(self) -> Watermark:
        """Read the stored document again (another process may have changed it)."""
        self._document = self._stored = None
        return self.read()

    def _load(self) -> Watermark:
        with step(f"reading the watermark of {self._identity['table_name']}"):
            data = self.stage.get_bytes(self.key)
        self._stored = data is not None
        if data is None:
            return Watermark(**self._identity)
        where = self.stage.uri(self.key)
        try:
            raw = json.loads(data.decode("utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            document = Watermark.model_validate(_migrate(raw))
        except (ValueError, UnicodeDecodeError, ValidationError) as exc:
            first = first_line(exc)
            raise DataError(
                f"watermark {where} cannot be parsed ({first}); nothing was changed. "
                f"Repair it with 'watermark reset -t {self._identity['table_name'].split(':')[-1]}'"
                " (the load ledger keeps loaded files from being loaded twice) "
                "or restore the document"
            ) from None
        document.forget_oldest_loaded()  # a document written before the list was bounded
        return document

    @contextmanager
    def changing(self) -> Iterator[Watermark]:
        """The document to change, written when the block ends (not when it raises).

        Read, change and write happen under :attr:`lock`: the one way either stage
        changes the document while the other may be running.
        """
        with self.lock:
            watermark = self.read()
            yield watermark
            self.write(watermark)

    def record_failure(
        self, stage: Literal["mysql_state", "redshift_state"], error: BaseException
    ) -> None:
        """Mark a stage ``failed`` with ``error``, on a failure path.

        A write that fails too (the stage down, the lock lost) is logged and not
        raised: the caller re-raises the run's own error, whose exit code is the one
        that says what went wrong.
        """
        try:
            with self.changing() as watermark:
                getattr(watermark, stage).finish(error)
        except Exception as exc:
            log.warning(
                "the watermark could not record the failure",
                failure=first_line(error),
                error=first_line(exc),
            )

    def write(self, watermark: Watermark) -> None:
        """Replace the stored document atomically (after the guard confirms the lock).

        Changes go through :meth:`changing`, which calls this under :attr:`lock`.
        """
        with self.lock:
            self.check_guard()
            watermark.refresh_counts()
            # Compact: an indent makes json use its pure-Python encoder, ~10x slower on a
            # document with 100,000 file names (`watermark get --json` prints it indented).
            body = json.dumps(watermark.document(), ensure_ascii=False, separators=(",", ":"))
            with step(f"writing the watermark of {self._identity['table_name']}"):
                self.stage.put_bytes(self.key, body.encode("utf-8"))
            self._document, self._stored = watermark, True
