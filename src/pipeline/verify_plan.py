"""What one table's comparison covers: its scope, its columns, its key (``verify``'s planning).

Pure functions over the MySQL schema, the watermark and the target's columns;
:mod:`src.pipeline.verify` runs what they plan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from src.backup.keyset import encode_key_value
from src.backup.row_based import RowBasedBackupStrategy
from src.core.row_compare import DigestPlan, Scope
from src.core.simple_watermark_manager import MySQLState
from src.core.table_schema import ColumnSpec
from src.errors import ConfigError
from src.pipeline.verify_compare import KeyTally
from src.pipeline.verify_report import KeyList


def watermark_scope(
    strategy: RowBasedBackupStrategy, state: MySQLState, grace: float
) -> Scope | None:
    """The rows in sync by now (below the watermark, less ``grace``); None: nothing synced."""
    if strategy.kind == "full_sync":
        return Scope()
    if strategy.ts_col is not None:
        bound = strategy.ts_from_watermark(state.last_timestamp)
        if bound is None:
            return None
        if grace:
            step = dt.timedelta(seconds=grace)
            bound = bound - int(grace) if isinstance(bound, int) else bound - step
        # Strictly below: rows sharing the watermark's timestamp may be only partly synced.
        return Scope(strategy.schema.column(strategy.ts_col), bound)
    if state.last_id is None or strategy.id_col is None:
        return None
    return Scope(strategy.schema.column(strategy.id_col), state.last_id, inclusive=True)


def window_scope(
    strategy: RowBasedBackupStrategy, before: MySQLState, after: MySQLState
) -> Scope | None:
    """The rows one sync moved the watermark over (None: it did not move)."""
    if strategy.kind == "full_sync":
        return Scope()
    upper = watermark_scope(strategy, after, 0)
    if upper is None or upper.column is None:
        return None
    if strategy.ts_col is not None:
        lower = strategy.ts_from_watermark(before.last_timestamp)
        if lower is not None and lower >= upper.bound:
            return None
        return Scope(upper.column, upper.bound, lower=lower)
    if before.last_id is not None and before.last_id >= upper.bound:
        return None
    return Scope(upper.column, upper.bound, True, lower=before.last_id, lower_inclusive=False)


def compared_up_to(scope: Scope, strategy: RowBasedBackupStrategy) -> dict[str, Any]:
    """The scope as the report shows it (the watermark's field names)."""
    if scope.column is None:
        return {}
    name = "last_timestamp" if scope.column.name == strategy.ts_col else "last_id"
    shown: dict[str, Any] = {name: encode_key_value(scope.bound), "inclusive": scope.inclusive}
    if scope.lower is not None:
        shown["from"] = encode_key_value(scope.lower)
    return shown


def digest_plan(
    strategy: RowBasedBackupStrategy,
    scope: Scope,
    present: dict[str, str],
    keys_only: bool,
    columns: tuple[str, ...],
) -> tuple[DigestPlan, list[str]]:
    """The key and the columns both sides have (``present``: target column → type); notes."""
    schema, notes = strategy.schema, []
    key = tuple(schema.column(name) for name in strategy.primary_key)
    missing_key = [c.name for c in key if c.target_name not in present]
    if missing_key:
        raise ConfigError(
            f"table {schema.qualified_name}: key columns {missing_key} are not in the target table"
        )
    wanted = set(columns)
    unknown = wanted - {c.name for c in schema.columns}
    if unknown:
        raise ConfigError(
            f"--columns names columns {sorted(unknown)} that {schema.qualified_name} does not have"
        )
    chosen: list[ColumnSpec] = []
    for col in schema.columns:
        if col.target_name not in present:
            notes.append(f"column {col.name} is not in the target yet (not compared)")
        elif col in key or (not keys_only and (not wanted or col.name in wanted)):
            chosen.append(col)
    fetched = tuple(c for c in chosen if present[c.target_name] == "jsonb")
    if fetched:
        notes.append(
            "JSON columns stored as JSONB are compared as parsed JSON in Python: every row "
            "is fetched (JSONB does not keep the text)"
        )
    if scope.column is not None and scope.column.target_name not in present:
        raise ConfigError(f"cursor column {scope.column.name} is not in the target table")
    hashed = tuple(c for c in chosen if c not in fetched)
    plan = DigestPlan(key=key, hashed=hashed, fetched=fetched, scope=scope, policy=schema.policy)
    return plan, notes


def key_list(tally: KeyTally, names: list[str]) -> KeyList:
    """A tally as the report lists it: key column → JSON value."""
    keys = [dict(zip(names, map(encode_key_value, key), strict=True)) for key in tally.keys]
    return KeyList(count=tally.count, keys=keys)
