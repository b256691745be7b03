"""One table of one pipeline, opened once for a command: what both stages share.

The orchestrator (``sync pipeline``, the watermark and s3clean commands) opens
a :class:`TableRun` and hands it to the backup and load stages: one stage
client, one watermark store (the document is read once and kept in memory),
one lock, one data prefix. Nothing here reads MySQL or the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from src.config.settings import AppConfig, PipelineConfig, StageConfig, TableConfig
from src.core.connections import ConnectionManager
from src.core.simple_watermark_manager import SimpleWatermarkManager, Watermark
from src.core.stage import Stage
from src.core.table_lock import TableLock
from src.utils.naming import split_table_name
from src.utils.stage_keys import lock_key, table_data_prefix, watermark_key


@dataclass(frozen=True)
class TableRun:
    """A table of a pipeline with its stage, watermark store and lock."""

    app: AppConfig
    pipeline: PipelineConfig
    table: str  # schema.table, as -t names it
    execution_id: str  # this run's id; the lock's owner
    stage: Stage = field(repr=False)
    watermarks: SimpleWatermarkManager = field(repr=False)
    lock: TableLock = field(repr=False)

    @property
    def config(self) -> TableConfig:
        """The table's entry in the pipeline."""
        return self.pipeline.tables[self.table]

    @property
    def source_schema(self) -> str:
        """The MySQL schema."""
        return split_table_name(self.table)[0]

    @property
    def source_table(self) -> str:
        """The MySQL table name."""
        return split_table_name(self.table)[1]

    @property
    def scoped_name(self) -> str:
        """``SCOPE:schema.table``, the watermark's and the ledger's ``table_name``."""
        return f"{self.pipeline.source}:{self.table}"

    @property
    def stage_config(self) -> StageConfig:
        """The stage's settings."""
        return self.app.stage_for(self.pipeline)[1]

    @cached_property
    def data_prefix(self) -> str:
        """``<incremental_path>/<isolation_prefix>/<slug>/``: every data file of the table."""
        return table_data_prefix(
            self.stage_config.incremental_path,
            self.pipeline.s3.isolation_prefix,
            self.pipeline.source,
            self.source_schema,
            self.source_table,
        )

    def fresh(self) -> Watermark:
        """An empty document for this table (status pending everywhere)."""
        return Watermark(
            table_name=self.scoped_name,
            target=self.pipeline.target,
            cdc_strategy=self.config.cdc_strategy,
        )


def open_table_run(
    app: AppConfig, pipeline: PipelineConfig, table: str, execution_id: str
) -> TableRun:
    """Open ``table``: its stage client, its lock (owned by ``execution_id``), its watermark.

    Every watermark write first confirms the lock (:meth:`TableLock.confirm`).
    """
    schema, name = split_table_name(table)
    stage = ConnectionManager(app).stage(app.stage_for(pipeline)[0])
    lock = TableLock(
        stage,
        lock_key(pipeline.source, schema, name, pipeline.target),
        owner=execution_id,
        table=table,
    )
    watermarks = SimpleWatermarkManager(
        stage,
        watermark_key(pipeline.source, schema, name, pipeline.target),
        table_name=f"{pipeline.source}:{table}",
        target=pipeline.target,
        cdc_strategy=pipeline.tables[table].cdc_strategy,
        guard=lock.confirm,
    )
    return TableRun(app, pipeline, table, execution_id, stage, watermarks, lock)
