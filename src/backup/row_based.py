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
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from src.backup.mysql_schema import TableSchema
from src.config.settings import TableConfig
from src.errors import ConfigError, DataError
from src.utils.naming import quote_mysql

_INT_KINDS = ("tinyint", "smallint", "mediumint", "int", "bigint")


@dataclass(frozen=True)
class Position:
    """Where the next chunk starts: after ``(ts, id)``; ``ts_inclusive`` on a lookback start."""

    ts: Any = None
    id: Any = None
    ts_inclusive: bool = False

    @property
    def empty(self) -> bool:
        """True before the first row of the table."""
        return self.ts is None and self.id is None


@dataclass(frozen=True)
class Window:
    """The run's fixed upper bound (``MAX(cursor)`` at start) and NULL-cursor count."""

    hi_ts: Any
    hi_id: Any
    null_cursor_rows: int


@dataclass(frozen=True)
class ChunkQuery:
    """One SELECT as a pyformat template plus its parameters."""

    sql: str
    params: tuple[Any, ...]


class RowBasedBackupStrategy:
    """Builds the SQL of one table's chunks and advances its position."""

    def __init__(self, table: TableConfig, schema: TableSchema) -> None:
        self.cfg = table
        self.schema = schema
        self.kind = table.cdc_strategy
        self.ts_col: str | None = None
        self.id_col: str | None = None
        if self.kind == "full_sync":
            pk = table.primary_key or list(schema.primary_key)
            if len(pk) != 1:
                raise ConfigError(
                    f"table {schema.qualified_name}: full_sync pages by a one-column primary key; "
                    f"set primary_key (found {pk or 'none'})"
                )
            self.id_col = pk[0]
        else:
            if self.kind != "id_only":
                self.ts_col = table.cdc_timestamp_column
            if self.kind != "timestamp_only":
                self.id_col = table.cdc_id_column
        for col in (self.ts_col, self.id_col):
            if col is not None:
                try:
                    schema.column(col)
                except KeyError:
                    raise ConfigError(
                        f"table {schema.qualified_name}: cursor column {col!r} does not exist"
                    ) from None
        self.unix_ts = self._is_unix_ts()

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

    def window(self, cursor: Any) -> Window:
        """Fix the run's upper bound and count rows no cursor can ever reach."""
        table = self.schema.sql_table()
        if self.kind in ("full_sync", "custom_sql"):
            return Window(None, None, 0)
        col = self.ts_col or self.id_col
        assert col is not None
        q = quote_mysql(col)
        extra = self._where_extra()
        cursor.execute(f"SELECT MAX({q}) FROM {table} WHERE 1=1{extra}")
        (hi,) = cursor.fetchone()
        nulls = 0
        if self.schema.column(col).nullable:
            # Only a nullable column can hide rows from the cursor; counting them on a
            # NOT NULL column would read the whole index on every run.
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {q} IS NULL{extra}")
            (nulls,) = cursor.fetchone()
        if self.ts_col is not None:
            return Window(hi, None, int(nulls or 0))
        return Window(None, hi, int(nulls or 0))

    def start_position(self, last_ts: str | None, last_id: int | None) -> Position:
        """The watermark's position, moved back by ``lookback_seconds`` when set."""
        ts = self.ts_from_watermark(last_ts)
        if self.ts_col is None:
            return Position(None, last_id)
        if ts is not None and self.cfg.lookback_seconds:
            back = dt.timedelta(seconds=self.cfg.lookback_seconds)
            ts = ts - int(back.total_seconds()) if self.unix_ts else ts - back
            return Position(ts, None, ts_inclusive=True)
        return Position(ts, last_id if self.kind == "hybrid" else None)

    def ts_from_watermark(self, value: str | None) -> Any:
        if value is None or self.ts_col is None:
            return None
        parsed = dt.datetime.fromisoformat(value)
        if self.unix_ts:
            return int(parsed.replace(tzinfo=dt.UTC).timestamp())
        return parsed.replace(tzinfo=None)

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

    def chunk_query(self, pos: Position, window: Window, limit: int) -> ChunkQuery:
        """The SELECT for the next chunk after ``pos``, bounded by the window."""
        select = f"SELECT {self.schema.select_list()} FROM {self.schema.sql_table()}"
        extra = self._where_template()
        if self.kind == "custom_sql":
            return self._custom(pos, limit)
        if self.kind in ("id_only", "full_sync"):
            q = self._col(self.id_col)
            conds, params = [], []
            if pos.id is not None:
                conds.append(f"{q} > %s")
                params.append(pos.id)
            if window.hi_id is not None:
                conds.append(f"{q} <= %s")
                params.append(window.hi_id)
            where = " AND ".join(conds) or "1=1"
            sql = f"{select} WHERE {where}{extra} ORDER BY {q} LIMIT %s"
            return ChunkQuery(sql, (*params, limit))
        ts = self._col(self.ts_col)
        conds, params = [f"{ts} <= %s"], [window.hi_ts]
        if pos.ts is not None:
            if pos.ts_inclusive:
                conds.append(f"{ts} >= %s")
                params.append(pos.ts)
            elif self.kind == "hybrid" and pos.id is not None:
                i = self._col(self.id_col)
                conds.append(f"({ts} > %s OR ({ts} = %s AND {i} > %s))")
                params.extend([pos.ts, pos.ts, pos.id])
            else:
                conds.append(f"{ts} > %s")
                params.append(pos.ts)
        order = ts if self.kind == "timestamp_only" else f"{ts}, {self._col(self.id_col)}"
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
        ident = self.value(batch, self.id_col, last)
        if self.kind == "timestamp_only":
            return Position(ts, None)
        return replace(pos, ts=ts, id=ident, ts_inclusive=False)

    def value(self, batch: pa.RecordBatch, col: str | None, row: int) -> Any:
        if col is None:
            return None
        target = self.schema.column(col).target_name
        value = batch.column(batch.schema.get_field_index(target))[row].as_py()
        if value is None:
            raise DataError(
                f"table {self.schema.qualified_name}: cursor column {col} is NULL in a read row"
            )
        if isinstance(value, decimal.Decimal):
            return int(value)
        return value

    def watermark_values(self, pos: Position) -> tuple[str | None, int | None]:
        """``(last_timestamp, last_id)`` as the watermark JSON stores them."""
        ts = pos.ts
        if isinstance(ts, int) and self.unix_ts:
            ts = dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)
        text = ts.isoformat(timespec="microseconds") if isinstance(ts, dt.datetime) else None
        return text, int(pos.id) if isinstance(pos.id, int) else None


