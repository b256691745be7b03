"""The target half of ``verify``: the same row text and hash as MySQL's, in PostgreSQL/Redshift SQL.

The column text mirrors :func:`src.backup.source_digest.mysql_text` for the
value the load wrote; where PostgreSQL and Redshift differ (the MD5-to-integer
step, hex of binary, text order) the dialect says how
(:meth:`TargetDialect.digest_hash` and friends).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from src.core.digest_side import DigestSql, SqlDigestSide
from src.core.row_compare import (
    FLOAT_DIGITS,
    NULL_MARK,
    SEPARATOR,
    VALUE_MARK,
    DigestPlan,
    compared_prefix,
)
from src.core.table_schema import ColumnSpec, TypePolicy
from src.load.deletions import DELETED_AT_COLUMN
from src.load.targets.base import TargetDialect
from src.utils.naming import quote_pg, quote_pg_table

_FETCH_ROWS = 10_000


def target_text(
    col: ColumnSpec, dialect: TargetDialect, policy: TypePolicy, scale: int | None = None
) -> str:
    """The SQL text of one loaded column's value, as MySQL's side normalises it."""
    c = quote_pg(col.target_name)
    kind = col.kind
    if kind == "decimal":
        # At MySQL's scale (a column widened by schema drift prints more digits), or at
        # the target's when MySQL's shrank: 1.25 is then not rounded to MySQL's 1.3.
        scale = (col.numeric_scale or 0) if scale is None else scale
        return f"CAST(CAST({c} AS {dialect.decimal_name}(38, {scale})) AS VARCHAR)"
    if kind in ("integer", "unsigned_bigint", "bit_int"):
        return f"CAST({c} AS VARCHAR)"
    if kind == "bit_bool":
        return f"CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"
    if kind in ("float", "double"):
        return _float_text(f"CAST({c} AS DOUBLE PRECISION)")
    if kind == "date":
        return f"TO_CHAR({c}, 'YYYY-MM-DD')"
    if kind in ("datetime", "timestamp"):
        return f"TO_CHAR({c}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if kind == "binary":
        return dialect.digest_hex(c)
    text = f"CAST({c} AS VARCHAR)" if col.is_json else c
    prefix = compared_prefix(col, policy)
    return text if prefix is None else f"LEFT({text}, {prefix})"


def _float_text(x: str) -> str:
    """MySQL's side in PostgreSQL/Redshift SQL (``source_digest._float_text``)."""
    exponent = f"FLOOR(LOG(ABS({x})))"
    half = f"FLOOR(({exponent} - {FLOAT_DIGITS - 1}) / 2)"
    rest = f"({exponent} - {FLOAT_DIGITS - 1} - {half})"
    mantissa = f"CAST(ROUND({x} / POWER(10, {half}) / POWER(10, {rest})) AS BIGINT)"
    return (
        f"CASE WHEN {x} = 0 THEN '0' ELSE CAST({mantissa} AS VARCHAR) || 'e' || "
        f"CAST(CAST({exponent} AS BIGINT) AS VARCHAR) END"
    )


class TargetDigest(SqlDigestSide):
    """Checksums, row digests and key look-ups of one loaded table."""

    def __init__(
        self,
        conns: tuple[Any, Any],
        dialect: TargetDialect,
        schema: str,
        table: str,
        plan: DigestPlan,
        soft_deleted: bool = False,
    ) -> None:
        """``soft_deleted``: leave out rows stamped in ``_deleted_at`` (delete_mode: soft)."""
        parts = [
            f"COALESCE('{VALUE_MARK}' || {target_text(c, dialect, plan.policy, plan.scale(c))}, "
            f"'{NULL_MARK}')"
            for c in plan.hashed
        ]
        keys = tuple(quote_pg(c.target_name) for c in plan.key)
        text_kinds = ("string", "time", "decimal_text")
        sql = DigestSql(
            table=quote_pg_table(schema, table),
            keys=keys,
            hash_sql=dialect.digest_hash(f" || '{SEPARATOR}' || ".join(parts)),
            order=", ".join(
                dialect.text_order(k) if c.kind in text_kinds else k
                for k, c in zip(keys, plan.key, strict=True)
            ),
            fetched=tuple(f"CAST({quote_pg(c.target_name)} AS VARCHAR)" for c in plan.fetched),
            scope_columns=tuple(quote_pg(c.target_name) for c in plan.scope.columns),
            extra=f" AND {quote_pg(DELETED_AT_COLUMN)} IS NULL" if soft_deleted else "",
        )
        super().__init__(sql, plan)
        self.conn, self.lookup_conn = conns

    def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
        """The first row of a statement (the read-only transaction ended)."""
        return _all(self.conn, sql, params)[0]

    def lookup(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of a small result, on the look-up connection."""
        return _all(self.lookup_conn, sql, params)

    def stream(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """A server-side (named) cursor: rows arrive ``_FETCH_ROWS`` at a time."""
        try:
            with self.conn.cursor(name="s3b_verify") as cur:
                cur.itersize = _FETCH_ROWS
                cur.execute(sql, params)
                yield from cur
        finally:
            self.conn.rollback()


def _all(conn: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.rollback()  # read-only: end the transaction psycopg2 opened
