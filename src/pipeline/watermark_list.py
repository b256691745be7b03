"""``watermark list``: every table's two stages at a glance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from src.config.connection_registry import get_pipeline
from src.config.settings import AppConfig
from src.core.table_run import TableRun
from src.errors import DataError
from src.pipeline.watermark_ops import open_table


@dataclass(frozen=True)
class TableSummary:
    """One line of ``watermark list``."""

    pipeline: str
    table: str
    target: str
    stored: bool
    backup_status: str
    rows_extracted: int
    load_status: str
    rows_loaded: int
    files_awaiting: int
    files_loaded: int
    last_updated: str | None
    error: str | None = None
    files_quarantined: int = 0  # unreadable files set aside until 'verify --repair'

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _summary(handle: TableRun) -> TableSummary:
    name, target = handle.pipeline.name, handle.pipeline.target
    try:
        wm = handle.watermarks.read()  # the empty document when none is stored
        stored = handle.watermarks.exists()
    except DataError as exc:
        return TableSummary(
            name, handle.table, target, True, "unreadable", 0, "unreadable", 0, 0, 0, None, str(exc)
        )
    times = [
        t
        for t in (
            wm.mysql_state.last_updated,
            wm.redshift_state.last_updated,
            wm.metadata.manual_set_time,
        )
        if t
    ]
    error = wm.mysql_state.error or wm.redshift_state.error
    quarantined = len(wm.quarantined_s3_files)
    if quarantined and not error:
        error = f"{quarantined} quarantined staged files await 'verify --repair'"
    return TableSummary(
        name,
        handle.table,
        target,
        stored,
        wm.mysql_state.status,
        wm.mysql_state.total_rows,
        wm.redshift_state.status,
        wm.redshift_state.total_rows,
        len(wm.backup_s3_files),
        wm.loaded_files(),
        max(times) if times else None,
        error,
        quarantined,
    )


def list_watermarks(app: AppConfig, pipeline: str | None) -> list[TableSummary]:
    """Every table of ``pipeline`` (or of every pipeline): both stages at a glance.

    A document that cannot be parsed shows as ``unreadable`` instead of
    stopping the listing.
    """
    chosen = (
        [get_pipeline(app, pipeline)]
        if pipeline
        else [app.pipelines[n] for n in sorted(app.pipelines)]
    )
    rows = []
    for item in chosen:
        for table in sorted(item.tables):
            rows.append(_summary(open_table(app, table, item.name)))
    return rows
