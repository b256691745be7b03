"""``verify --repair``: mend what the comparison found, through the normal machinery.

Missing and different keys are re-extracted from MySQL by key into staged
files (:func:`src.backup.key_extract.extract_by_key`), which the normal load
puts in the target (ledger, merge); extra keys are deleted — or, with
``delete_mode: soft``, stamped in ``_deleted_at`` — in that same load
transaction. Deleting more than ``max_delete_fraction`` of the table's rows
needs ``--force``. Nothing is deleted unless the whole comparison and every
source read succeeded: the repair starts only after both.

The keys found are spooled to a temporary file, not held in memory.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from src.backup.key_extract import extract_by_key
from src.backup.keyset import decode_key_value, encode_key_value
from src.backup.row_based import RowBasedBackupStrategy
from src.core.table_run import TableRun
from src.core.table_schema import ColumnSpec
from src.load.deletions import Deletions
from src.load.load_stage import Connect, TableLoad
from src.load.targets.base import TargetDialect
from src.pipeline.verify.compare import Comparison
from src.pipeline.verify.report import RepairReport
from src.utils.faults import fault_point
from src.utils.logging_setup import get_logger

log = get_logger("verify")


class KeySpool:
    """Keys by kind (missing, extra, different) in a temporary file, read back in order."""

    def __init__(self, key: tuple[ColumnSpec, ...]) -> None:
        self.key = key
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

    def add(self, kind: str, keys: list[tuple[Any, ...]]) -> None:
        """Append ``keys`` of ``kind`` (the comparison's callback)."""
        for key in keys:
            self._file.write(json.dumps([kind, [encode_key_value(v) for v in key]]) + "\n")

    def keys(self, *kinds: str) -> Iterator[tuple[Any, ...]]:
        """Every spooled key of one of ``kinds``, as SQL binds it."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            kind, values = json.loads(line)
            if kind in kinds:
                yield tuple(decode_key_value(v, c) for v, c in zip(values, self.key, strict=True))
        self._file.seek(0, 2)

    def close(self) -> None:
        """Remove the file."""
        self._file.close()


@dataclass(frozen=True)
class RepairRequest:
    """What ``--repair`` may do."""

    dry_run: bool = False
    force: bool = False
    deletes_only: bool = False


def repair_table(
    run: TableRun,
    strategy: RowBasedBackupStrategy,
    comparison: Comparison,
    spool: KeySpool,
    dialect: TargetDialect,
    connect: Connect | None,
    request: RepairRequest,
    *,
    locked: bool = False,
    source_has: Callable[[list[tuple[Any, ...]]], set[tuple[Any, ...]]] | None = None,
) -> RepairReport:
    """Re-extract missing/different rows and remove extra ones, under the table's lock.

    ``locked``: the caller holds the lock already (a sync, or ``verify --repair``,
    which takes it before it compares). With ``request.deletes_only``
    (``--detect-deletes``) nothing is re-extracted. ``source_has(keys)``: which
    of ``keys`` MySQL holds now; an extra key the source has again by the time of
    the delete (re-inserted since the comparison) is kept.
    """
    cfg = run.config
    report = RepairReport(dry_run=request.dry_run)
    reload = 0 if request.deletes_only else comparison.missing.count + comparison.different.count
    extra = comparison.extra.count
    limit = cfg.max_delete_fraction * max(comparison.target_rows, 1)
    if extra and extra > limit and not request.force:
        report.refused = (
            f"{extra} rows are extra in the target, more than max_delete_fraction "
            f"{cfg.max_delete_fraction} of its {comparison.target_rows} rows compared: "
            "nothing was deleted; check the source, then rerun with --force"
        )
        extra = 0
    if request.dry_run:
        report.rows_reextracted = reload
        report.rows_deleted, report.rows_marked_deleted = (0, extra) if _soft(run) else (extra, 0)
        return report
    if not reload and not extra:
        return report
    key_names = [c.name for c in spool.key]
    with contextlib.nullcontext() if locked else run.lock:
        if reload:
            staged = extract_by_key(run, strategy, spool.keys("missing", "different"), key_names)
            report.rows_reextracted, report.files_staged = staged.rows, staged.files
        deletions = None
        if extra:
            fault_point("before_repair_delete")
            gone = list(spool.keys("extra"))
            if source_has is not None:
                back = source_has(gone)
                gone = [key for key in gone if key not in back]
        if extra and gone:
            deletions = Deletions(
                keys=gone,
                key_columns=tuple(c.target_name for c in spool.key),
                soft=_soft(run),
            )
        loaded = TableLoad(run, dialect, connect, deletions=deletions).run()
    report.rows_loaded = loaded.rows
    if deletions is not None and deletions.soft:
        report.rows_marked_deleted = loaded.deleted_rows
    else:
        report.rows_deleted = loaded.deleted_rows
    log.info("repaired", table=run.table, **report.model_dump(exclude_none=True))
    return report


def _soft(run: TableRun) -> bool:
    return run.config.delete_mode == "soft"
