"""Rows deleted at the source, removed from the target inside the load's transaction.

``verify --repair`` and ``sync pipeline --detect-deletes`` hand the load the
keys the source no longer has; :meth:`Deletions.apply` deletes them (``hard``)
or stamps ``_deleted_at`` (``soft``) in the same transaction as the load's
merge and ledger rows, so a failure leaves the target as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from src.utils.naming import quote_pg, quote_pg_table

DELETED_AT_COLUMN = "_deleted_at"
_KEYS_PER_STATEMENT = 500


@dataclass(frozen=True)
class Deletions:
    """Keys to remove: values of ``key_columns`` (target names), hard or soft."""

    keys: Sequence[tuple[Any, ...]]
    key_columns: tuple[str, ...]
    soft: bool = False

    def ddl(self, schema: str, table: str, columns: set[str]) -> list[str]:
        """The ``_deleted_at`` column a soft delete needs, when the table lacks it."""
        if not self.soft or DELETED_AT_COLUMN in columns:
            return []
        qualified = quote_pg_table(schema, table)
        return [f"ALTER TABLE {qualified} ADD COLUMN {quote_pg(DELETED_AT_COLUMN)} TIMESTAMP"]

    def apply(self, cur: Any, schema: str, table: str) -> int:
        """Delete or mark the rows; return how many the database changed."""
        qualified = quote_pg_table(schema, table)
        match = "(" + " AND ".join(f"{quote_pg(c)} = %s" for c in self.key_columns) + ")"
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        changed = 0
        for start in range(0, len(self.keys), _KEYS_PER_STATEMENT):
            batch = self.keys[start : start + _KEYS_PER_STATEMENT]
            where = " OR ".join([match] * len(batch))
            params: list[Any] = [v for key in batch for v in key]
            if self.soft:
                column = quote_pg(DELETED_AT_COLUMN)
                sql = f"UPDATE {qualified} SET {column} = %s WHERE ({where}) AND {column} IS NULL"
                params = [now, *params]
            else:
                sql = f"DELETE FROM {qualified} WHERE {where}"
            cur.execute(sql, params)
            changed += max(int(cur.rowcount), 0)
        return changed
