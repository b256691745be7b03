"""``null_cursor: include``: the rows no cursor can reach, read by primary key every run.

A row whose cursor column is NULL is never ``> last`` nor ``<= hi``, so the
cursor walk never reads it. With ``include`` each run ends with a pass over
exactly those rows, ``WHERE cursor IS NULL`` in primary-key order: their
changes arrive with the next run, and the merge by key absorbs the rows that
did not change. A row whose cursor becomes NULL is read by the next pass; one
whose cursor becomes a value is read by the cursor walk (at once when the value
is above the watermark; a value below it is a late commit, for
``lookback_seconds`` and ``verify``). The pass costs a read of the NULL-cursor
rows per run; the run report counts them (``null_cursor_rows``).

A pass cut short by a cap keeps its place in ``metadata.null_pass`` and the
next run resumes it after its own cursor walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from src.backup.keyset import ChunkQuery, Position, Window
from src.backup.primary_key_pass import (
    decode_key_value,
    encode_key_value,
    key_order_query,
    last_key,
)
from src.backup.row_based import RowBasedBackupStrategy
from src.core.table_schema import TableSchema
from src.errors import ConfigError


@dataclass(frozen=True)
class NullPassPosition(Position):
    """A position of the NULL-cursor pass: the primary key of its last row (``key``)."""


class NullCursorPass:
    """The rows whose cursor column is NULL, in primary-key order (a chunk walker)."""

    kind = "null_pass"

    def __init__(self, strategy: RowBasedBackupStrategy) -> None:
        self.base = strategy
        self.schema = strategy.schema
        self.column = strategy.ts_col or strategy.id_col or ""
        self.key_cols = list(strategy.primary_key)
        if not self.key_cols:
            raise ConfigError(
                f"table {self.schema.qualified_name}: null_cursor: include reads the rows whose "
                f"{self.column} is NULL by primary key, and the table has none; set "
                "primary_key to a unique key, or null_cursor to error or exclude"
            )

    def with_schema(self, schema: TableSchema) -> NullCursorPass:
        """The same pass over ``schema`` (same columns, another projection)."""
        return NullCursorPass(self.base.with_schema(schema))

    def chunk_query(self, pos: Position, window: Window, limit: int) -> ChunkQuery:
        """``WHERE cursor IS NULL AND pk > last ORDER BY pk LIMIT n`` (no window applies)."""
        null = f"{self.base._col(self.column)} IS NULL"
        return key_order_query(self.base, null, [], pos, limit)

    def position_after(self, batch: pa.RecordBatch, pos: Position) -> Position:
        """The primary key of the batch's last row."""
        return NullPassPosition(None, last_key(self.base, batch)) if batch.num_rows else pos

    def stored(self, pos: Position) -> dict[str, Any]:
        """The pass's place for ``metadata.null_pass``."""
        return {"last_pk": [encode_key_value(v) for v in pos.key]}

    def resume_position(self, stored: dict[str, Any] | None) -> Position:
        """Where a stored pass resumes (from the first NULL-cursor row when none is stored)."""
        last = (stored or {}).get("last_pk")
        if not last:
            return NullPassPosition()
        cols = [self.schema.column(c) for c in self.key_cols]
        values = tuple(decode_key_value(v, c) for v, c in zip(last, cols, strict=False))
        return NullPassPosition(None, values)
