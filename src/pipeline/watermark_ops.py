"""Inspect and repair table watermarks: the core of the ``watermark`` commands (SPEC §4, §8).

Reads never take the table's lock; every write (``set``, ``reset``) happens
while holding it, so a running sync makes the command fail with exit code 7
instead of interleaving with it. The load ledger in the target is never
touched here: it records what the target really holds, and keeps a file that
is already loaded from being loaded twice whatever the watermark says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from src.config.connection_registry import find_pipeline_for_table
from src.config.settings import AppConfig, TableConfig, appends_rows
from src.core.simple_watermark_manager import KeyValue, Watermark, utc_now_iso
from src.core.table_run import TableRun, open_table_run
from src.errors import ConfigError, DataError
from src.utils.naming import normalize_column_name
from src.utils.stage_keys import new_execution_id

if TYPE_CHECKING:
    from src.load.load_stage import TableLoad

_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
TIMESTAMP_FORMAT = "YYYY-MM-DD HH:MM:SS[.ffffff]"


def operation_id(purpose: str) -> str:
    """A lock owner for a manual operation, e.g. ``watermark_set_20250926_195438_2f01922d``."""
    return purpose + new_execution_id().removeprefix("sync")


def open_table(
    app: AppConfig, table: str, pipeline: str | None, purpose: str = "watermark"
) -> TableRun:
    """Resolve ``-t``/``-p`` (the pipeline auto-detected from the table) to an open table."""
    found = find_pipeline_for_table(app, table, pipeline)
    return open_table_run(app, found, table, operation_id(purpose))


# --------------------------------------------------------------------- get
@dataclass(frozen=True)
class WatermarkView:
    """A table's watermark as stored (or the empty one when none is stored yet)."""

    pipeline: str
    table: str
    location: str
    stored: bool
    watermark: Watermark
    resume: str

    def as_dict(self) -> dict[str, Any]:
        """The watermark document, JSON-ready."""
        return self.watermark.document()


def describe_resume(wm: Watermark, cfg: TableConfig) -> str:
    """Where the next backup run starts, in the operators' words."""
    if cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode != "paginate":
        return f"Next backup re-reads the whole table (full_sync {cfg.full_sync_mode})"
    state = wm.mysql_state
    first_pass = wm.metadata.initial_pass
    if first_pass is not None:
        last = first_pass.get("last_pk")
        where = "the start of the table" if last is None else f"primary key {last}"
        return (
            "Next backup resumes the first run, read in primary-key order, after "
            f"{where} (rows up to {display_timestamp(first_pass.get('hi'))}); then "
            "it continues incrementally"
        )
    uses_ts = cfg.cdc_strategy != "id_only"
    uses_id = cfg.cdc_strategy != "timestamp_only"
    parts = []
    if uses_ts and state.last_timestamp:
        parts.append(display_timestamp(state.last_timestamp))
    if uses_id and state.last_id is not None:
        parts.append(f"id {state.last_id}")
    if not parts:
        return "Next incremental backup starts at the beginning of the table"
    text = "Next incremental backup starts after: " + " / ".join(parts)
    if cfg.lookback_seconds and uses_ts and state.last_timestamp:
        text += f" (re-reading the last {cfg.lookback_seconds} s: lookback_seconds)"
    return text


def display_timestamp(value: str | None) -> str:
    """``2025-09-26T19:54:10.123456`` as operators write it: ``2025-09-26 19:54:10.123456``."""
    return value.replace("T", " ", 1) if value else "none"


def view_of(handle: TableRun, wm: Watermark, stored: bool) -> WatermarkView:
    return WatermarkView(
        handle.pipeline.name,
        handle.table,
        handle.watermarks.stage.uri(handle.watermarks.key),
        stored,
        wm,
        describe_resume(wm, handle.config),
    )


def get_watermark(app: AppConfig, table: str, pipeline: str | None) -> WatermarkView:
    """The table's watermark; a table never synced gets the empty (pending) document."""
    handle = open_table(app, table, pipeline)
    wm = handle.watermarks.read()  # the empty document when none is stored
    stored = handle.watermarks.exists()
    return view_of(handle, wm, stored)


