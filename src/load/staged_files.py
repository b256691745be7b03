"""Staged Parquet files as the load sees them: footers, existence, schema groups.

The load stage needs each file's row count and the table schema the backup
stage embedded in it; both live in the Parquet footer, so only the tail of
each object is fetched (one ranged GET on S3), however large the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from src.core.simple_watermark_manager import FileCheck
from src.core.stage import Stage
from src.core.table_schema import POSITION_METADATA_KEY, SCHEMA_METADATA_KEY, TableSchema
from src.errors import CorruptStagedFile, first_line
from src.load.targets.base import StagedFileRef

_TAIL = 64 * 1024


@dataclass(frozen=True)
class Footer:
    """Row count and embedded table schema of one staged file."""

    num_rows: int
    table_schema: TableSchema
    position: dict[str, Any] | None = None  # the watermark position once recorded


def read_footer(stage: Stage, key: str, size: int) -> Footer:
    """Parse the footer of the Parquet object ``key`` (``size`` bytes long).

    A file that is not a whole Parquet file written by this tool raises
    :class:`CorruptStagedFile` (the load quarantines it).
    """
    uri = stage.uri(key)
    if size < 12:
        raise CorruptStagedFile(uri, f"{size} bytes: too small to be Parquet")
    tail = stage.get_range(key, max(0, size - _TAIL), size)
    if tail[-4:] != b"PAR1":
        raise CorruptStagedFile(uri, "no Parquet footer: truncated or not Parquet")
    (footer_len,) = struct.unpack("<I", tail[-8:-4])
    if footer_len + 8 > size:
        raise CorruptStagedFile(uri, f"its footer claims {footer_len} bytes of {size}")
    if footer_len + 8 > len(tail):
        tail = stage.get_range(key, size - footer_len - 8, size)
    try:
        meta = pq.read_metadata(pa.PythonFile(_TailFile(tail, size), mode="r"))
        raw = (meta.metadata or {}).get(SCHEMA_METADATA_KEY)
        if raw is None:
            raise CorruptStagedFile(uri, "it carries no table schema: not written by this tool")
        position = (meta.metadata or {}).get(POSITION_METADATA_KEY)
        return Footer(
            meta.num_rows,
            TableSchema.from_json(raw),
            json.loads(position) if position is not None else None,
        )
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptStagedFile(uri, f"unreadable footer: {first_line(exc)}") from None


@dataclass
class StagedCheck:
    """The table's staged files as one listing of its prefix found them."""

    refs: list[tuple[StagedFileRef, TableSchema]]  # readable: rows and schema from the footer
    corrupt: list[CorruptStagedFile]  # unreadable footers, in file order
    listed: dict[str, int]  # key -> size of every object under the prefix


def verify_staged(
    stage: Stage, prefix: str, uris: list[str], checks: dict[str, FileCheck]
) -> StagedCheck:
    """Every file exists under the table's exact ``prefix``; its footer gives rows and schema.

    A file missing, changed since it was staged (S3's ETag no longer the one its
    upload got, in ``checks``) or unreadable is returned in ``corrupt`` (all of
    them, from the one listing) for the load to quarantine: the others load, and
    ``verify --repair`` re-extracts its rows. Each readable file's reference
    carries its recorded SHA-256, which the reader of its bytes compares.
    """
    objects = {obj.key: obj for obj in stage.list(prefix)}
    check = StagedCheck([], [], {key: obj.size for key, obj in objects.items()})
    for uri in uris:
        key = stage.key_of(uri)
        found, recorded = objects.get(key), checks.get(uri)
        if found is None:
            check.corrupt.append(CorruptStagedFile(uri, f"missing from {stage.uri(prefix)}"))
            continue
        if recorded and recorded.etag and found.etag and found.etag != recorded.etag:
            changed = f"changed since it was staged (ETag {found.etag}, staged {recorded.etag})"
            check.corrupt.append(CorruptStagedFile(uri, changed))
            continue
        try:
            footer = read_footer(stage, key, found.size)
        except CorruptStagedFile as exc:
            check.corrupt.append(exc)
            continue
        sha256 = recorded.sha256 if recorded else None
        ref = StagedFileRef(uri, key, found.size, footer.num_rows, sha256)
        check.refs.append((ref, footer.table_schema))
    return check


def position_from(
    stage: Stage, listed: dict[str, int], pending: list[str], uri: str
) -> dict[str, Any] | None:
    """The footer position of the first readable file from ``uri`` on (a quarantine's bound)."""
    for later in pending[pending.index(uri) :]:
        key = stage.key_of(later)
        with contextlib.suppress(CorruptStagedFile):
            if key in listed and (pos := read_footer(stage, key, listed[key]).position):
                return pos
    return None


def group_by_schema(
    verified: list[tuple[StagedFileRef, TableSchema]],
) -> list[tuple[TableSchema, list[StagedFileRef]]]:
    """Consecutive files with the same embedded table schema load together."""
    groups: list[tuple[TableSchema, list[StagedFileRef]]] = []
    for ref, schema in verified:
        if not groups or groups[-1][0] != schema:
            groups.append((schema, []))
        groups[-1][1].append(ref)
    return groups


class _TailFile(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only the tail is known."""

    def __init__(self, tail: bytes, size: int) -> None:
        self._tail = tail
        self._size = size
        self._start = size - len(tail)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos < self._start:
            raise OSError("only the footer of this file was fetched")
        chunk = self._tail[self._pos - self._start : self._pos - self._start + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)
