"""The JSON run report of ``sync pipeline`` and its completion markers (SPEC §9).

Every count is for this run only and every duration is measured. The report
file is written atomically (temp file, fsync, rename) so a wrapper never reads
half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from src.config.settings import AppConfig, PipelineConfig, StageConfig
from src.core.stage import S3Stage
from src.pipeline.sync_runner import SyncRun, TableOutcome
from src.utils.atomic import atomic_write
from src.utils.naming import key_part


def _table_result(outcome: TableOutcome) -> dict[str, Any]:
    backup, load = outcome.backup, outcome.load
    extracted = backup.rows if backup else 0
    loaded = load.rows if load else 0
    return {
        "status": outcome.status,
        "rows_processed": extracted if backup else loaded,
        "rows_extracted": extracted,
        "rows_loaded": loaded,
        "files_created": backup.files if backup else 0,
        "files_loaded": load.files if load else 0,
        "bytes_written": backup.bytes if backup else 0,
        "duration_seconds": round(outcome.seconds, 3),
        "watermark_before": outcome.watermark_before,
        "watermark_after": outcome.watermark_after,
        "completed_at": outcome.completed_at,
        "zero_dates_nulled": backup.zero_dates if backup else 0,
        "nul_chars_stripped": backup.nul_chars if backup else 0,
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
    }


def build_report(run: SyncRun) -> dict[str, Any]:
    """The report document of a finished run."""
    results = {name: _table_result(o) for name, o in run.outcomes.items()}
    failures = sum(1 for o in run.outcomes.values() if o.status != "success")
    successes = len(run.outcomes) - failures
    status = "success" if not failures else "failed" if not successes else "partial_success"
    end = run.end_time or run.start_time
    return {
        "execution_id": run.execution_id,
        "start_time": run.start_time.isoformat(),
        "end_time": end.isoformat(),
        "duration_seconds": round((end - run.start_time).total_seconds(), 3),
        "pipeline": run.pipeline,
        "mode": run.mode,
        "tables_requested": run.tables,
        "total_tables": len(run.tables),
        "table_results": results,
        "status": status,
        "exit_code": run.exit_code,
        "summary": {
            "success_count": successes,
            "failure_count": failures,
            "total_rows_processed": sum(r["rows_processed"] for r in results.values()),
            "total_files_created": sum(r["files_created"] for r in results.values()),
        },
    }


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
