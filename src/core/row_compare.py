"""What ``verify`` compares, shared by its MySQL side and its target side.

Both databases compute, in SQL, the same text for a row and the same 60-bit
integer from its MD5 (the form data-diff and pt-table-checksum use): a
segment of the key range is equal when the two sides agree on ``COUNT(*)``
and ``SUM(row hash)``. The MySQL side lives in :mod:`src.backup.source_digest`,
the target side in :mod:`src.load.target_digest`; both build their row text
from a :class:`DigestPlan` so they hash the same columns in the same order.

The row text: every compared column as ``'v' || <normalised text>``, or ``'n'``
for NULL, joined with :data:`SEPARATOR`. The normalisation per column kind is
documented in docs/verify.md.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from src.core.table_schema import ColumnSpec, TypePolicy

SEPARATOR = "|"
NULL_MARK = "n"
VALUE_MARK = "v"
# MD5 is 32 hex digits; the last 15 (60 bits) fit a signed BIGINT on every side.
HASH_HEX_DIGITS = 15
HASH_FROM = 32 - HASH_HEX_DIGITS + 1  # SUBSTRING start, 1-based
FLOAT_DIGITS = 12  # FLOAT/DOUBLE are compared at 12 significant digits
# A value longer than Redshift's 65535-byte VARCHAR is truncated by the backup under
# ``oversize_text: truncate``: such a column is compared on its first 16383 characters
# (16383 × 4 bytes fit in the 65535 kept), the same on both sides.
TRUNCATED_COMPARE_CHARS = 16383
_VARCHAR_LIMIT_BYTES = 65535
# Key kinds whose order is the same in MySQL, PostgreSQL, Redshift and Python, and
# whose range can be split by arithmetic: the key range is bisected on them.
BISECT_KINDS = frozenset({"integer", "unsigned_bigint"})
# Kinds every target orders as MySQL does (text follows each database's collation,
# bytes are compared as bytea on PostgreSQL but not on Redshift).
SAME_ORDER_KINDS = frozenset(
    {"integer", "unsigned_bigint", "decimal", "float", "double", "date", "datetime", "timestamp"}
)


def same_order(col: ColumnSpec) -> bool:
    """Whether every target orders ``col``'s values as MySQL does."""
    return col.kind in SAME_ORDER_KINDS


def exact_value(value: Any) -> Any:
    """An integral decimal (BIGINT UNSIGNED, NUMERIC(20,0)) as an int; others unchanged."""
    if not isinstance(value, decimal.Decimal):
        return value
    return int(value) if value == value.to_integral_value() else value


def comparable_key(values: Sequence[Any]) -> tuple[Any, ...]:
    """A key as both sides' drivers return it, made comparable (Decimal 5 == int 5)."""
    return tuple(exact_value(v) for v in values)


