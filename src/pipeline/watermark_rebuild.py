"""``watermark rebuild``: recreate a lost watermark from the ledger and the staged files.

Every staged file records, in its Parquet footer, the watermark position it
was recorded with; the target's ledger lists the files that are loaded. The
two together give back a document whose next run continues where the lost one
would have, without re-extracting the table (issue #9, item 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from src.config.settings import AppConfig
from src.core.simple_watermark_manager import utc_now_iso
from src.errors import ConfigError, DataError
from src.pipeline.watermark_ops import WatermarkView, open_table, table_load, view_of


@dataclass
class RebuildResult:
    """What ``watermark rebuild`` recovered."""

    view: WatermarkView
    loaded_files: int
    rows: int
    position_from: str


def rebuild_watermark(app: AppConfig, table: str, pipeline: str | None) -> RebuildResult:
    """Recreate a lost watermark from the target's ledger and the staged files' footers.

    The loaded files come from the ledger; the position is the one the newest
    of them that is still staged recorded in its footer (each file carries the
    watermark position it was recorded with). Refused when a readable
    watermark exists; a DataError when no loaded file is left to read it from.
    """
    from src.load.staged_files import read_footer

    handle = open_table(app, table, pipeline, "watermark_rebuild")
    with handle.lock:
        try:
            if handle.watermarks.exists():
                handle.watermarks.read()
                raise ConfigError(
                    f"{handle.scoped_name} has a watermark; rebuild only replaces a lost or "
                    "unreadable one ('watermark reset' starts over)"
                )
        except DataError:
            pass  # unreadable: rebuild replaces it
        loaded = table_load(app, handle).ledger_files()
        if not loaded:
            raise DataError(
                f"the target's ledger holds no loaded file for {handle.scoped_name}: there is "
                "nothing to rebuild from (a first sync starts from the beginning)"
            )
        stage = handle.watermarks.stage
        position, source = None, ""
        for uri, _rows in reversed(loaded):
            key = stage.key_of(uri)
            size = stage.size(key)
            if size is not None:
                position = read_footer(stage, key, size).position
            if position is not None:
                source = uri
                break
        if position is None:
            raise DataError(
                f"none of the {len(loaded)} files the ledger lists for {handle.scoped_name} is "
                "still in the stage with its position, so the position cannot be rebuilt; "
                f"start over with 'watermark reset -t {table} -p {handle.pipeline.name} "
                "--reinitialize'"
            )
        wm = handle.fresh()
        state = wm.mysql_state
        state.last_timestamp, state.last_id = position["last_timestamp"], position["last_id"]
        state.last_key = position.get("last_key")
        state.group_open = position.get("group_open", True)  # unknown: read the group again
        wm.metadata.initial_pass = position.get("initial_pass")
        wm.processed_s3_files = [uri for uri, _ in loaded]
        wm.forget_oldest_loaded()
        rows = sum(n for _, n in loaded)
        state.total_rows = wm.redshift_state.total_rows = rows
        state.status = wm.redshift_state.status = "success"
        wm.metadata.manual_override = True
        wm.metadata.manual_set_time = utc_now_iso()
        handle.watermarks.write(wm)
    return RebuildResult(view_of(handle, wm, True), len(loaded), rows, source)
