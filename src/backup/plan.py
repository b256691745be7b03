"""What a table's backup run will do and what it did: plan, options, result.

:func:`table_strategy` reads the table's schema from ``information_schema``
and builds its strategy (the run, ``--dry-run`` and ``config validate
--check-sources`` all use it); :class:`BackupPlan` is what a run fixes at its
start; :class:`BackupResult` counts what it did (this run only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from src.backup.keyset import Position, Window
from src.backup.mysql_schema import load_table_schema
from src.backup.row_based import RowBasedBackupStrategy
from src.config.capabilities import TargetCapabilities
from src.config.settings import AppConfig, PipelineConfig, TableConfig, resolve_write_mode
from src.core.table_schema import TableSchema, TypePolicy
from src.utils.naming import split_table_name


@dataclass
class BackupResult:
    """What one table's backup run did (counts are for this run only)."""

    table: str
    rows: int = 0
    files: int = 0
    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0
    zero_dates: int = 0
    nul_chars: int = 0
    truncated: int = 0
    null_cursor_rows: int = 0
    retries: int = 0  # transient faults ridden out (a cut MySQL read resumed)
    estimated_rows: int = 0
    reader: str = ""
    stopped_by: str | None = None  # "limit" | "max_chunks" | None (window exhausted)

    @property
    def rows_per_second(self) -> float:
        """Throughput of the run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BackupPlan:
    """What a run will do, fixed at its start (also what ``--dry-run`` prints)."""

    schema: TableSchema
    strategy: RowBasedBackupStrategy
    window: Window
    start: Position
    chunk_size: int
    chunk_source: str
    rows_per_file: int
    rows_per_file_source: str
    estimated_rows: int

    @property
    def nothing_to_do(self) -> bool:
        """An empty cursor range: the table has no row a cursor can reach."""
        incremental = self.strategy.kind not in ("full_sync", "custom_sql")
        return incremental and self.window.hi_ts is None and self.window.hi_id is None


@dataclass(frozen=True)
class BackupOptions:
    """Caps and identity of one run."""

    execution_id: str
    limit: int | None = None
    max_chunks: int | None = None
    reader: str = "auto"


def table_strategy(
    app: AppConfig, pipeline: PipelineConfig, table_name: str, conn: Any
) -> RowBasedBackupStrategy:
    """The table's schema and strategy from ``information_schema`` (checked, not run)."""
    table = pipeline.tables[table_name]
    schema_name, source_table = split_table_name(table_name)
    caps = app.targets[pipeline.target].capabilities
    schema = load_table_schema(
        conn,
        schema_name,
        source_table,
        type_policy(table, caps),
        caps.max_identifier_bytes,
    )
    strategy = RowBasedBackupStrategy(table, schema)
    resolve_write_mode(table, strategy.primary_key, table_name)  # refuse before reading
    return strategy


def type_policy(table: TableConfig, caps: TargetCapabilities) -> TypePolicy:
    """The table's value policies (SPEC §7), and the target's value limits."""
    return TypePolicy(
        decimal_overflow=table.decimal_overflow,
        oversize_text=table.oversize_text,
        zero_dates=table.zero_dates,
        nul_chars=table.nul_chars,
        max_text_bytes=caps.max_text_bytes,
        max_binary_bytes=caps.max_binary_bytes,
    )
