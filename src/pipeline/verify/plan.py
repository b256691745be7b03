"""What one table's comparison covers: its scope, its columns, its key (``verify``'s planning).

Pure functions over the MySQL schema, the watermark and the target's columns;
:mod:`src.pipeline.verify.run` runs what they plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from src.backup.keyset import encode_key_value
from src.backup.row_based import RowBasedBackupStrategy
from src.core.row_compare import DigestPlan, Scope
from src.core.simple_watermark_manager import MySQLState
from src.core.table_schema import ColumnSpec
from src.errors import ConfigError
from src.pipeline.verify.compare import KeyTally
from src.pipeline.verify.report import KeyList


def watermark_scope(
    strategy: RowBasedBackupStrategy, state: MySQLState, grace: float, nulls: bool = False
) -> Scope | None:
    """The rows in sync by now: at or below the watermark's keyset position; None: nothing synced.

    ``grace`` seconds: only rows strictly below the position's timestamp less
    that (late commits). ``nulls``: rows with a NULL cursor are synced too
    (``null_cursor: include`` reads them every run).
    """
    if strategy.kind == "full_sync":
        return Scope()
    key = strategy.key_from_watermark(state.last_id, state.last_key) if strategy.key_cols else ()
    if strategy.ts_col is None:
        if not key:
            return None
        columns = [strategy.schema.column(c) for c in strategy.key_cols]
        return Scope(tuple(columns), key, nulls=nulls)
    bound = strategy.ts_from_watermark(state.last_timestamp)
    if bound is None:
        return None
    columns = [strategy.schema.column(strategy.ts_col)]
    if strategy.kind == "hybrid":
        columns += [strategy.schema.column(c) for c in strategy.key_cols]
    else:
        key = ()  # timestamp_only: a group of equal timestamps is staged whole
    if grace:  # strictly below the timestamp less the grace
        step = dt.timedelta(seconds=grace)
        bound = bound - int(grace) if isinstance(bound, int) else bound - step
        return Scope(tuple(columns), (bound,), inclusive=False, nulls=nulls)
    return Scope(tuple(columns), (bound, *key), nulls=nulls)


def window_scope(
    strategy: RowBasedBackupStrategy, before: MySQLState, after: MySQLState
) -> Scope | None:
    """The rows one sync moved the watermark over (None: it did not move).

    Below the new position's timestamp (rows at it are compared by the next
    window) and from the old one; for an id cursor, after the old id up to the
    new position.
    """
    if strategy.kind == "full_sync":
        return Scope()
    upper = watermark_scope(strategy, after, 0)
    if upper is None or upper.column is None:
        return None
    if strategy.ts_col is not None:
        lower = strategy.ts_from_watermark(before.last_timestamp)
        if lower is not None and lower >= upper.bound[0]:
            return None
        return Scope(upper.columns[:1], upper.bound[:1], inclusive=False, lower=lower)
    old = strategy.key_from_watermark(before.last_id, before.last_key)
    if old == upper.bound:
        return None
    return replace(upper, lower=old[0] if old else None, lower_inclusive=False)


def compared_up_to(scope: Scope, strategy: RowBasedBackupStrategy) -> dict[str, Any]:
    """The scope as the report shows it (the watermark's field names)."""
    if scope.column is None:
        return {}
    values = dict(zip((c.name for c in scope.columns), scope.bound, strict=False))
    shown: dict[str, Any] = {}
    if strategy.ts_col is not None:
        shown["last_timestamp"] = encode_key_value(values.pop(strategy.ts_col))
    if values and strategy.key_cols:
        shown["last_id"] = encode_key_value(values.pop(strategy.key_cols[0], None))
    if values:
        shown["last_key"] = {name: encode_key_value(v) for name, v in values.items()}
    shown["inclusive"] = scope.inclusive and len(scope.bound) == len(scope.columns)
    if scope.lower is not None:
        shown["from"] = encode_key_value(scope.lower)
    if scope.nulls:
        shown["null_cursor_rows"] = "included"
    return shown


def digest_plan(
    strategy: RowBasedBackupStrategy,
    scope: Scope,
    present: dict[str, tuple[str, int | None]],
    keys_only: bool,
    columns: tuple[str, ...],
) -> tuple[DigestPlan, list[str]]:
    """The key and the columns both sides have; notes.

    ``present``: target column → (type, numeric scale). A decimal the target holds
    at a larger scale than MySQL's now (the source's scale shrank) is compared at
    the target's: MySQL's rounded value is then not taken for the target's.
    """
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
    fetched = tuple(c for c in chosen if present[c.target_name][0] == "jsonb")
    if fetched:
        notes.append(
            "JSON columns stored as JSONB are compared as parsed JSON in Python: every row "
            "is fetched (JSONB does not keep the text)"
        )
    for col in scope.columns:
        if col.target_name not in present:
            raise ConfigError(f"cursor column {col.name} is not in the target table")
    hashed = tuple(c for c in chosen if c not in fetched)
    scales = {
        c.target_name: scale
        for c in chosen
        if c.kind == "decimal" and (scale := present[c.target_name][1]) is not None
        if scale > (c.numeric_scale or 0)
    }
    plan = DigestPlan(
        key=key, hashed=hashed, fetched=fetched, scope=scope, policy=schema.policy, scales=scales
    )
    return plan, notes


def key_list(tally: KeyTally, names: list[str]) -> KeyList:
    """A tally as the report lists it: key column → JSON value."""
    keys = [dict(zip(names, map(encode_key_value, key), strict=True)) for key in tally.keys]
    return KeyList(count=tally.count, keys=keys)
