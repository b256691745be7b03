"""Schema drift: the DDL an existing target table needs for a staged schema (SPEC §6, #9).

Safe by default, each change one log line:

- a new source column is added; when MySQL filled it with a DEFAULT for the
  existing rows, the target's existing rows hold NULL: the line says how to
  backfill them;
- a VARCHAR that became longer is widened; an integer that became wider
  (``SMALLINT → INTEGER → BIGINT → NUMERIC``) and a decimal whose precision or
  scale grew are widened to a type that holds both the old and the new values;
- a target column no longer in the source is kept, made nullable when it is
  ``NOT NULL`` (else every later load would fail on it); with a new column in
  the same change the line says it may be a rename;
- any other type change is an error naming the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from src.core.table_schema import TableSchema
from src.errors import LoadError
from src.load.targets.base import TargetColumn, TargetDialect, type_family
from src.utils.naming import quote_pg, quote_pg_table

_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_INT_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_DECIMAL = re.compile(r"(?:numeric|decimal)\((\d+),\s*(\d+)\)")
_MAX_PRECISION = 38


@dataclass
class Drift:
    """The statements to run and the lines to log, in order."""

    statements: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def _digits(type_name: str, column: TargetColumn | None = None) -> tuple[int, int] | None:
    """``(integer digits, scale)`` of an integer or decimal type, None for any other."""
    base = type_name.lower().split("(")[0].strip()
    if base in _INT_DIGITS:
        return _INT_DIGITS[base], 0
    if column is not None and base in ("numeric", "decimal") and column.precision is not None:
        return column.precision - (column.scale or 0), column.scale or 0
    match = _DECIMAL.fullmatch(type_name.lower().replace(" ", ""))
    if match:
        return int(match[1]) - int(match[2]), int(match[2])
    return None


def widened_type(have: TargetColumn, wanted: str, decimal_name: str) -> str | None:
    """The type ``have`` must take to hold every value of ``wanted``; None when it does."""
    wanted_base = wanted.lower().split("(")[0]
    if have.data_type in _INT_RANK and wanted_base in _INT_RANK:
        return wanted if _INT_RANK[wanted_base] > _INT_RANK[have.data_type] else None
    old, new = _digits(have.data_type, have), _digits(wanted)
    if old is None or new is None or (new[0] <= old[0] and new[1] <= old[1]):
        return None
    integer, scale = max(old[0], new[0]), max(old[1], new[1])
    if integer + scale > _MAX_PRECISION:
        return None  # left to the load's cast, which names the failing value
    return f"{decimal_name}({integer + scale},{scale})"


def drift_changes(
    dialect: TargetDialect,
    target_schema: str,
    table: str,
    staged: TableSchema,
    existing: dict[str, TargetColumn],
    has_rows: Callable[[], bool],
) -> Drift:
    """What ``table`` (with columns ``existing``) needs to load files of ``staged``.

    ``has_rows()`` says whether the target table holds rows (asked only when
    the answer changes a message).
    """
    drift = Drift()
    qualified = quote_pg_table(target_schema, table)
    added = []
    for col in staged.columns:
        wanted = dialect.column_type(col)
        have = existing.get(col.target_name)
        if have is None:
            drift.statements.append(
                f"ALTER TABLE {qualified} ADD COLUMN {quote_pg(col.target_name)} {wanted}"
            )
            added.append(col.target_name)
            drift.messages.append(f"column {col.target_name} is new in the source: added")
            if col.has_default and has_rows():
                drift.messages.append(
                    f"column {col.target_name} was added in MySQL with a DEFAULT: the "
                    "target's existing rows hold NULL in it; to backfill them, re-extract the "
                    f"table ('watermark reset -t {staged.qualified_name}' and a sync, which "
                    "merges every row by key)"
                )
            continue
        if col.target_nullable and not have.nullable:  # NULLs arrive now (or zero dates do)
            drift.statements += dialect.change_column_sql(
                target_schema, table, col.target_name, have.sql_type(), nullable=True
            )
            drift.messages.append(
                f"column {col.target_name} may be NULL in the source: made nullable"
            )
        family = type_family(have.data_type)
        if type_family(wanted) != family and family != "text":
            raise LoadError(
                f"target column {table}.{col.target_name} is {have.sql_type()} but the source "
                f"column {col.name} is now {wanted}: incompatible types; alter or recreate "
                "the target column"
            )
        length = _varchar_length(wanted)
        if length and have.char_length and have.char_length < length:
            drift.statements.append(
                dialect.widen_varchar_sql(target_schema, table, col.target_name, length)
            )
            drift.messages.append(f"column {col.target_name} widened to VARCHAR({length})")
            continue
        wider = widened_type(have, wanted, dialect.decimal_name) if family == "number" else None
        if wider is not None:
            drift.statements += dialect.change_column_sql(
                target_schema, table, col.target_name, wider, nullable=False
            )
            drift.messages.append(
                f"column {col.target_name} widened from {have.sql_type()} to {wider}"
            )
    staged_names = {c.target_name for c in staged.columns}
    gone = [c for name, c in existing.items() if name not in staged_names]
    for old in gone:
        if not old.nullable:
            drift.statements += dialect.change_column_sql(
                target_schema, table, old.name, old.sql_type(), nullable=True
            )
        made = "made nullable and kept" if not old.nullable else "kept"
        rename = f"; column {', '.join(added)} new (a rename?)" if added else ""
        if added or not old.nullable:
            drift.messages.append(f"column {old.name} is no longer in the source: {made}{rename}")
    return drift


def _varchar_length(sql_type: str) -> int | None:
    upper = sql_type.upper()
    if upper.startswith("VARCHAR(") and upper.endswith(")"):
        return int(upper[8:-1])
    return None
