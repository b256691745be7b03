"""Change-capture strategies: which rows one chunk reads, and where the next starts.

Every strategy is a keyset walk over a total order, so a chunk never skips or
repeats a row (SPEC §5):

- ``hybrid``: ``(ts, id)`` in the OR form MariaDB can use the ``(ts, id)`` index
  for (the row-constructor form scans it);
- ``timestamp_only``: ``ts`` alone, and a chunk is completed with every row
  sharing its last ``ts``, so a group of equal timestamps is never split;
- ``id_only``: ``id``;
- ``full_sync``: the primary key;
- ``custom_sql``: the operator's query, with bound placeholders.

Every value is a bound parameter (``%s``, rendered by the driver's own escaping);
every identifier is quoted by :mod:`src.utils.naming`.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pymysql

from src.backup.boundary import clock_sql
from src.backup.keyset import (
    ChunkQuery,
    Position,
    Window,
    as_datetime,
    decode_key_value,
    encode_key_value,
    exact_value,
    inexact_key,
)
from src.config.settings import TableConfig
from src.core.table_schema import TableSchema
from src.errors import ConfigError, DataError
from src.utils.naming import quote_mysql

_INT_KINDS = ("tinyint", "smallint", "mediumint", "int", "bigint")
# MySQL errors that say the SQL itself is wrong: syntax, unknown column, unknown
# function, wrong argument count. https://mariadb.com/kb/en/mariadb-error-code-reference/
_SQL_ERRORS = frozenset({1054, 1064, 1305, 1582, 1583})


class RowBasedBackupStrategy:
    """Builds the SQL of one table's chunks and advances its position.

    The keyset is a total order: the timestamp column (hybrid), then the id
    column, then every primary-key column not already in it. A cursor id that
    is not unique by itself (``cdc_id_column: a`` of a key ``(a, b)``) would
    otherwise let a chunk boundary inside a group of equal ``(ts, a)`` skip the
    rest of the group.
    """

    def __init__(self, table: TableConfig, schema: TableSchema) -> None:
        self.cfg = table
        self.schema = schema
        self.kind = table.cdc_strategy
        self.ts_col: str | None = None
        self.id_col: str | None = None
        self.primary_key = list(table.primary_key or schema.primary_key)
        for col in self.primary_key:
            self._check_column(col, "primary_key column")
        if self.kind == "full_sync":
            if not self.primary_key:
                raise ConfigError(
                    f"table {schema.qualified_name}: full_sync pages by the primary key and "
                    "the table has none in MySQL; set primary_key to a unique key"
                )
            self.id_col = self.primary_key[0]
        else:
            if self.kind != "id_only":
                self.ts_col = table.cdc_timestamp_column
            if self.kind != "timestamp_only":
                self.id_col = table.cdc_id_column
        for cursor_col in (self.ts_col, self.id_col):
            if cursor_col is not None:
                self._check_column(cursor_col, "cursor column")
        self.key_cols: list[str] = []
        if self.kind in ("hybrid", "id_only", "full_sync"):
            self.key_cols = self._keyset()
        self.unix_ts = self._is_unix_ts()

    def _check_column(self, col: str, what: str) -> None:
        try:
            self.schema.column(col)
        except KeyError:
            raise ConfigError(
                f"table {self.schema.qualified_name}: {what} {col!r} does not exist"
            ) from None

    def _keyset(self) -> list[str]:
        """The id column followed by every primary-key column not already in the order."""
        id_col = self.id_col
        assert id_col is not None
        if not self.primary_key:
            raise ConfigError(
                f"table {self.schema.qualified_name}: {self.kind} orders rows by "
                f"{self.ts_col + ', ' if self.ts_col else ''}{self.id_col}, which is exact only "
                "with a unique key, and the table has no primary key in MySQL; set "
                "primary_key to its unique key columns (e.g. primary_key: "
                f"[{self.id_col}])"
            )
        order = [id_col]
        order += [c for c in self.primary_key if c not in order and c != self.ts_col]
        for col in order:
            problem = inexact_key(self.schema.column(col))
            if problem:
                raise ConfigError(
                    f"table {self.schema.qualified_name}: {self.kind} continues after the last "
                    f"key read, and key column {col} cannot be continued from exactly: {problem}; "
                    "set cdc_id_column (and primary_key) to another unique key"
                )
        return order

    def with_schema(self, schema: TableSchema) -> RowBasedBackupStrategy:
        """The same strategy over ``schema`` (same columns, another projection)."""
        return RowBasedBackupStrategy(self.cfg, schema)

    # ------------------------------------------------------------------ setup
    def _is_unix_ts(self) -> bool:
        if self.ts_col is None:
            return False
        if self.cfg.timestamp_format != "auto":
            return self.cfg.timestamp_format == "unix"
        return self.schema.column(self.ts_col).data_type in _INT_KINDS

    def _where_extra(self) -> str:
        # additional_where is operator-written SQL from the pipeline file, trusted as such.
        return f" AND ({self.cfg.additional_where})" if self.cfg.additional_where else ""

    def _where_template(self) -> str:
        """``additional_where`` inside a pyformat template (its ``%`` doubled)."""
        return self._where_extra().replace("%", "%%")

    def window(self, cursor: Any, start: Position | None = None) -> Window:
        """Fix the run's upper bound and count rows no cursor can ever reach.

        With an id cursor, MySQL also says whether ``start``'s id lies past
        ``MAX(id)``: in the column's collation, which Python cannot reproduce.
        """
        table = self.schema.sql_table()
        if self.kind in ("full_sync", "custom_sql"):
            return Window(None, None, 0)
        col = self.ts_col or self.id_col
        assert col is not None
        q = quote_mysql(col)
        extra = self._where_extra()
        past, params = "NULL", []
        if self.ts_col is None and start is not None and start.key:
            past, params = f"MAX({q}) < %s", [start.key[0]]
        sql = f"SELECT MAX({q}), {past}, {clock_sql(self)} FROM {table} WHERE 1=1{extra}"
        with self._checked_where():
            cursor.execute(sql, params)
        hi, id_past, now = cursor.fetchone()
        nulls = 0
        if self.schema.column(col).nullable:
            # Only a nullable column can hide rows from the cursor; counting them on a
            # NOT NULL column would read the whole index on every run.
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {q} IS NULL{extra}")
            (nulls,) = cursor.fetchone()
        if isinstance(hi, decimal.Decimal):
            hi = exact_value(hi)
        if self.ts_col is not None:
            return Window(hi, None, int(nulls or 0), now=now)
        return Window(None, hi, int(nulls or 0), id_past_max=bool(id_past))

    @contextmanager
    def _checked_where(self) -> Iterator[None]:
        """The first query with ``additional_where``: an error MySQL finds in that SQL
        (syntax, an unknown column or function) is the operator's, named as such."""
        try:
            yield
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            if not self.cfg.additional_where or code not in _SQL_ERRORS:
                raise
            raise ConfigError(
                f"table {self.schema.qualified_name}: additional_where "
                f"{self.cfg.additional_where!r} is not valid in MySQL ({exc.args[-1]}); "
                "fix it in the pipeline file"
            ) from None

    def start_position(
        self,
        last_ts: str | None,
        last_id: Any,
        last_key: dict[str, Any] | None = None,
        *,
        reread_group: bool = False,
    ) -> Position:
        """The watermark's position, moved back by ``lookback_seconds`` when set.

        ``reread_group``: start at the first row whose cursor equals the
        watermark's (the group at its timestamp may have changed since it was
        read; the merge absorbs what is read again).
        """
        ts = self.ts_from_watermark(last_ts)
        key = self.key_from_watermark(last_id, last_key)
        if self.ts_col is None:
            return Position(None, key)
        if ts is not None and self.cfg.lookback_seconds:
            back = dt.timedelta(seconds=self.cfg.lookback_seconds)
            ts = ts - int(back.total_seconds()) if self.unix_ts else ts - back
            return Position(ts, (), ts_inclusive=True)
        if ts is not None and reread_group:
            return Position(ts, (), ts_inclusive=True)
        return Position(ts, key if self.kind == "hybrid" else ())

    def ts_from_watermark(self, value: str | None) -> Any:
        """The watermark's ``last_timestamp`` as the value the SQL binds."""
        if value is None or self.ts_col is None:
            return None
        parsed = dt.datetime.fromisoformat(value)
        if self.unix_ts:
            return int(parsed.replace(tzinfo=dt.UTC).timestamp())
        if self.schema.column(self.ts_col).kind == "date":
            return parsed.date()
        return parsed.replace(tzinfo=None)

    def key_from_watermark(self, last_id: Any, last_key: dict[str, Any] | None) -> tuple[Any, ...]:
        """The key values the watermark knows, in keyset order: a prefix when some are missing."""
        if last_id is None:
            return ()
        if not self.key_cols:  # custom_sql: its {last_id}
            return (last_id,)
        stored = {self.key_cols[0]: last_id, **(last_key or {})}
        values = []
        for col in self.key_cols:
            if col not in stored:
                break  # unknown from here on: rows equal to the prefix are read again
            spec = self.schema.column(col)
            try:
                values.append(decode_key_value(stored[col], spec))
            except (ValueError, TypeError):
                raise DataError(
                    f"table {self.schema.qualified_name}: the watermark's position holds "
                    f"{stored[col]!r} for key column {col}, which is {spec.column_type}; set "
                    "a valid one with 'watermark set --id' or start over with 'watermark reset'"
                ) from None
        return tuple(values)

    def ahead_of_source(self, pos: Position, window: Window) -> tuple[str, Any, Any] | None:
        """``(column, stored value, MAX on the source)`` when ``pos`` lies past the window.

        Such a position reads nothing, run after run: a restored source, a hand
        edit or a mistaken ``watermark set``.
        """
        if self.kind in ("full_sync", "custom_sql"):
            return None
        if self.ts_col is None:
            if pos.id is not None and (window.hi_id is None or window.id_past_max):
                return self.id_col or "", pos.id, window.hi_id
            return None
        stored, hi = as_datetime(pos.ts), as_datetime(window.hi_ts)
        if stored is None:
            return None
        if hi is None or (type(hi) is type(stored) and stored > hi):
            return self.ts_col, stored, hi
        return None

    # ---------------------------------------------------------------- queries
    def _col(self, name: str | None) -> str:
        """A cursor column qualified with its table, for a pyformat template.

        Qualified because the projection aliases converted columns to their own
        names (``CAST(ts AS CHAR) AS ts``) and ORDER BY resolves a bare name to
        the alias first: ``ORDER BY ts`` would sort the text expression with a
        filesort on every chunk instead of walking the ``(ts, id)`` index.
        https://mariadb.com/kb/en/order-by/
        """
        return f"{self.schema.sql_table()}.{quote_mysql(name or '').replace('%', '%%')}"

    def after_key(self, cols: list[str], values: tuple[Any, ...]) -> tuple[str, list[Any]]:
        """``(c1, c2, …) > (v1, v2, …)`` in the nested OR form, for the given values.

        With fewer values than columns, the last given one is compared with
        ``>=``: the rows after it are unknown, so they are read again (the merge
        absorbs them) rather than skipped.
        """
        exact = len(values) == len(cols)
        sql, params = "", []
        for n in range(len(values) - 1, -1, -1):
            col = self._col(cols[n])
            if not sql:
                sql = f"{col} {'>' if exact else '>='} %s"
                params = [values[n]]
            else:
                sql = f"({col} > %s OR ({col} = %s AND {sql}))"
                params = [values[n], values[n], *params]
        return sql, params

    def chunk_query(self, pos: Position, window: Window, limit: int) -> ChunkQuery:
        """The SELECT for the next chunk after ``pos``, bounded by the window."""
        select = f"SELECT {self.schema.select_list()} FROM {self.schema.sql_table()}"
        extra = self._where_template()
        if self.kind == "custom_sql":
            return self._custom(pos, limit)
        keys = ", ".join(self._col(c) for c in self.key_cols)
        if self.kind in ("id_only", "full_sync"):
            conds, params = [], []
            if pos.key:
                cond, values = self.after_key(self.key_cols, pos.key)
                conds.append(cond)
                params.extend(values)
            if window.hi_id is not None:
                conds.append(f"{self._col(self.id_col)} <= %s")
                params.append(window.hi_id)
            where = " AND ".join(conds) or "1=1"
            sql = f"{select} WHERE {where}{extra} ORDER BY {keys} LIMIT %s"
            return ChunkQuery(sql, (*params, limit))
        ts = self._col(self.ts_col)
        conds, params = [f"{ts} <= %s"], [window.hi_ts]
        if pos.ts is not None:
            if pos.ts_inclusive:
                conds.append(f"{ts} >= %s")
                params.append(pos.ts)
            elif self.kind == "hybrid" and pos.key:
                cond, values = self.after_key(self.key_cols, pos.key)
                conds.append(f"({ts} > %s OR ({ts} = %s AND {cond}))")
                params.extend([pos.ts, pos.ts, *values])
            else:
                conds.append(f"{ts} > %s")
                params.append(pos.ts)
        order = ts if self.kind == "timestamp_only" else f"{ts}, {keys}"
        sql = f"{select} WHERE {' AND '.join(conds)}{extra} ORDER BY {order} LIMIT %s"
        return ChunkQuery(sql, (*params, limit))

    def group_query(self, ts_value: Any) -> ChunkQuery:
        """timestamp_only: every row with ``ts`` equal to a chunk's last one."""
        ts = self._col(self.ts_col)
        select = f"SELECT {self.schema.select_list()} FROM {self.schema.sql_table()}"
        extra = self._where_template()
        return ChunkQuery(f"{select} WHERE {ts} = %s{extra}", (ts_value,))

    def _custom(self, pos: Position, limit: int) -> ChunkQuery:
        query = self.cfg.custom_query or ""
        names = {"last_timestamp": pos.ts, "last_id": pos.id, "limit": limit}
        params: list[Any] = []
        out, rest = [], query.replace("%", "%%")
        while "{" in rest:
            head, _, tail = rest.partition("{")
            name, closed, after = tail.partition("}")
            if not closed or name not in names:
                raise ConfigError(f"custom_query: unknown placeholder {{{name}}}")
            out.append(head + "%s")
            params.append(names[name])
            rest = after
        out.append(rest)
        return ChunkQuery("".join(out), tuple(params))

    # --------------------------------------------------------------- progress
    def position_after(self, batch: pa.RecordBatch, pos: Position) -> Position:
        """The position after the last row of ``batch`` (unchanged when empty)."""
        if batch.num_rows == 0:
            return pos
        last = batch.num_rows - 1
        ts = self.value(batch, self.ts_col, last)
        if self.kind == "timestamp_only":
            return Position(ts)
        key = tuple(self.value(batch, col, last) for col in self.key_cols)
        if self.kind == "custom_sql":
            key = (self.value(batch, self.id_col, last),) if self.id_col else ()
        return replace(pos, ts=ts, key=key, ts_inclusive=False)

    def value(self, batch: pa.RecordBatch, col: str | None, row: int) -> Any:
        """The value of source column ``col`` in ``row`` of ``batch`` (as the SQL binds it)."""
        if col is None:
            return None
        target = self.schema.column(col).target_name
        value = batch.column(batch.schema.get_field_index(target))[row].as_py()
        if value is None:
            raise DataError(
                f"table {self.schema.qualified_name}: cursor column {col} is NULL in a read row"
            )
        if isinstance(value, decimal.Decimal):
            return exact_value(value)
        return value

    def watermark_values(self, pos: Position) -> tuple[str | None, int | str | None]:
        """``(last_timestamp, last_id)`` as the watermark JSON stores them (any key type)."""
        ts = pos.ts
        if isinstance(ts, int) and self.unix_ts:
            ts = dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)
        else:
            ts = as_datetime(ts)  # a DATE cursor is stored at midnight
        text = ts.isoformat(timespec="microseconds") if isinstance(ts, dt.datetime) else None
        return text, encode_key_value(pos.id)

    def watermark_key(self, pos: Position) -> dict[str, Any] | None:
        """The key columns after the id (the watermark's ``last_key``), JSON-ready."""
        rest = dict(zip(self.key_cols[1:], pos.key[1:], strict=False))
        return {col: encode_key_value(v) for col, v in rest.items()} or None