class PrimaryKeyPass:
    """A hybrid table's first run: every row with ``ts <= hi``, in primary-key order.

    With no watermark yet the whole table is new; walking the ``(ts, id)`` index
    would look up every row by primary key (about twice a full scan, see
    docs/benchmarks.md), while primary-key order reads the table as stored. The
    pass keeps its ``hi`` in the watermark, so an interrupted pass resumes with
    the same bound; when it completes, the position becomes ``(hi, MAX(id))``:
    every row with ``ts <= hi`` is staged, later changes have ``ts > hi``.
    """

    def __init__(self, strategy: RowBasedBackupStrategy, hi: Any) -> None:
        self.base = strategy
        self.schema = strategy.schema
        self.kind = "pk_pass"
        self.hi = hi

    def with_schema(self, schema: TableSchema) -> PrimaryKeyPass:
        """The same pass over ``schema`` (same columns, another projection)."""
        return PrimaryKeyPass(self.base.with_schema(schema), self.hi)

    def chunk_query(self, pos: Position, window: Window, limit: int) -> ChunkQuery:
        """``WHERE ts <= hi AND id > last ORDER BY id LIMIT n``."""
        base = self.base
        ts, ident = base._col(base.ts_col), base._col(base.id_col)
        conds, params = [f"{ts} <= %s"], [self.hi]
        if pos.id is not None:
            conds.append(f"{ident} > %s")
            params.append(pos.id)
        extra = base._where_template()
        sql = (
            f"SELECT {self.schema.select_list()} FROM {self.schema.sql_table()} "
            f"WHERE {' AND '.join(conds)}{extra} ORDER BY {ident} LIMIT %s"
        )
        return ChunkQuery(sql, (*params, limit))

    def position_after(self, batch: pa.RecordBatch, pos: Position) -> Position:
        """The primary key of the batch's last row."""
        if batch.num_rows == 0:
            return pos
        return Position(None, self.base.value(batch, self.base.id_col, batch.num_rows - 1))