# --------------------------------------------------------------------- set
def parse_timestamp(text: str) -> str:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` → the watermark's ISO form (microseconds)."""
    value = text.strip()
    try:
        if not _TIMESTAMP_RE.match(value):
            raise ValueError("wrong format")
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        reason = "" if str(exc) == "wrong format" else f" ({exc})"
        raise ConfigError(
            f"--timestamp {text!r} is not a valid timestamp{reason}: "
            f'write it as "{TIMESTAMP_FORMAT}", e.g. "2025-09-26 19:54:10.123456"'
        ) from None
    return moment.isoformat(timespec="microseconds")


@dataclass
class SetResult:
    """What ``watermark set`` changed."""

    view: WatermarkView
    before_timestamp: str | None
    before_id: KeyValue | None
    notes: list[str] = field(default_factory=list)


def _set_notes(
    cfg: TableConfig, timestamp: str | None, last_id: KeyValue | None, kept_id: KeyValue | None
) -> list[str]:
    notes = []
    if cfg.cdc_strategy == "hybrid" and timestamp is not None and last_id is None and kept_id:
        notes.append(
            f"the id stays {kept_id}: rows at exactly that timestamp with an id up to "
            f"{kept_id} are skipped; add --id 0 to include them all"
        )
    if cfg.cdc_strategy == "full_sync" and cfg.full_sync_mode != "paginate":
        notes.append(
            f"this table uses full_sync {cfg.full_sync_mode}: every run re-reads the whole "
            "table, so the position is recorded but not used"
        )
    elif timestamp is not None and (cfg.cdc_strategy == "id_only" or not cfg.cdc_timestamp_column):
        notes.append(f"this table uses {cfg.cdc_strategy}: the timestamp is recorded but not used")
    elif last_id is not None and cfg.cdc_strategy == "timestamp_only":
        notes.append("this table uses timestamp_only: the id is recorded but not used")
    return notes


def _refuse_beyond_source(app: AppConfig, handle: TableRun, wm: Watermark) -> None:
    """ConfigError when ``wm``'s position lies past the source's ``MAX(cursor)``."""
    from src.backup.backup_stage import TableBackup
    from src.backup.plan import BackupOptions

    backup = TableBackup(handle, BackupOptions(handle.execution_id))
    source = handle.pipeline.source
    with (
        backup.connections.source_endpoint(source) as endpoint,
        backup.connections.mysql(source, endpoint) as conn,
    ):
        try:
            plan = backup.plan(conn, wm)
        except DataError as exc:  # a value the key column cannot hold
            raise ConfigError(f"refused: {exc}; nothing was changed") from None
    ahead = backup.position_ahead(plan, wm)
    if ahead is not None:
        raise ConfigError(
            f"refused: the new position of {handle.table} is beyond the source ({ahead}), so "
            "no row would be read; nothing was changed (--force sets it anyway)"
        )


def _refuse_appending_twice(
    app: AppConfig, handle: TableRun, before: tuple[str | None, Any], wm: Watermark
) -> None:
    """ConfigError when an append table's position moves back over rows its target holds.

    Every row from the new position on is read again and appended: a second copy.
    """
    cfg = handle.config
    if not appends_rows(cfg):
        return
    (old_ts, old_id), new_ts, new_id = before, wm.mysql_state.last_timestamp, wm.mysql_state.last_id
    ids_back = isinstance(old_id, int) and isinstance(new_id, int) and new_id < old_id
    bound: Any
    if cfg.cdc_strategy != "id_only" and cfg.cdc_timestamp_column:
        if (
            old_ts is None
            or new_ts is None
            or new_ts > old_ts
            or (new_ts == old_ts and not ids_back)
        ):
            return
        column, bound = cfg.cdc_timestamp_column, dt.datetime.fromisoformat(new_ts)
    else:
        if old_id is None or new_id is None or new_id == old_id:
            return
        if isinstance(old_id, int) and isinstance(new_id, int) and not ids_back:
            return
        column, bound = cfg.cdc_id_column or "", new_id
    load = table_load(app, handle)
    with load.connect() as conn:
        # hybrid re-reads the rows at the timestamp past the id: counted whole (at most more)
        at_too = cfg.cdc_strategy == "hybrid"
        twice = load.target.rows_from(conn, normalize_column_name(column), bound, at_too)
        conn.rollback()
    if twice:
        raise ConfigError(
            f"refused: {handle.table} is loaded in append mode, and {twice:,} target rows lie "
            "past the new position: they would be appended a second time. Start over "
            f"with 'watermark reset -t {handle.table} --reinitialize' (it deletes them first), "
            "or pass --force to accept the duplicates; nothing was changed"
        )


def set_watermark(
    app: AppConfig,
    table: str,
    pipeline: str | None,
    *,
    timestamp: str | None,
    last_id: str | int | None,
    force: bool = False,
) -> SetResult:
    """Move the backup position; only what is given changes. Under the table's lock.

    ``last_id`` is kept as an integer when it reads as one, else as text (the
    key column's kind types it when a run reads it). A position past the
    source's ``MAX(cursor)`` is refused (it would read nothing, run after run)
    unless ``force``.
    """
    if timestamp is None and last_id is None:
        raise ConfigError("nothing to set: give --timestamp, --id or both")
    if isinstance(last_id, str) and re.fullmatch(r"-?\d+", last_id.strip()):
        last_id = int(last_id)
    if isinstance(last_id, int) and last_id < 0:
        raise ConfigError(f"--id {last_id} is negative: give an id of 0 or more")
    iso = parse_timestamp(timestamp) if timestamp is not None else None
    handle = open_table(app, table, pipeline, "watermark_set")
    with handle.lock:
        wm = handle.watermarks.read()
        before = (wm.mysql_state.last_timestamp, wm.mysql_state.last_id)
        if iso is not None:
            wm.mysql_state.last_timestamp = iso
        if last_id is not None:
            wm.mysql_state.last_id = last_id
        wm.metadata.initial_pass = None  # an operator's position ends any first pass
        wm.mysql_state.last_key = None  # unknown: rows at the given id are read again
        wm.mysql_state.group_open = False  # the operator's position is taken as it is
        if not force:
            _refuse_beyond_source(app, handle, wm)
            _refuse_appending_twice(app, handle, before, wm)
        wm.metadata.manual_override = True
        wm.metadata.manual_set_time = utc_now_iso()
        handle.watermarks.write(wm)
    notes = _set_notes(handle.config, iso, last_id, wm.mysql_state.last_id)
    return SetResult(view_of(handle, wm, True), before[0], before[1], notes)


# ------------------------------------------------------------------- reset
@dataclass
class ResetResult:
    """What ``watermark reset`` did."""

    view: WatermarkView
    dropped_awaiting: int = 0
    dropped_loaded: int = 0
    kept_awaiting: int = 0
    kept_loaded: int = 0
    was_unreadable: bool = False
    target_rows_deleted: int | None = None  # --reinitialize of an append table


def reset_question(handle: TableRun, preserve_files: bool, reinitialize: bool = False) -> str:
    """The confirmation question, with what the reset will do to this table."""
    text = (
        f"Reset the watermark of {handle.scoped_name} (target {handle.pipeline.target})? "
        "Both stages restart from the beginning of the table"
    )
    if preserve_files:
        text += "; the staged file lists are kept (files awaiting load are still loaded)"
    else:
        text += (
            "; the staged file lists are emptied (the files stay in the stage as orphans "
            "for 's3clean clean')"
        )
    if reinitialize and appends_rows(handle.config):
        text += ". This table is loaded in append mode: its target rows are DELETED first"
    elif appends_rows(handle.config):
        text += ". WARNING: this table is loaded in append mode, so re-extracted rows are "
        text += "appended again (duplicates) unless you empty the target table first"
    return text + "."


def reset_watermark(
    app: AppConfig,
    table: str,
    pipeline: str | None,
    *,
    preserve_files: bool,
    reinitialize: bool = False,
    confirm: Callable[[str], bool] | None = None,
    force: bool = False,
) -> ResetResult:
    """Reset both stages' positions and counts, under the table's lock.

    ``confirm`` (when given) is asked before anything changes; a ``False``
    answer raises :class:`ConfigError` (exit 1) with nothing changed. An
    unreadable document is replaced (that is the repair path), except with
    ``preserve_files``, whose file lists cannot be recovered from it.

    ``reinitialize`` starts the table over on both sides: for an append table
    the target's rows and the table's ledger rows are deleted first (one
    transaction), since re-extracted rows would be appended twice; a merge
    table keeps its rows (the re-extracted ones replace them by key).
    """
    if reinitialize and preserve_files:
        raise ConfigError("--reinitialize starts over: it cannot be used with --preserve-files")
    handle = open_table(app, table, pipeline, "watermark_reset")
    if appends_rows(handle.config) and not (reinitialize or force):
        load = table_load(app, handle)
        with load.connect() as conn:
            held = load.target.rows_from(conn)
            conn.rollback()
        if held:
            raise ConfigError(
                f"refused: {handle.table} is loaded in append mode and its target holds "
                f"{held:,} rows, which the re-extracted rows would be appended to a second "
                "time; add --reinitialize to delete them first, or --force to accept the "
                "duplicates; nothing was changed"
            )
    question = reset_question(handle, preserve_files, reinitialize)
    if confirm is not None and not confirm(question):
        raise ConfigError("reset not confirmed; nothing was changed (pass -y to skip the prompt)")
    with handle.lock:
        old: Watermark | None
        try:
            old = handle.watermarks.read()
        except DataError:
            if preserve_files:
                raise DataError(
                    f"the watermark of {handle.scoped_name} cannot be parsed, so its file lists "
                    "cannot be preserved; rerun without --preserve-files"
                ) from None
            old = None
        new = handle.fresh()
        result = ResetResult(view_of(handle, new, True), was_unreadable=old is None)
        if reinitialize and appends_rows(handle.config):
            # Before the watermark: a crash in between leaves no watermark and no
            # ledger rows, which the next run reads as a first run.
            result.target_rows_deleted = table_load(app, handle).clear_target()
        if old is not None:
            new.metadata.created_at = old.metadata.created_at
            if preserve_files:
                new.backup_s3_files = list(old.backup_s3_files)
                new.processed_s3_files = list(old.processed_s3_files)
                new.metadata.loaded_files_forgotten = old.metadata.loaded_files_forgotten
                new.metadata.forgotten_through = old.metadata.forgotten_through
                result.kept_awaiting = len(old.backup_s3_files)
                result.kept_loaded = old.loaded_files()
            else:
                result.dropped_awaiting = len(old.backup_s3_files)
                result.dropped_loaded = old.loaded_files()
        new.metadata.manual_override = True
        new.metadata.manual_set_time = utc_now_iso()
        handle.watermarks.write(new)
    return result


def table_load(app: AppConfig, handle: TableRun) -> TableLoad:
    """The load stage of a handle's table (ledger reads, clearing the target)."""
    from src.load.load_stage import TableLoad  # the target driver: only when asked
    from src.load.targets import make_dialect

    return TableLoad(handle, make_dialect(app, handle.pipeline))
