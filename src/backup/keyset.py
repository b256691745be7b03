"""Keyset values as the watermark JSON holds them (``last_key``, ``initial_pass``).

Values come from Arrow batches or PyMySQL and go back as bound SQL
parameters; JSON has no datetime, decimal or bytes, so each is written as
text and read back by the column's kind.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from src.core.row_compare import exact_value
from src.core.table_schema import ColumnSpec

__all__ = ["decode_key_value", "encode_key_value", "exact_value"]


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
    """A JSON key value back to what the column's SQL comparison binds."""
    if value is None or not isinstance(value, str):
        return value
    if col.kind in ("datetime", "timestamp"):
        return dt.datetime.fromisoformat(value)
    if col.kind == "date":
        return dt.date.fromisoformat(value)
    if col.kind in ("decimal", "unsigned_bigint"):
        return exact_value(decimal.Decimal(value))
    if col.kind == "binary":
        return bytes.fromhex(value)
    return value
