"""Checks that span table entries and files, made once when the configuration loads.

One file alone cannot show that two table entries end in the same target
table or share one watermark document, nor that a name is too long for the
target it is loaded into. Each of these lost or mixed rows silently before
(issue #9): two names that differ only after PostgreSQL's 63rd byte became one
table; two entries of one source table and target overwrote each other's
watermark. Every problem names the file and the key, and for a clash both.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from src.config.settings import PipelineConfig, StageConfig, TargetConnection
from src.errors import ConfigError
from src.utils.naming import split_table_name, target_table_name
from src.utils.stage_keys import (
    MAX_KEY_BYTES,
    MAX_PATH_SEGMENT_BYTES,
    check_key_prefix,
    data_file_name,
    partition_path,
    table_data_prefix,
    watermark_key,
)

# The longest file name a run can give: the largest chunk and file numbers
# formatted, an execution id's suffix of 8 hex digits.
_SAMPLE_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_SAMPLE_EXECUTION_ID = "sync_20000101_000000_0123abcd"


@dataclass(frozen=True)
class Problem:
    """One configuration problem: ``file: path: message``."""

    file: str
    path: str
    message: str


def check_table_entries(
    pipelines: Iterable[tuple[str, PipelineConfig]],
    targets: Mapping[str, TargetConnection],
    stages: Mapping[str, StageConfig],
) -> list[Problem]:
    """Names, key lengths and owners of every table entry of every ``(file, pipeline)``."""
    problems: list[Problem] = []
    tables: dict[tuple[object, ...], str] = {}
    documents: dict[tuple[object, ...], str] = {}
    for file, pipeline in pipelines:
        target = targets.get(pipeline.target)
        stage_name = pipeline.s3_config or next(iter(stages), None)
        stage = stages.get(stage_name) if stage_name else None
        if target is None or stage is None:
            continue  # an unknown reference, reported where it is read
        try:
            check_key_prefix(pipeline.s3.isolation_prefix, "isolation_prefix")
            check_key_prefix(stage.incremental_path, "incremental_path")
        except ConfigError as exc:
            problems.append(Problem(file, "pipeline.s3.isolation_prefix", str(exc)))
            continue
        limit = target.capabilities.max_identifier_bytes
        for table, cfg in pipeline.tables.items():
            where = f"tables.{table}"
            try:
                schema, name = split_table_name(table)
                target_name = target_table_name(name, cfg.target_name, limit)
                _check_keys(pipeline, stage, schema, name)
            except ConfigError as exc:
                problems.append(Problem(file, where, str(exc)))
                continue
            owner = f"{file}: {where}"
            clash = _claim(tables, (*_target_identity(target), target_name), owner)
            if clash:
                problems.append(
                    Problem(
                        file,
                        where,
                        f"loads into the same target table {target.schema_}.{target_name} "
                        f"as {clash}; give one of them another target_name, or keep the "
                        "table in one pipeline",
                    )
                )
            doc = watermark_key(pipeline.source, schema, name, pipeline.target)
            clash = _claim(documents, (*_stage_identity(stage), doc), owner)
            if clash:
                problems.append(
                    Problem(
                        file,
                        where,
                        f"shares the watermark {doc} with {clash} (same source table, target "
                        f"'{pipeline.target}' and stage); two entries would overwrite each "
                        "other's progress: keep one of them",
                    )
                )
    return problems


def _claim(owners: dict[tuple[object, ...], str], key: tuple[object, ...], owner: str) -> str:
    """Record ``owner`` for ``key``; the earlier owner when there is one, else ``""``."""
    earlier = owners.setdefault(key, owner)
    return "" if earlier == owner else earlier


def _target_identity(target: TargetConnection) -> tuple[object, ...]:
    """What makes two target connections one database schema."""
    return (target.host.lower(), target.effective_port, target.database, target.schema_)


def _stage_identity(stage: StageConfig) -> tuple[object, ...]:
    """What makes two stage configurations one place."""
    if stage.local_path is not None:
        return ("local", os.path.abspath(stage.local_path))
    return ("s3", stage.endpoint_url or "", stage.bucket_name)


def _check_keys(pipeline: PipelineConfig, stage: StageConfig, schema: str, table: str) -> None:
    """ConfigError when the longest key of a staged file or the watermark is too long."""
    prefix = table_data_prefix(
        stage.incremental_path, pipeline.s3.isolation_prefix, pipeline.source, schema, table
    )
    if pipeline.s3.partition_strategy == "datetime":
        prefix += partition_path(_SAMPLE_START.date())
    name = data_file_name(
        pipeline.source, schema, table, _SAMPLE_START, _SAMPLE_EXECUTION_ID, 99_999, 999
    )
    doc = watermark_key(pipeline.source, schema, table, pipeline.target)
    for key in (prefix + name, doc):
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise ConfigError(
                f"its staged file keys reach {size} bytes (e.g. {key[:60]}…), over S3's "
                f"{MAX_KEY_BYTES}-byte limit; shorten isolation_prefix or incremental_path"
            )
        if stage.is_local:
            longest = max(len(part.encode("utf-8")) for part in key.split("/"))
            if longest > MAX_PATH_SEGMENT_BYTES:
                raise ConfigError(
                    f"a part of its staged file paths is {longest} bytes, over the "
                    f"{MAX_PATH_SEGMENT_BYTES}-byte file name limit of a local stage; "
                    "shorten isolation_prefix or the names"
                )
