"""Typed, frozen settings models: the validated shape of the YAML configuration.

The :class:`~src.config.configuration_manager.ConfigurationManager` reads the YAML
files, substitutes variables and hands the plain data to these models once; from
then on the rest of the code only sees an immutable :class:`AppConfig`.
Every password and key is a :class:`pydantic.SecretStr` (SPEC §3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from src.config.capabilities import TargetCapabilities, capabilities
from src.config.credentials import RedshiftIam, SecretRef
from src.config.transport import MySQLTls, SSHTunnelConfig, TargetTls
from src.errors import ConfigError

# Keys the old tool carried but never used: accepted silently (SPEC §3.1 item 6).
LEGACY_KEYS = frozenset(
    {
        "cdc_settings",
        "sync_frequency",
        "monitoring",
        "performance",
        "validation",
        "alerts",
        "notifications",
        "retry",
        "schedule",
        "description",
        "tags",
        "owner",
        "metadata",
        "enabled",
        "priority",
        "timeout",
        "timeout_seconds",
    }
)

DEFAULT_CHUNK_SIZE = 100_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConnection(_Frozen):
    """A MySQL/MariaDB server; its key in ``connections.sources`` is the scope."""

    host: str
    port: int = 3306
    database: str | None = None
    username: str
    password: SecretStr | SecretRef = SecretStr("")  # or {secret: ARN, key: …}
    charset: str = "utf8mb4"
    connect_timeout: int = Field(10, gt=0)
    ssh_tunnel: SSHTunnelConfig = SSHTunnelConfig()
    tls: MySQLTls = MySQLTls()

    @field_validator("charset")
    @classmethod
    def _utf8mb4_only(cls, value: str) -> str:
        # Every session is utf8mb4 (SPEC §5): Arrow strings and Redshift VARCHAR are
        # UTF-8, so another connection charset could only garble text.
        if value.lower() != "utf8mb4":
            raise ValueError(
                "the backup reads MySQL in utf8mb4 only: remove the key or set utf8mb4"
            )
        return value


class TargetConnection(_Frozen):
    """A Redshift cluster or a PostgreSQL database that tables are loaded into."""

    type: Literal["redshift", "postgres"] = "redshift"
    host: str
    port: int | None = None
    database: str
    username: str
    password: SecretStr | SecretRef = SecretStr("")  # or {secret: ARN, key: …}
    schema_: str = Field("public", alias="schema")
    iam_role: str | None = None
    iam_auth: RedshiftIam | None = None  # temporary credentials instead of the password
    connect_timeout: int = Field(10, gt=0)
    ssh_tunnel: SSHTunnelConfig = SSHTunnelConfig()
    tls: TargetTls = TargetTls()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _iam_auth_on_redshift(self) -> TargetConnection:
        if self.iam_auth is not None and self.type != "redshift":
            raise ValueError("iam_auth asks Redshift for temporary credentials: type redshift only")
        return self

    @property
    def capabilities(self) -> TargetCapabilities:
        """What this kind of target can hold and do."""
        return capabilities(self.type)

    @property
    def effective_port(self) -> int:
        """The configured port, or the engine's default one."""
        if self.port is not None:
            return self.port
        return 5439 if self.type == "redshift" else 5432


class S3Performance(_Frozen):
    """Transfer tuning of the S3 stage (all optional; docs/configuration.md says what each does)."""

    multipart_threshold: int = 104_857_600
    multipart_chunksize: int = 52_428_800
    max_concurrency: int = 10
    max_pool_connections: int = 20
    retry_max_attempts: int = 3
    retry_mode: Literal["legacy", "standard", "adaptive"] = "adaptive"


class StageConfig(_Frozen):
    """Where staged files and watermarks live: an S3 bucket or a local directory."""

    bucket_name: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    endpoint_url: str | None = None
    incremental_path: str = "incremental/"
    local_path: str | None = None
    performance: S3Performance = S3Performance()

    @model_validator(mode="after")
    def _one_kind(self) -> StageConfig:
        if bool(self.bucket_name) == bool(self.local_path):
            raise ValueError("set exactly one of bucket_name (S3) or local_path (local stage)")
        return self

    @property
    def is_local(self) -> bool:
        """True for a local stage directory instead of a bucket."""
        return self.local_path is not None


class BackupDefaults(_Frozen):
    """``backup:`` section of connections.yml."""

    batch_size: int | None = Field(None, gt=0)


