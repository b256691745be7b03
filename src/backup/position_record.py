"""What the watermark records with each staged file: where the run stood after its last row.

One run may walk up to two keysets, one after the other: the cursor walk (or a
hybrid table's first pass in primary-key order) and the ``null_cursor:
include`` pass. A file's position says which walk wrote it
(:class:`src.backup.null_cursor_pass.NullPassPosition`); the fields recorded
with it are the cursor walk's position, the first pass's and the NULL pass's
progress, and whether the rows at the position's timestamp may still change
(``group_open``). The same fields go into the file's footer, from which
``watermark rebuild`` recovers a lost document.
"""

from __future__ import annotations

from typing import Any

from src.backup.boundary import advances, left_open
from src.backup.keyset import Position
from src.backup.null_cursor_pass import NullCursorPass, NullPassPosition
from src.backup.parquet_sink import StagedFile
from src.backup.plan import BackupPlan
from src.backup.primary_key_pass import PrimaryKeyPass
from src.core.simple_watermark_manager import FileCheck, Watermark, utc_now_iso


class PositionRecord:
    """Builds the watermark fields a staged file is recorded with, and writes them."""

    def __init__(
        self,
        plan: BackupPlan,
        wm: Watermark,
        pk_pass: PrimaryKeyPass | None,
        null_pass: NullCursorPass | None,
    ) -> None:
        self.plan = plan
        self.strategy = plan.strategy
        self.pk_pass = pk_pass
        self.null_pass = null_pass
        self.before = wm.mysql_state.model_copy()
        self.before_null_pass = wm.metadata.null_pass
        strategy = self.strategy
        self.recorded = Position(  # the watermark's own position (a lookback starts behind it)
            strategy.ts_from_watermark(self.before.last_timestamp),
            strategy.key_from_watermark(self.before.last_id, self.before.last_key)
            if strategy.key_cols
            else (),
        )
        # The cursor walk's last position, once it has written a row and ended.
        self.walk_end: Position | None = None

    def fields(self, position: Position) -> dict[str, Any]:
        """The watermark's fields once the file ending at ``position`` is recorded."""
        null_pass = self.before_null_pass
        if isinstance(position, NullPassPosition):
            assert self.null_pass is not None
            null_pass = self.null_pass.stored(position)
            if self.walk_end is None:  # the cursor walk read nothing: its fields stay
                return {**self._kept(), "null_pass": null_pass}
            position = self.walk_end
        fields = {**self._kept(), "null_pass": null_pass}
        before, strategy = self.before, self.strategy
        if self.pk_pass is not None:
            fields["initial_pass"] = self.pk_pass.stored(position)
        elif advances(position, self.recorded, self.plan.start):
            # A lookback run re-reads rows before the watermark: never move it backwards.
            last_ts, last_id = strategy.watermark_values(position)
            if last_ts is not None:
                fields["last_timestamp"] = last_ts
            if last_id is not None:
                fields["last_id"] = last_id
            fields["last_key"] = strategy.watermark_key(position)
            fields["group_open"] = left_open(
                strategy, position, self.plan.start, self.plan.window.now, before.group_open
            )
        return fields

    def _kept(self) -> dict[str, Any]:
        before = self.before
        return {
            "last_timestamp": before.last_timestamp,
            "last_id": before.last_id,
            "last_key": before.last_key,
            "group_open": before.group_open,
            "initial_pass": None,
        }

    @staticmethod
    def apply(doc: Watermark, fields: dict[str, Any], staged: StagedFile, session: int) -> None:
        """Record a staged file in ``doc`` (``session``: the run's rows so far)."""
        uri, rows = staged.uri, staged.rows
        state = doc.mysql_state
        doc.metadata.initial_pass = fields["initial_pass"]
        doc.metadata.null_pass = fields["null_pass"]
        state.last_timestamp, state.last_id = fields["last_timestamp"], fields["last_id"]
        state.last_key, state.group_open = fields["last_key"], fields["group_open"]
        doc.backup_s3_files.append(uri)
        doc.file_checks[uri] = FileCheck(sha256=staged.sha256, etag=staged.etag)
        state.total_rows += rows
        state.last_session_rows = session
        state.last_session_files += 1
        state.last_updated = utc_now_iso()
