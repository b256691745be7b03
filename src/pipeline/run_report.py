"""The JSON run report of ``sync pipeline`` and its completion markers.

The report is a pydantic model: :class:`RunReport` is the contract that cron
and Airflow wrappers read, and ``docs/run_report.schema.json`` is generated
from it (``scripts/gen_report_schema.py``; a test fails when it is stale).
Every count is for this run only and every duration is measured. The report
file is written atomically so a wrapper never reads half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from src.config.settings import AppConfig, PipelineConfig, StageConfig
from src.core.s3_stage import S3Stage
from src.core.simple_watermark_manager import KeyValue
from src.pipeline.sync_runner import SyncRun, TableOutcome
from src.pipeline.verify.report import TableVerification
from src.utils.atomic import atomic_write
from src.utils.naming import key_part

Count = Field(ge=0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Position(_Strict):
    """Where the backup stood (the watermark's ``last_timestamp`` / ``last_id``)."""

    last_timestamp: str | None = None
    last_id: KeyValue | None = None  # the text of a string, decimal or date key


class TableResult(_Strict):
    """One table's outcome in the run."""

    status: Literal["success", "failed"]
    rows_processed: int = Count
    rows_extracted: int = Count
    rows_loaded: int = Count
    files_created: int = Count
    files_loaded: int = Count
    bytes_written: int = Count
    duration_seconds: float = Field(ge=0)
    watermark_before: Position
    watermark_after: Position
    completed_at: str
    zero_dates_nulled: int = Count
    nul_chars_stripped: int = Count
    texts_truncated: int = Field(0, ge=0, description="values cut by oversize_text: truncate")
    files_repaired: int = Field(
        0, ge=0, description="files the ledger held but the watermark did not: recorded, not loaded"
    )
    files_superseded: int = Field(
        0, ge=0, description="full_sync replace: older snapshots recorded without loading"
    )
    retries: int = Field(
        0,
        ge=0,
        description="transient faults ridden out or retried: cut MySQL reads, load retries",
    )
    verification: TableVerification | None = Field(
        None, description="verify_after_load: the rows just loaded, compared (counts/checksum)"
    )
    deletes: TableVerification | None = Field(
        None, description="--detect-deletes / detect_deletes: keys compared, extra rows removed"
    )
    warnings: list[str] = Field(default_factory=list)
    error_type: str | None
    error_message: str | None


class Summary(_Strict):
    """Totals over the tables."""

    success_count: int = Count
    failure_count: int = Count
    total_rows_processed: int = Count
    total_files_created: int = Count


class RunReport(_Strict):
    """What ``sync pipeline --json-output`` writes."""

    model_config = ConfigDict(
        extra="forbid",
        title="sync pipeline run report",
        json_schema_extra={"$id": "s3-redshift-backup/run_report"},
    )

    execution_id: str = Field(pattern=r"^sync_[0-9]{8}_[0-9]{6}_[0-9a-f]{8}$")
    start_time: str = Field(json_schema_extra={"format": "date-time"})
    end_time: str = Field(json_schema_extra={"format": "date-time"})
    duration_seconds: float = Field(ge=0)
    pipeline: str
    mode: Literal["full", "backup_only", "redshift_only"]
    tables_requested: list[str]
    total_tables: int = Count
    table_results: dict[str, TableResult]
    status: Literal["success", "partial_success", "failed"]
    exit_code: Literal[0, 1, 2, 3, 4, 5, 6, 7]
    summary: Summary


def json_schema() -> dict[str, Any]:
    """The report's JSON Schema (what docs/run_report.schema.json holds)."""
    schema = RunReport.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _table_result(outcome: TableOutcome) -> TableResult:
    backup, load = outcome.backup, outcome.load
    extracted = backup.rows if backup else 0
    loaded = load.rows if load else 0
    return TableResult(
        status="success" if outcome.status == "success" else "failed",
        rows_processed=extracted if backup else loaded,
        rows_extracted=extracted,
        rows_loaded=loaded,
        files_created=backup.files if backup else 0,
        files_loaded=load.files if load else 0,
        bytes_written=backup.bytes if backup else 0,
        duration_seconds=round(outcome.seconds, 3),
        watermark_before=Position(**outcome.watermark_before),
        watermark_after=Position(**outcome.watermark_after),
        completed_at=outcome.completed_at,
        zero_dates_nulled=backup.zero_dates if backup else 0,
        nul_chars_stripped=backup.nul_chars if backup else 0,
        texts_truncated=backup.truncated if backup else 0,
        files_repaired=load.repaired_files if load else 0,
        files_superseded=load.superseded_files if load else 0,
        retries=(backup.retries if backup else 0) + (load.retries if load else 0),
        verification=outcome.verification,
        deletes=outcome.deletes,
        warnings=outcome.warnings,
        error_type=outcome.error_type,
        error_message=outcome.error_message,
    )


def build_report(run: SyncRun) -> dict[str, Any]:
    """The report document of a finished run (validated by :class:`RunReport`)."""
    results = {name: _table_result(o) for name, o in run.outcomes.items()}
    failures = sum(1 for r in results.values() if r.status != "success")
    successes = len(results) - failures
    status = "success" if not failures else "failed" if not successes else "partial_success"
    end = run.end_time or run.start_time
    report = RunReport(
        execution_id=run.execution_id,
        start_time=run.start_time.isoformat(),
        end_time=end.isoformat(),
        duration_seconds=round((end - run.start_time).total_seconds(), 3),
        pipeline=run.pipeline,
        mode=run.mode,
        tables_requested=run.tables,
        total_tables=len(run.tables),
        table_results=results,
        status=status,
        exit_code=run.exit_code,
        summary=Summary(
            success_count=successes,
            failure_count=failures,
            total_rows_processed=sum(r.rows_processed for r in results.values()),
            total_files_created=sum(r.files_created for r in results.values()),
        ),
    )
    return report.model_dump(mode="json")


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write the report atomically to ``path``."""
    target = Path(path)
    with atomic_write(target, prefix=f".{target.name}.") as handle:
        handle.write((json.dumps(report, indent=2, default=str) + "\n").encode("utf-8"))


def write_completion_markers(
    app: AppConfig, pipeline: PipelineConfig, bucket: str, report: dict[str, Any]
) -> list[str]:
    """``completion_markers/<YYYYMMDD>/sync_<table>_<SUCCESS|FAILED>`` and the pipeline's."""
    _, stage_cfg = app.stage_for(pipeline)
    if stage_cfg.is_local:
        # The marker bucket is reached with the pipeline stage's S3 settings; a local
        # stage has none, so only the endpoint-less default credentials are used.
        stage_cfg = StageConfig(bucket_name=bucket)
    stage = S3Stage("completion", stage_cfg.model_copy(update={"bucket_name": bucket}))
    day = report["start_time"][:10].replace("-", "")
    keys = []
    for table, result in report["table_results"].items():
        outcome = "SUCCESS" if result["status"] == "success" else "FAILED"
        key = f"completion_markers/{day}/sync_{key_part(table)}_{outcome}"
        stage.put_bytes(key, json.dumps({"table": table, **result}, default=str).encode())
        keys.append(key)
    outcome = "SUCCESS" if report["status"] == "success" else "FAILED"
    key = f"completion_markers/{day}/pipeline_{key_part(report['pipeline'])}_{outcome}"
    stage.put_bytes(key, json.dumps(report, default=str).encode())
    keys.append(key)
    return keys
