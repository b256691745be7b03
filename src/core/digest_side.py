"""One side of a ``verify`` comparison as SQL: what both databases run, in one place.

Each side supplies its quoted names, its row-hash expression and three ways
to run a statement (:class:`SqlDigestSide`); the statements are the same on
MySQL, PostgreSQL and Redshift. Both drivers take ``%s`` parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from src.core.row_compare import DigestPlan, Range, RowDigest, comparable_key, same_order
from src.core.table_schema import ColumnSpec

_LOOKUP_BATCH = 500


@dataclass(frozen=True)
class DigestSql:
    """The quoted pieces of one side's statements."""

    table: str
    keys: tuple[str, ...]  # quoted key columns, first one is bisected
    hash_sql: str  # the row hash, a BIGINT-sized integer
    order: str  # ORDER BY list: the key, text keys in codepoint order
    fetched: tuple[str, ...] = ()  # columns compared in Python
    scope_columns: tuple[str, ...] = ()  # the scope's keyset columns, quoted
    extra: str = ""  # " AND (additional_where)", ``%`` doubled
    # Whether this database orders a column as MySQL does (text: only MySQL itself).
    ordered: Callable[[ColumnSpec], bool] = same_order


class SqlDigestSide(ABC):
    """:class:`src.core.row_compare.DigestSide` over SQL, for any DB-API connection."""

    def __init__(self, sql: DigestSql, plan: DigestPlan) -> None:
        self.sql = sql
        self.plan = plan

    @abstractmethod
    def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
        """The first row of a statement."""

    @abstractmethod
    def lookup(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of a small result, on a second connection: a stream may be open."""

    @abstractmethod
    def stream(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """The rows of a large result, without holding them all."""

    def plain(self, value: Any) -> Any:
        """A key value as Python compares it (drivers differ: bytea as memoryview)."""
        return bytes(value) if isinstance(value, memoryview) else value

    # ---------------------------------------------------------------- SQL
    def _scope(self) -> tuple[str, list[Any]]:
        return self.plan.scope.predicate(self.sql.scope_columns, self.sql.ordered)

    @property
    def exact_scope(self) -> bool:
        """Whether this side selects exactly MySQL's rows in scope (not a wider set)."""
        return self.plan.scope.exact(self.sql.ordered)

    def _where(self, rng: Range) -> tuple[str, list[Any]]:
        sql, params = self._scope()
        if rng.lo is not None:
            sql, params = f"{sql} AND {self.sql.keys[0]} >= %s", [*params, rng.lo]
        if rng.hi is not None:
            sql, params = f"{sql} AND {self.sql.keys[0]} < %s", [*params, rng.hi]
        return sql + self.sql.extra, params

    def _key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return comparable_key([self.plain(v) for v in values])

    # ----------------------------------------------------------- protocol
    def row_count(self, rng: Range | None = None) -> int:
        """The rows in scope (in ``rng`` when given): the counts-only comparison."""
        where, params = self._where(rng or Range())
        return int(
            self.fetch_one(f"SELECT COUNT(*) FROM {self.sql.table} WHERE {where}", params)[0]
        )

    def newer_count(self) -> int:
        """Rows past the scope's position (not synced yet); 0 without a position."""
        sql, params = self.plan.scope.newer(self.sql.scope_columns)
        table = self.sql.table
        return int(
            self.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {sql}{self.sql.extra}", params)[0]
        )

    def null_count(self) -> int:
        """Rows whose cursor column is NULL."""
        column = self.sql.scope_columns[0]
        sql = f"SELECT COUNT(*) FROM {self.sql.table} WHERE {column} IS NULL{self.sql.extra}"
        return int(self.fetch_one(sql, [])[0])

    def keys(self) -> Iterator[tuple[Any, ...]]:
        """The keys of the rows in scope, streamed (in no particular order)."""
        where, params = self._where(Range())
        sql = f"SELECT {', '.join(self.sql.keys)} FROM {self.sql.table} WHERE {where}"
        for row in self.stream(sql, params):
            yield self._key(row)

    def key_bounds(self) -> tuple[Any, Any]:
        """MIN and MAX of the first key column among the rows in scope."""
        _, lo, hi = self._bounds("0")  # no COUNT: an index finds MIN and MAX alone
        return lo, hi

    def count_and_bounds(self) -> tuple[int, Any, Any]:
        """The rows in scope, and MIN and MAX of their first key column (one query)."""
        return self._bounds("COUNT(*)")

    def _bounds(self, count: str) -> tuple[int, Any, Any]:
        where, params = self._where(Range())
        k = self.sql.keys[0]
        sql = f"SELECT {count}, MIN({k}), MAX({k}) FROM {self.sql.table} WHERE {where}"
        rows, lo, hi = self.fetch_one(sql, params)
        return (int(rows), *self._key((lo, hi)))

    def checksum(self, rng: Range) -> tuple[int, int]:
        """``(COUNT(*), SUM(row hash))`` of the rows in scope in ``rng``."""
        where, params = self._where(rng)
        sql = f"SELECT COUNT(*), SUM({self.sql.hash_sql}) FROM {self.sql.table} WHERE {where}"
        count, total = self.fetch_one(sql, params)
        return int(count), int(total or 0)

    def digests(self, rng: Range) -> Iterator[RowDigest]:
        """The rows in scope in ``rng``, ordered by key, streamed."""
        where, params = self._where(rng)
        cols = ", ".join([*self.sql.keys, self.sql.hash_sql, *self.sql.fetched])
        sql = f"SELECT {cols} FROM {self.sql.table} WHERE {where} ORDER BY {self.sql.order}"
        width = len(self.sql.keys)
        for row in self.stream(sql, params):
            yield RowDigest(self._key(row[:width]), int(row[width]), tuple(row[width + 1 :]))

    def present(self, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], bool]:
        """Which of ``keys`` exist at all: key → whether its cursor is in scope."""
        scope, scope_params = self._scope()
        match = "(" + " AND ".join(f"{k} = %s" for k in self.sql.keys) + ")"
        found: dict[tuple[Any, ...], bool] = {}
        for start in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[start : start + _LOOKUP_BATCH]
            sql = (
                f"SELECT {', '.join(self.sql.keys)}, CASE WHEN {scope} THEN 1 ELSE 0 END "
                f"FROM {self.sql.table} WHERE ({' OR '.join([match] * len(batch))})"
                f"{self.sql.extra}"
            )
            params = [*scope_params, *(v for key in batch for v in key)]
            for row in self.lookup(sql, params):
                found[self._key(row[:-1])] = bool(row[-1])
        return found
