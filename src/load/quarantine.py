"""Staged files the load cannot read: set aside, never a dead end.

A truncated or damaged Parquet file would otherwise fail every load of its
table until an operator reset the watermark. Instead the load moves it from
``backup_s3_files`` to ``quarantined_s3_files`` with the backup position of
that moment (every row of the file is at or below it), loads the table's
other files and ends the run with a data error (exit 4) that names the file
and the command that re-extracts its rows: ``verify --repair`` compares the
table by key up to the watermark and re-extracts what is missing or stale,
then releases the entries its comparison covered. The object itself stays in
the stage for inspection; ``s3clean`` keeps it until it is released.
"""

from __future__ import annotations

from typing import Any

from src.core.simple_watermark_manager import QuarantinedFile, Watermark
from src.errors import CorruptStagedFile, DataError
from src.utils.logging_setup import get_logger

log = get_logger("load")


def set_aside(
    wm: Watermark, exc: CorruptStagedFile, table: str, position: dict[str, Any] | None
) -> QuarantinedFile:
    """Move ``exc.uri`` from the files awaiting load to the quarantined ones.

    ``position``: a footer position no row of the file is above (its own when only
    its pages are damaged, else a later file's); None: the watermark's.
    """
    if position is None:
        state = wm.mysql_state
        position = {
            "last_timestamp": state.last_timestamp,
            "last_id": state.last_id,
            "initial_pass": wm.metadata.initial_pass,
        }
    first_pass = position.get("initial_pass")
    below: dict[str, Any] = {
        # A first run in primary-key order reads rows up to its bound "hi".
        "last_timestamp": first_pass["hi"] if first_pass else position.get("last_timestamp"),
        "last_id": None if first_pass else position.get("last_id"),
    }
    entry = QuarantinedFile(file=exc.uri, error=exc.reason, below=below)
    wm.backup_s3_files = [u for u in wm.backup_s3_files if u != exc.uri]
    wm.file_checks.pop(exc.uri, None)
    wm.quarantined_s3_files.append(entry)
    log.error("staged file quarantined", table=table, file=exc.uri, error=exc.reason)
    return entry


def quarantine_error(
    table: str, pipeline: str, entries: list[QuarantinedFile], loaded: int, replace: bool
) -> DataError:
    """The run's error once ``entries`` were set aside and ``loaded`` other files loaded."""
    names = ", ".join(f"{e.file} ({e.error})" for e in entries)
    what = "staged file is" if len(entries) == 1 else f"{len(entries)} staged files are"
    if replace:
        then = (
            "the snapshot they belong to is incomplete, so the target was not replaced; "
            f"the next 'sync pipeline -p {pipeline} -t {table}' takes a new snapshot"
        )
    else:
        then = (
            f"the other {loaded} files were loaded; re-extract the quarantined rows with "
            f"'verify -p {pipeline} -t {table} --repair'"
        )
    return DataError(f"{what} unreadable and quarantined: {names}; {then}")


def warn_if_quarantined(wm: Watermark, table: str, pipeline: str) -> None:
    """Each run reminds the operator of rows still to re-extract."""
    if wm.quarantined_s3_files:
        log.warning(
            "quarantined staged files await re-extraction",
            table=table,
            files=len(wm.quarantined_s3_files),
            command=f"verify -p {pipeline} -t {table} --repair",
        )
