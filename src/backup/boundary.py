"""The watermark's own timestamp: can rows still arrive with it, by the source's clock?

A walk reads the rows at its window's newest cursor value ``T`` and continues
next time after ``(T, last key)``. A change committed later *with* cursor value
``T`` (a row updated within the same second of a ``DATETIME(0)`` cursor) would
be read by neither that ``(ts > T OR (ts = T AND key > last))`` nor ``verify``
(which compares the rows at or below the position, so it calls it different).
Until the source's clock has passed ``T`` by the cursor's unit (a second for
``DATETIME(0)``, a day for ``DATE``) plus :data:`BOUNDARY_MARGIN`, the group at
``T`` is *open*: the watermark says so (``mysql_state.group_open``) and the next
run without a cap reads the group again (:mod:`src.backup.backup_stage`; the
merge absorbs it). Later arrivals are late commits: ``lookback_seconds``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from src.backup.keyset import Position, as_datetime

if TYPE_CHECKING:
    from src.backup.row_based import RowBasedBackupStrategy

# Past a cursor value's own unit, how long a change may still arrive with it: a
# statement's NOW() is taken before its commit (longer waits are lookback_seconds').
BOUNDARY_MARGIN = dt.timedelta(seconds=1)


def clock_sql(strategy: RowBasedBackupStrategy) -> str:
    """The source's clock as the cursor column's values read it (SQL).

    The session is in UTC, as TIMESTAMP values are read. A DATETIME is written
    in its writer's time zone, by default the server's
    (``@@global.time_zone``; NULL when that names a zone the server has no
    table for: the clock is then unknown).
    """
    if strategy.ts_col is None:
        return "NULL"
    if strategy.unix_ts:
        return "UNIX_TIMESTAMP(NOW(6))"
    if strategy.schema.column(strategy.ts_col).kind == "timestamp":
        return "NOW(6)"
    return "CONVERT_TZ(NOW(6), '+00:00', @@global.time_zone)"


def group_open(strategy: RowBasedBackupStrategy, ts: Any, now: Any) -> bool:
    """Whether a row may still be written with cursor value ``ts``, by the clock ``now``.

    An unknown clock counts as open.
    """
    if ts is None or strategy.ts_col is None:
        return False
    if now is None:
        return True
    if strategy.unix_ts:
        return bool(ts + 1 + BOUNDARY_MARGIN.total_seconds() > now)
    col = strategy.schema.column(strategy.ts_col)
    digits = col.datetime_precision or 0
    unit = dt.timedelta(days=1) if col.kind == "date" else dt.timedelta(seconds=10**-digits)
    return bool(as_datetime(ts) + unit + BOUNDARY_MARGIN > now)


def left_open(
    strategy: RowBasedBackupStrategy, position: Position, start: Position, now: Any, was_open: bool
) -> bool:
    """Whether the rows at ``position``'s timestamp may change after a walk from ``start``.

    Open by the source's clock ``now`` (:func:`group_open`), or because an
    earlier run read part of the group: this walk began inside it, after rows
    that may have changed since (``was_open`` says whether they could).
    """
    if group_open(strategy, position.ts, now):
        return True
    if start.ts is None or position.ts is None:
        return False
    began_inside = as_datetime(start.ts) == as_datetime(position.ts) and not start.ts_inclusive
    return began_inside and was_open


def advances(new: Position, old: Position, start: Position) -> bool:
    """Whether the watermark may move from ``old`` to ``new`` in a walk begun at ``start``.

    A walk that starts after the watermark only moves forward. One that starts
    behind it (``lookback_seconds``) moves it once past its timestamp; a re-read
    of the group at the watermark's own timestamp starts at that group, so its
    positions within the group hold. Compared by cursor value alone: keys follow
    their collation's order, which Python cannot reproduce.
    """
    if not start.ts_inclusive or old.ts is None or new.ts is None:
        return True
    new_ts, old_ts = as_datetime(new.ts), as_datetime(old.ts)
    return bool(new_ts > old_ts or (new_ts == old_ts and as_datetime(start.ts) == old_ts))