def canonical_json(text: str | None) -> str | None:
    """JSON text in one canonical form; the text itself if not JSON.

    Keys sorted, no spaces; numbers as the decimal values they write
    (``1e308``, ``1.50`` and PostgreSQL's JSONB rendering of them, 309 digits
    and ``1.50``, compare equal); U+0000 left out of strings (JSONB cannot hold
    it, so a PostgreSQL load drops it: :mod:`src.core.json_text`).
    """
    if text is None:
        return None
    try:
        value = json.loads(text, parse_float=decimal.Decimal, parse_int=decimal.Decimal)
    except ValueError:
        return text
    return _canonical(value)


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted((_canonical(str(k)), _canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, decimal.Decimal):
        return str(value.normalize()) if value else "0"
    if isinstance(value, str):
        return json.dumps(value.replace("\x00", ""), ensure_ascii=False)
    return json.dumps(value)  # true, false, null


def compared_prefix(col: ColumnSpec, policy: TypePolicy) -> int | None:
    """How many leading characters of a text column are compared; None: all of it."""
    if col.kind != "string" or policy.oversize_text != "truncate" or not policy.max_text_bytes:
        return None
    if col.max_value_bytes is not None and col.max_value_bytes <= _VARCHAR_LIMIT_BYTES:
        return None
    return TRUNCATED_COMPARE_CHARS


@dataclass(frozen=True)
class Scope:
    """Which rows are compared: those at or below a keyset position.

    ``columns`` is the keyset (the cursor column, then the key columns after
    it; empty: every row, as for full_sync) and ``bound`` the position's values,
    a prefix of ``columns`` when only part of it is known. A row is in scope
    when its ``(c1, c2, …)`` is at or below ``bound`` (strictly below when not
    ``inclusive``, and always for a prefix: rows equal to a prefix may not be
    synced yet); above ``lower`` on the first column when set (one sync's
    window); and, with ``nulls``, when its first column is NULL
    (``null_cursor: include``).
    """

    columns: tuple[ColumnSpec, ...] = ()
    bound: tuple[Any, ...] = ()
    inclusive: bool = True
    lower: Any = None
    lower_inclusive: bool = True
    nulls: bool = False

    @property
    def column(self) -> ColumnSpec | None:
        """The cursor column (None: every row is in scope)."""
        return self.columns[0] if self.columns else None

    def compared_prefix(self, ordered: Callable[[ColumnSpec], bool]) -> int:
        """How many bound values a database that orders ``ordered`` columns as MySQL does uses."""
        for n, col in enumerate(self.columns[: len(self.bound)]):
            if not ordered(col):
                return n
        return len(self.bound)

    def exact(self, ordered: Callable[[ColumnSpec], bool]) -> bool:
        """Whether such a database selects exactly MySQL's rows (not a wider set)."""
        return self.compared_prefix(ordered) == len(self.bound) and (
            self.lower is None or not self.columns or ordered(self.columns[0])
        )

    def predicate(
        self, names: Sequence[str], ordered: Callable[[ColumnSpec], bool]
    ) -> tuple[str, list[Any]]:
        """The scope as SQL over ``names`` (the quoted ``columns``), and its parameters.

        ``ordered(col)``: whether the database orders ``col`` as MySQL does (a
        target orders text by its own collation). The position is compared on the
        leading columns it orders alike and, past them, not at all: the scope is
        then wider than MySQL's, and a row only it holds is looked up on the
        other side (not synced yet), never called a difference.
        """
        if not self.columns:
            return "1=1", []
        n = self.compared_prefix(ordered)
        inclusive = n < len(self.bound) or (self.inclusive and n == len(self.columns))
        sql, params = "1=1", []
        if n:
            sql, params = f"{names[n - 1]} {'<=' if inclusive else '<'} %s", [self.bound[n - 1]]
        for i in range(n - 2, -1, -1):
            sql = f"({names[i]} < %s OR ({names[i]} = %s AND {sql}))"
            params = [self.bound[i], self.bound[i], *params]
        if self.lower is not None and ordered(self.columns[0]):
            sql = f"{sql} AND {names[0]} {'>=' if self.lower_inclusive else '>'} %s"
            params.append(self.lower)
        if self.nulls:
            sql = f"({sql} OR {names[0]} IS NULL)"
        return f"({sql})", params

    def newer(self, names: Sequence[str]) -> tuple[str, list[Any]]:
        """Rows past the position, in MySQL's order (its complement, NULL cursors aside)."""
        n = len(self.bound)
        if not n:
            return "1=0", []
        inclusive = self.inclusive and n == len(self.columns)
        sql, params = f"{names[n - 1]} {'>' if inclusive else '>='} %s", [self.bound[n - 1]]
        for i in range(n - 2, -1, -1):
            sql = f"({names[i]} > %s OR ({names[i]} = %s AND {sql}))"
            params = [self.bound[i], self.bound[i], *params]
        return sql, params


@dataclass(frozen=True)
class DigestPlan:
    """The columns one table's comparison hashes, and its key.

    ``hashed`` are hashed in SQL on both sides; ``fetched`` (JSON on a
    PostgreSQL JSONB target, whose text JSONB rewrites) are fetched and
    compared in Python as canonical JSON, which makes every segment a leaf.
    """

    key: tuple[ColumnSpec, ...]
    hashed: tuple[ColumnSpec, ...]
    fetched: tuple[ColumnSpec, ...] = ()
    scope: Scope = field(default_factory=Scope)
    policy: TypePolicy = field(default_factory=TypePolicy)
    # Decimal columns the target holds at a larger scale than MySQL's (a scale that
    # shrank at the source): target name → the scale both sides are compared at.
    scales: dict[str, int] = field(default_factory=dict)

    def scale(self, col: ColumnSpec) -> int:
        """The scale ``col`` (a decimal) is compared at."""
        return max(col.numeric_scale or 0, self.scales.get(col.target_name, 0))

    @property
    def bisectable(self) -> bool:
        """Whether the key range can be split into segments by arithmetic."""
        return bool(self.key) and self.key[0].kind in BISECT_KINDS and not self.fetched


@dataclass(frozen=True)
class Range:
    """Rows whose first key column lies in ``[lo, hi)``; ``None`` bounds are open."""

    lo: int | None = None
    hi: int | None = None

    def split(self, parts: int) -> list[Range]:
        """Up to ``parts`` adjacent sub-ranges covering this one (bounds must be set)."""
        assert self.lo is not None and self.hi is not None
        size = max(1, -(-(self.hi - self.lo) // parts))
        return [Range(lo, min(lo + size, self.hi)) for lo in range(self.lo, self.hi, size)]


@dataclass(frozen=True, slots=True)
class RowDigest:
    """One row as a side returns it: its key, its hash, and the Python-compared values."""

    key: tuple[Any, ...]
    hash: int
    fetched: tuple[Any, ...] = ()


class DigestSide(Protocol):
    """One database's half of a comparison (each side holds its own connection)."""

    def key_bounds(self) -> tuple[Any, Any]:
        """MIN and MAX of the first key column among the rows in scope."""

    def checksum(self, rng: Range) -> tuple[int, int]:
        """``(COUNT(*), SUM(row hash))`` of the rows in scope in ``rng``."""

    def digests(self, rng: Range) -> Iterator[RowDigest]:
        """Every row in scope in ``rng``, ordered by key (codepoint order for text)."""

    def present(self, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], bool]:
        """Which of ``keys`` exist at all (in scope or not): key → in scope."""
