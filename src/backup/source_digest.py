"""The MySQL half of ``verify``: row text, row hash and key lookups in MySQL's SQL.

Every value is normalised to the text the target side produces for the value
the load wrote (:mod:`src.core.row_compare` documents the row text; the
target side is :mod:`src.load.target_digest`):

- numbers as their decimal text (BIT as ``col + 0``, YEAR as its number);
- FLOAT/DOUBLE as ``<12 significant digits>e<exponent>``;
- DATE/DATETIME/TIMESTAMP through ``DATE_FORMAT`` at microseconds (the session
  is UTC, as for the backup), zero dates as NULL like the backup's default;
- strings converted to utf8mb4, NUL characters stripped as the backup strips them;
- binary as lowercase hex.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pymysql.cursors

from src.core.digest_side import DigestSql, SqlDigestSide
from src.core.row_compare import (
    FLOAT_DIGITS,
    HASH_FROM,
    NULL_MARK,
    SEPARATOR,
    VALUE_MARK,
    DigestPlan,
    compared_prefix,
)
from src.core.table_schema import ColumnSpec, TableSchema, TypePolicy
from src.utils.naming import quote_mysql

_FETCH_ROWS = 10_000


def mysql_text(col: ColumnSpec, policy: TypePolicy, scale: int | None = None) -> str:
    """The SQL text of one column's value as both sides normalise it (NULL stays NULL).

    ``scale``: a decimal's, when the target's is larger (the source's shrank).
    """
    c = quote_mysql(col.name)
    kind = col.kind
    if kind == "decimal" and scale is not None and scale > (col.numeric_scale or 0):
        return f"CAST(CAST({c} AS DECIMAL(65, {scale})) AS CHAR)"
    if kind in ("integer", "unsigned_bigint", "decimal", "decimal_text", "time"):
        return f"CAST({c} + 0 AS CHAR)" if col.data_type == "year" else f"CAST({c} AS CHAR)"
    if kind in ("bit_bool", "bit_int"):
        return f"CAST({c} + 0 AS CHAR)"
    if kind in ("float", "double"):
        return _float_text(f"CAST({c} AS DOUBLE)")
    if kind in ("date", "datetime", "timestamp"):
        fmt = "%%Y-%%m-%%d" if kind == "date" else "%%Y-%%m-%%d %%H:%%i:%%s.%%f"
        # A zero date, or a zero month or day, is NULL in the target (zero_dates: null).
        return (
            f"CASE WHEN MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0 THEN NULL "
            f"ELSE DATE_FORMAT({c}, '{fmt}') END"
        )
    if kind == "binary":
        return f"LOWER(HEX({c}))"
    base = {"wkt": f"ST_AsText({c})", "text": f"CAST({c} AS CHAR)"}.get(col.select_as, c)
    text = f"CONVERT({base} USING utf8mb4)"
    if policy.nul_chars == "strip":
        text = f"REPLACE({text}, CHAR(0 USING utf8mb4), '')"
    prefix = compared_prefix(col, policy)
    return text if prefix is None else f"LEFT({text}, {prefix})"


def _float_text(x: str) -> str:
    """``<mantissa>e<exponent>`` of a DOUBLE at FLOAT_DIGITS significant digits.

    The scaling power is applied in two halves, so neither over- nor underflows
    on any side (4.9e-324 needs 10^-335, below the smallest double).
    """
    exponent = f"FLOOR(LOG10(ABS({x})))"
    half = f"FLOOR(({exponent} - {FLOAT_DIGITS - 1}) / 2)"
    rest = f"({exponent} - {FLOAT_DIGITS - 1} - {half})"
    mantissa = f"CAST(ROUND({x} / POW(10, {half}) / POW(10, {rest})) AS SIGNED)"
    return (
        f"CASE WHEN {x} = 0 THEN '0' ELSE CONCAT({mantissa}, 'e', CAST({exponent} AS SIGNED)) END"
    )


def _order_expr(col: ColumnSpec) -> str:
    """The key column as it sorts on every side: text by codepoint (UTF-8 bytes)."""
    c = quote_mysql(col.name)
    if col.kind in ("string", "time", "decimal_text"):
        return f"CAST(CONVERT({c} USING utf8mb4) AS BINARY)"
    return c


class MySQLDigest(SqlDigestSide):
    """Checksums, row digests and key look-ups of one table on the MySQL source."""

    def __init__(
        self,
        conns: tuple[Any, Any],
        schema: TableSchema,
        plan: DigestPlan,
        where: str | None = None,
    ) -> None:
        parts = [
            f"COALESCE(CONCAT('{VALUE_MARK}', {mysql_text(c, plan.policy, plan.scale(c))}), "
            f"'{NULL_MARK}')"
            for c in plan.hashed
        ]
        row_text = f"CONCAT_WS('{SEPARATOR}', {', '.join(parts)})"
        sql = DigestSql(
            table=schema.sql_table(),
            keys=tuple(quote_mysql(c.name) for c in plan.key),
            hash_sql=f"CAST(CONV(SUBSTRING(MD5({row_text}), {HASH_FROM}), 16, 10) AS UNSIGNED)",
            order=", ".join(_order_expr(c) for c in plan.key),
            fetched=tuple(mysql_text(c, plan.policy) for c in plan.fetched),
            scope_columns=tuple(quote_mysql(c.name) for c in plan.scope.columns),
            ordered=lambda _: True,  # MySQL compares in its own collations
            # additional_where is operator-written SQL from the pipeline file, trusted as such.
            extra=f" AND ({where.replace('%', '%%')})" if where else "",
        )
        super().__init__(sql, plan)
        self.conn, self.lookup_conn = conns

    def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
        """The first row of a statement."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return tuple(cur.fetchone())

    def lookup(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of a small result, on the look-up connection."""
        with self.lookup_conn.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]

    def stream(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """An unbuffered cursor: rows arrive as they are read."""
        with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql, params)
            while rows := cur.fetchmany(_FETCH_ROWS):
                yield from rows
