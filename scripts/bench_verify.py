"""The ``verify`` rows of scripts/bench.py (issue #11): equal table, 100 differences, reference.

The reference is the floor any checksum comparison has: one pass of
``SELECT COUNT(*), SUM(<row hash>)`` over the whole table on each side, both
sides at once, timed until the slower one answers. The row hash is the one
``verify`` computes (same normalised row text), so the ratio measures only
what segmenting, splitting and fetching add.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from src.backup.mysql_schema import load_table_schema
from src.backup.source_digest import MySQLDigest
from src.core.row_compare import DigestPlan, Range
from src.core.table_schema import TypePolicy
from src.load.target_digest import TargetDigest
from src.load.targets.postgres import PostgresDialect

DIFFERENCES = 100


def reference_pass(mysql: Callable[[], Any], pg: Callable[[], Any], db: str, schema: str) -> float:
    """Seconds for both sides' ``COUNT(*), SUM(row hash)`` of the whole table, in parallel."""
    with mysql() as conn:
        table = load_table_schema(conn, db, "parcels", TypePolicy())
    key = tuple(c for c in table.columns if c.name in table.primary_key)
    plan = DigestPlan(key=key, hashed=table.columns)
    results: dict[str, Any] = {}

    def side(name: str, make: Callable[[], Any]) -> None:
        results[name] = make()

    def source() -> tuple[int, int]:
        with mysql() as a, mysql() as b:
            return MySQLDigest((a, b), table, plan).checksum(Range())

    def target() -> tuple[int, int]:
        a, b = pg(), pg()
        try:
            return TargetDigest((a, b), PostgresDialect(), schema, "parcels", plan).checksum(
                Range()
            )
        finally:
            a.close()
            b.close()

    began = time.perf_counter()
    threads = [
        threading.Thread(target=side, args=("source", source)),
        threading.Thread(target=side, args=("target", target)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if results.get("source") != results.get("target"):
        raise RuntimeError(f"reference checksums differ: {results}")
    return seconds


def scatter_differences(pg_execute: Callable[..., Any], schema: str, rows: int) -> int:
    """Change ``DIFFERENCES`` rows spread over the target table; return how many changed."""
    step = max(rows // DIFFERENCES, 1)
    pg_execute(
        f"UPDATE \"{schema}\".parcels SET note = 'bench difference' "
        f"WHERE id % {step} = 7 AND id <= {step * DIFFERENCES}"
    )
    found = pg_execute(f"SELECT COUNT(*) FROM \"{schema}\".parcels WHERE note = 'bench difference'")
    return int(found[0][0])
