"""``verify --repair`` releases quarantined staged files once their rows are mended.

Every row of a quarantined file is at or below the position recorded with it
(:mod:`src.load.quarantine`). A whole-row comparison (and its repair) up to
the watermark mends the rows strictly below its bound; the rows *at* the bound
are not compared (some may not be synced yet), so those are re-extracted by
key outright — harmless for a row already in the target: the merge is by key.
The released files become orphans that ``s3clean`` removes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from src.backup.key_extract import extract_by_key
from src.backup.row_based import RowBasedBackupStrategy
from src.core.row_compare import Scope, same_order
from src.core.simple_watermark_manager import QuarantinedFile
from src.core.table_run import TableRun
from src.core.table_schema import ColumnSpec
from src.load.load_stage import Connect, TableLoad
from src.load.targets.base import TargetDialect
from src.utils.logging_setup import get_logger
from src.utils.naming import quote_mysql, quote_mysql_table

log = get_logger("verify")


def release_quarantined(
    run: TableRun,
    strategy: RowBasedBackupStrategy,
    scope: Scope,
    mysql: Any,
    key: tuple[ColumnSpec, ...],
    dialect: TargetDialect,
    connect: Connect | None,
    *,
    locked: bool,
) -> int:
    """Release the entries ``scope`` covers (re-extracting the rows at its bound first)."""
    if not run.watermarks.read().quarantined_s3_files:
        return 0
    with contextlib.nullcontext() if locked else run.lock:
        entries = run.watermarks.read().quarantined_s3_files
        where = {q.file: _where(scope, strategy, q) for q in entries}
        if "at" in where.values():
            keys = _keys_at(mysql, run, scope, key)
            extract_by_key(run, strategy, keys, [c.name for c in key])
            TableLoad(run, dialect, connect).run()
        done = {file for file, place in where.items() if place != "above"}
        if done:
            wm = run.watermarks.read()
            wm.quarantined_s3_files = [q for q in wm.quarantined_s3_files if q.file not in done]
            run.watermarks.write(wm)
            log.info("quarantined files released", table=run.table, files=len(done))
    return len(done)


def _where(scope: Scope, strategy: RowBasedBackupStrategy, entry: QuarantinedFile) -> str:
    """``below`` the compared position, ``at`` its timestamp, or ``above`` (not covered yet)."""
    if scope.column is None:
        return "below"  # every row was compared
    if strategy.ts_col is not None:
        ts = strategy.ts_from_watermark(entry.below.get("last_timestamp"))
        if ts is None:
            return "above"
        bound = scope.bound[0]
        return "below" if ts < bound else "at" if ts == bound else "above"
    stored = strategy.key_from_watermark(entry.below.get("last_id"), None)
    if not stored or not same_order(scope.column):  # text: MySQL's collation decides
        return "below" if stored and stored[0] == scope.bound[0] else "above"
    return "below" if stored[0] <= scope.bound[0] else "above"


def _keys_at(mysql: Any, run: TableRun, scope: Scope, key: tuple[ColumnSpec, ...]) -> list[Any]:
    """The keys of the source rows whose cursor equals the scope's bound."""
    assert scope.column is not None
    cols = ", ".join(quote_mysql(c.name) for c in key)
    table = quote_mysql_table(run.source_schema, run.source_table)
    with mysql.cursor() as cur:
        cur.execute(
            f"SELECT {cols} FROM {table} WHERE {quote_mysql(scope.column.name)} = %s",
            (scope.bound[0],),
        )
        return [tuple(row) for row in cur.fetchall()]
