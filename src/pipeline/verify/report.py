"""The JSON contract of ``verify --json`` (and ``--json-output``), as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from src.errors import PartialFailure

TableStatus = Literal["equal", "different", "repaired", "not_ready", "skipped", "failed"]
# What each table status contributes to the exit code (failed: its error's code).
_STATUS_CODES = {"equal": 0, "repaired": 0, "skipped": 0, "different": 4, "not_ready": 4}


class KeyList(BaseModel):
    """How many keys of one kind, and the first 1,000 (primary-key column → value)."""

    count: int = 0
    keys: list[dict[str, Any]] = Field(default_factory=list)


class RepairReport(BaseModel):
    """What ``verify --repair`` did (or, with ``--dry-run``, would do)."""

    dry_run: bool = False
    rows_reextracted: int = 0
    files_staged: int = 0
    rows_loaded: int = 0
    rows_deleted: int = 0
    rows_marked_deleted: int = 0
    refused: str | None = None  # why deletions were not applied


class TableVerification(BaseModel):
    """One table's comparison."""

    status: TableStatus
    method: Literal["checksum", "stream", "counts", "none"] = "none"
    source_rows: int = 0
    target_rows: int = 0
    compared_up_to: dict[str, Any] = Field(default_factory=dict)
    missing_in_target: KeyList = Field(default_factory=KeyList)
    extra_in_target: KeyList = Field(default_factory=KeyList)
    different: KeyList = Field(default_factory=KeyList)
    not_synced_yet: int = 0
    # MySQL rows past the compared position (changed or added since the last sync).
    newer_rows: int = 0
    # MySQL rows whose cursor is NULL; compared only with null_cursor: include.
    null_cursor_rows: int = 0
    columns_compared: list[str] = Field(default_factory=list)
    segments_compared: int = 0
    rows_fetched: int = 0
    duration_seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    repair: RepairReport | None = None
    quarantine_released: int = 0  # quarantined staged files whose rows this run covered


class VerifyReport(BaseModel):
    """The whole ``verify`` run."""

    command: Literal["verify"] = "verify"
    pipeline: str
    status: Literal["equal", "different", "failed"] = "equal"
    exit_code: int = 0
    duration_seconds: float = 0.0
    tables: dict[str, TableVerification] = Field(default_factory=dict)

    def finish(self, seconds: float) -> VerifyReport:
        """Set the overall status and exit code from the tables'."""
        codes = {_STATUS_CODES.get(t.status, t.exit_code) for t in self.tables.values()} - {0}
        self.exit_code = (
            codes.pop() if len(codes) == 1 else (PartialFailure.exit_code if codes else 0)
        )
        if any(t.status == "failed" for t in self.tables.values()):
            self.status = "failed"
        elif self.exit_code:
            self.status = "different"
        self.duration_seconds = round(seconds, 3)
        return self