class RetryConfig(_Frozen):
    """How often a run rides out a transient fault (a cut MySQL read or load) before giving up."""

    attempts: int = Field(3, ge=0)
    initial_wait_seconds: float = Field(1.0, ge=0)
    max_wait_seconds: float = Field(30.0, ge=0)

    def wait(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): doubling, capped."""
        return float(min(self.initial_wait_seconds * 2 ** (attempt - 1), self.max_wait_seconds))


class ProcessingConfig(_Frozen):
    """Chunking, parallelism and retry knobs (pipeline or table level)."""

    batch_size: int | None = Field(None, gt=0)
    max_parallel_tables: int | None = Field(None, gt=0)
    retries: RetryConfig | None = None


class PipelineS3Config(_Frozen):
    """How a pipeline lays out its files in the stage."""

    isolation_prefix: str = ""
    partition_strategy: Literal["table", "datetime"] = "table"
    compression: Literal["snappy", "zstd", "gzip", "none"] = "snappy"


CdcStrategy = Literal["hybrid", "timestamp_only", "id_only", "full_sync", "custom_sql"]


class TableConfig(_Frozen):
    """One table of a pipeline (after ``default_table_config`` is merged in)."""

    cdc_strategy: CdcStrategy = "hybrid"
    cdc_timestamp_column: str | None = None
    cdc_id_column: str | None = None
    timestamp_format: Literal["unix", "datetime", "auto"] = "auto"
    cdc_ordering: list[str] | None = None
    additional_where: str | None = None
    custom_query: str | None = None
    target_name: str | None = None
    write_mode: Literal["merge", "append"] | None = None
    primary_key: list[str] | None = None
    lookback_seconds: int = Field(0, ge=0)
    full_sync_mode: Literal["replace", "append", "paginate"] = "replace"
    # Rows whose cursor is NULL: read by key every run, fail the run, or leave them out.
    # Unset: resolve_null_cursor(). "warn" (an earlier release's) is "exclude".
    null_cursor: Literal["include", "error", "exclude"] | None = None
    decimal_overflow: Literal["error", "varchar"] = "error"
    oversize_text: Literal["error", "truncate"] = "error"
    zero_dates: Literal["null", "error"] = "null"
    nul_chars: Literal["strip", "error"] = "strip"
    # Reconciliation (verify): how a row deleted at the source leaves the target,
    # how much of a table one repair may delete, and what each sync checks.
    delete_mode: Literal["hard", "soft"] = "hard"
    max_delete_fraction: float = Field(0.05, ge=0, le=1)
    verify_after_load: Literal["none", "counts", "checksum"] = "counts"
    verify_after_load_fails: bool = False
    detect_deletes: bool = False
    processing: ProcessingConfig = ProcessingConfig()

    @field_validator("cdc_strategy", mode="before")
    @classmethod
    def _alias_strategy(cls, value: Any) -> Any:
        return "hybrid" if value == "timestamp_id" else value

    @field_validator("null_cursor", mode="before")
    @classmethod
    def _null_cursor_warn(cls, value: Any) -> Any:
        return "exclude" if value == "warn" else value

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _strategy_columns(self) -> TableConfig:
        needs = {
            "hybrid": ("cdc_timestamp_column", "cdc_id_column"),
            "timestamp_only": ("cdc_timestamp_column",),
            "id_only": ("cdc_id_column",),
            "custom_sql": ("custom_query",),
        }.get(self.cdc_strategy, ())
        missing = [k for k in needs if not getattr(self, k)]
        if missing:
            raise ValueError(f"cdc_strategy {self.cdc_strategy} needs {', '.join(missing)}")
        if self.cdc_strategy == "custom_sql" and not (
            self.cdc_timestamp_column or self.cdc_id_column
        ):
            raise ValueError("custom_sql needs cdc_timestamp_column or cdc_id_column to resume")
        if self.cdc_ordering is not None:
            # The keyset order is what makes a resumed run exact: it is not a free choice.
            required = {
                "hybrid": [self.cdc_timestamp_column, self.cdc_id_column],
                "timestamp_only": [self.cdc_timestamp_column],
                "id_only": [self.cdc_id_column],
            }.get(self.cdc_strategy)
            if required is None:
                raise ValueError(
                    f"cdc_ordering does not apply to {self.cdc_strategy} "
                    "(full_sync pages by primary key; custom_sql orders in its query)"
                )
            if self.cdc_ordering != required:
                raise ValueError(
                    f"cdc_ordering must be {required} for {self.cdc_strategy} "
                    "(the keyset order), or left out"
                )
        if self.lookback_seconds and self.write_mode == "append":
            raise ValueError("lookback_seconds re-reads rows and needs write_mode merge")
        if self.null_cursor == "include" and appends_rows(self):
            raise ValueError(
                "null_cursor: include reads the rows whose cursor is NULL again every run, "
                "which an append table would duplicate; use error or exclude"
            )
        return self


class PipelineConfig(_Frozen):
    """One ``config/pipelines/<name>.yml`` file; ``name`` is the file stem."""

    name: str
    display_name: str | None = None
    source: str
    target: str
    s3_config: str | None = None
    version: str | None = None
    processing: ProcessingConfig = ProcessingConfig()
    s3: PipelineS3Config = PipelineS3Config()
    tables: dict[str, TableConfig] = Field(default_factory=dict)


class AppConfig(_Frozen):
    """Everything the tool knows from its configuration files, validated once."""

    sources: dict[str, SourceConnection] = Field(default_factory=dict)
    targets: dict[str, TargetConnection] = Field(default_factory=dict)
    stages: dict[str, StageConfig] = Field(default_factory=dict)
    backup: BackupDefaults = BackupDefaults()
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    # BACKUP_BATCH_SIZE, read from the environment once at load time (SPEC §3.3).
    env_rows_per_file: Annotated[int | None, Field(gt=0)] = None
    # redshift_keys.json of the project root, parsed (entries are checked per table).
    redshift_keys: dict[str, Any] = Field(default_factory=dict)
    config_dir: str = "config"
    project_root: str = "."

    def stage_for(self, pipeline: PipelineConfig) -> tuple[str, StageConfig]:
        """The stage a pipeline uses: its ``s3_config``, or the first one configured."""
        name = pipeline.s3_config or next(iter(self.stages))
        return name, self.stages[name]

    def secret_values(self) -> list[str]:
        """Every non-empty secret value in the configuration (for log redaction)."""
        found: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, SecretStr):
                value = obj.get_secret_value()
                if value:
                    found.append(value)
            elif isinstance(obj, BaseModel):
                for name in type(obj).model_fields:
                    walk(getattr(obj, name))
            elif isinstance(obj, dict):
                for item in obj.values():
                    walk(item)
            elif isinstance(obj, list | tuple):
                for item in obj:
                    walk(item)

        walk(self)
        return found


def resolve_chunk_size(pipeline: PipelineConfig, table: TableConfig) -> tuple[int, str]:
    """Rows per SELECT chunk and where it came from (SPEC §3.3).

    Table ``processing.batch_size`` > pipeline ``processing.batch_size`` > 100000.
    """
    if table.processing.batch_size:
        return table.processing.batch_size, "table config"
    if pipeline.processing.batch_size:
        return pipeline.processing.batch_size, "pipeline config"
    return DEFAULT_CHUNK_SIZE, "system default"


def resolve_retries(pipeline: PipelineConfig, table: TableConfig) -> RetryConfig:
    """Table ``processing.retries`` > pipeline ``processing.retries`` > 3 retries from 1 s."""
    return table.processing.retries or pipeline.processing.retries or RetryConfig()


def resolve_rows_per_file(
    app: AppConfig, pipeline: PipelineConfig, table: TableConfig
) -> tuple[int, str]:
    """Rows per Parquet file and where it came from (SPEC §3.3).

    ``BACKUP_BATCH_SIZE`` env > ``connections.yml backup.batch_size`` > chunk size.
    """
    if app.env_rows_per_file:
        return app.env_rows_per_file, "BACKUP_BATCH_SIZE"
    if app.backup.batch_size:
        return app.backup.batch_size, "connections.yml backup.batch_size"
    size, _ = resolve_chunk_size(pipeline, table)
    return size, "chunk size"


def appends_rows(table: TableConfig) -> bool:
    """True when every row read is appended (re-extracted rows would be duplicates)."""
    return table.write_mode == "append" or (
        table.cdc_strategy == "full_sync" and table.full_sync_mode == "append"
    )


def resolve_null_cursor(table: TableConfig) -> Literal["include", "error", "exclude"]:
    """What happens to rows whose cursor column is NULL (no cursor can ever reach them).

    Set: as set. Unset: ``include`` (read by key every run, so every row arrives)
    where rows read again replace themselves, ``error`` for an append table, which
    would duplicate them: a run never leaves rows behind with only a warning.
    """
    if table.null_cursor is not None:
        return table.null_cursor
    return "error" if appends_rows(table) else "include"


def resolve_write_mode(table: TableConfig, primary_key: Sequence[str], qualified: str) -> str:
    """How loaded rows meet the target's: ``merge``, ``append`` or ``replace`` (SPEC §6).

    ``full_sync`` follows its ``full_sync_mode``; otherwise ``write_mode``, which
    defaults to ``merge``. A table with no primary key (none in MySQL, none
    configured) is never appended silently: it needs an explicit
    ``write_mode: append``, since every update would become another row.
    """
    if table.cdc_strategy == "full_sync":
        return {"replace": "replace", "append": "append"}.get(table.full_sync_mode, "merge")
    if table.write_mode == "append":
        return "append"
    if not primary_key:
        wanted = "write_mode merge" if table.write_mode == "merge" else "a merge"
        raise ConfigError(
            f"table {qualified} has no primary key (none in MySQL, none configured), so "
            f"{wanted} cannot match its rows: set primary_key to its unique key columns, "
            "or write_mode: append to append every row read (updates become new rows)"
        )
    return "merge"
