"""Keysets: a walk's position, its window and queries, and key values as the watermark holds them.

Values come from Arrow batches or PyMySQL and go back as bound SQL
parameters; JSON has no datetime, decimal or bytes, so each is written as
text and read back by the column's kind (``last_id``, ``last_key``,
``initial_pass``). The order of a keyset is always MySQL's own (the column's
collation, PAD SPACE, accents): positions are compared in SQL, never re-sorted
in Python.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from src.core.row_compare import exact_value
from src.core.table_schema import ColumnSpec

__all__ = [
    "ChunkQuery",
    "Position",
    "Window",
    "as_datetime",
    "decode_key_value",
    "encode_key_value",
    "exact_value",
    "inexact_key",
]


@dataclass(frozen=True)
class Position:
    """Where the next chunk starts: after ``(ts, *key)``; ``ts_inclusive`` on a lookback start.

    ``key`` holds the values of the strategy's key columns (the id column, then
    every other primary-key column), or a prefix of them when only part is
    known (an operator's ``watermark set --id``): then rows equal to that prefix
    are read again rather than skipped.
    """

    ts: Any = None
    key: tuple[Any, ...] = ()
    ts_inclusive: bool = False

    @property
    def id(self) -> Any:
        """The first key column's value (the watermark's ``last_id``)."""
        return self.key[0] if self.key else None

    @property
    def empty(self) -> bool:
        """True before the first row of the table."""
        return self.ts is None and not self.key


@dataclass(frozen=True)
class Window:
    """The run's fixed upper bound (``MAX(cursor)`` at start) and NULL-cursor count."""

    hi_ts: Any
    hi_id: Any
    null_cursor_rows: int
    id_past_max: bool = False  # the start's id lies past MAX(id), in MySQL's order
    now: Any = None  # the source's clock as the cursor column reads it (None: unknown)


@dataclass(frozen=True)
class ChunkQuery:
    """One SELECT as a pyformat template plus its parameters."""

    sql: str
    params: tuple[Any, ...]


def as_datetime(value: Any) -> Any:
    """A DATE as midnight of its day, so it compares with DATETIME values."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def encode_key_value(value: Any) -> Any:
    """A key value as JSON holds it (inverse: :func:`decode_key_value`)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def decode_key_value(value: Any, col: ColumnSpec) -> Any:
    """A JSON key value back to what the column's SQL comparison binds.

    Typed by the column, not by the JSON: an operator's ``--id 123`` on a
    VARCHAR key is the text ``'123'`` (a number would make MySQL compare as
    DOUBLE), and ``"42"`` on an integer key is 42.
    """
    if value is None:
        return None
    kind = col.kind
    if kind in ("integer", "bit_bool", "bit_int"):
        return int(value)
    if kind in ("datetime", "timestamp"):
        return dt.datetime.fromisoformat(str(value))
    if kind == "date":
        return dt.date.fromisoformat(str(value)[:10])
    if kind in ("decimal", "unsigned_bigint", "decimal_text"):
        return exact_value(decimal.Decimal(str(value)))
    if kind == "binary":
        return bytes.fromhex(value) if isinstance(value, str) else bytes(value)
    if kind in ("float", "double"):
        return float(value)
    return str(value)


def inexact_key(col: ColumnSpec) -> str | None:
    """Why a keyset over ``col`` cannot resume exactly; None when it can.

    A keyset query sorts with ``ORDER BY col`` and continues with ``col > value``;
    both must follow one order. ENUM and SET sort by their index but compare as
    text; GEOMETRY sorts by its binary form but is read as WKT; MySQL's JSON type
    compares as JSON.
    """
    if col.enum_max_bytes is not None:
        return f"{col.data_type.upper()} sorts by its definition order but compares as text"
    if col.select_as == "wkt":
        return "a geometry sorts by its binary form, not by the WKT text that is read"
    if col.is_json:
        return "a JSON value has no order a keyset can continue from"
    return None
