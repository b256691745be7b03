"""Load, substitute, check and freeze the configuration (SPEC §3).

Order: ``.env`` (never overriding the real environment) → ``connections.yml``
→ ``pipelines/*.yml`` → optional ``environments/<BACKUP_ENVIRONMENT>.yml``
deep-merged over every pipeline. ``${VAR}`` substitution happens after YAML
parsing, in string values only, from an allowlist of prefixes, and fails
closed. Every problem in every file is collected and reported at once as
``file: key.path: problem``. Nothing is written to ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from src.config.config_checks import check_table_entries
from src.config.config_input import MAX_FILE_BYTES, MAX_VALUES, expanded_size, substitute
from src.config.config_validation import (
    Problems,
    deep_merge,
    validate,
    validate_each,
    warn_unknown_keys,
)
from src.config.redshift_keys import KEYS_FILE, entry_problems, load_keys_file
from src.config.settings import (
    AppConfig,
    BackupDefaults,
    PipelineConfig,
    SourceConnection,
    StageConfig,
    TableConfig,
    TargetConnection,
)
from src.errors import ConfigError


@dataclass(frozen=True)
class LoadedConfig:
    """The validated configuration plus the warnings found while loading it."""

    app: AppConfig
    warnings: tuple[str, ...] = ()


class ConfigurationManager:
    """Reads a config directory into a frozen :class:`AppConfig` (see module doc)."""

    def __init__(
        self,
        config_dir: str | os.PathLike[str] | None = None,
        env_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        real_env = dict(os.environ if environ is None else environ)
        dotenv_path = Path(env_file) if env_file else Path(".env")
        if env_file and not dotenv_path.is_file():
            raise ConfigError(f"--env-file {dotenv_path}: file not found")
        # Literal values: python-dotenv would expand ${X} inside .env from the process
        # environment, around the allowlist (and turn "ab${HOME}cd" into "ab/rootcd").
        from_file = dotenv_values(dotenv_path, interpolate=False) if dotenv_path.is_file() else {}
        # The real environment wins over .env (SPEC §3.1 item 1).
        self.env: dict[str, str] = {k: v for k, v in from_file.items() if v is not None}
        self.env.update(real_env)
        chosen = config_dir or self.env.get("BACKUP_CONFIG_DIR") or "config"
        self.config_dir = Path(chosen)

    # ------------------------------------------------------------------ public
    def load(self) -> LoadedConfig:
        """Read every file, report all problems together, return the frozen config."""
        problems = Problems()
        if not self.config_dir.is_dir():
            raise ConfigError(f"config directory {self.config_dir} not found (use --config-dir)")
        conn_raw = self._read_yaml("connections.yml", problems, required=True)
        sources, targets, stages, backup = self._connections(conn_raw, problems)
        overlay = self._overlay(problems)
        pipelines: dict[str, PipelineConfig] = {}
        files: list[tuple[str, PipelineConfig]] = []
        for path in sorted((self.config_dir / "pipelines").glob("*.yml")):
            rel = f"pipelines/{path.name}"
            raw = self._read_yaml(rel, problems)
            if raw is None:
                continue
            if overlay:
                raw = deep_merge(raw, overlay)
            pipeline = self._pipeline(path.stem, rel, raw, problems)
            if pipeline is not None:
                self._check_references(rel, pipeline, sources, targets, stages, problems)
                pipelines[path.stem] = pipeline
                files.append((rel, pipeline))
        for found in check_table_entries(files, targets, stages):
            problems.error(found.file, found.path, found.message)
        env_rows = self._env_rows_per_file(problems)
        keys = self._redshift_keys(problems)
        if problems.errors:
            count = len(problems.errors)
            raise ConfigError(
                f"invalid configuration ({count} problem{'s' if count > 1 else ''}):\n  "
                + "\n  ".join(problems.errors)
            )
        app = AppConfig(
            sources=sources,
            targets=targets,
            stages=stages,
            backup=backup,
            pipelines=pipelines,
            env_rows_per_file=env_rows,
            config_dir=str(self.config_dir),
            project_root=str(self.config_dir.resolve().parent),
            redshift_keys=keys,
        )
        return LoadedConfig(app=app, warnings=tuple(problems.warnings))

    # ---------------------------------------------------------------- reading
    def _read_yaml(self, rel: str, problems: Problems, required: bool = False) -> Any:
        path = self.config_dir / rel
        if not path.is_file():
            if required:
                problems.error(rel, "", f"file not found in {self.config_dir}")
            return None
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.error(
                rel,
                "",
                f"the file is {size:,} bytes; a configuration file may have {MAX_FILE_BYTES:,}",
            )
            return None
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
            problems.error(rel, where, f"invalid YAML: {exc.problem}")
            return None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.error(rel, "", f"invalid YAML: {exc}")
            return None
        if data is None:
            return {}
        if not isinstance(data, dict):
            problems.error(rel, "", "expected a mapping at the top level")
            return None
        if expanded_size(data, MAX_VALUES) > MAX_VALUES:
            problems.error(
                rel,
                "",
                f"the file expands to more than {MAX_VALUES:,} values through YAML aliases "
                "(an alias bomb?); write the values out, or share settings with "
                "default_table_config",
            )
            return None
        return substitute(data, self.env, rel, problems)

    def _overlay(self, problems: Problems) -> dict[str, Any] | None:
        env_name = self.env.get("BACKUP_ENVIRONMENT")
        if not env_name:
            return None
        rel = f"environments/{env_name}.yml"
        if not (self.config_dir / rel).is_file():
            problems.error(rel, "", f"BACKUP_ENVIRONMENT={env_name} but the overlay is missing")
            return None
        data = self._read_yaml(rel, problems)
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------- validating
    def _connections(
        self, raw: Any, problems: Problems
    ) -> tuple[
        dict[str, SourceConnection],
        dict[str, TargetConnection],
        dict[str, StageConfig],
        BackupDefaults,
    ]:
        file = "connections.yml"
        raw = raw if isinstance(raw, dict) else {}
        warn_unknown_keys(raw, {"connections", "s3_configs", "backup"}, file, "", problems)
        conns = raw.get("connections") or {}
        warn_unknown_keys(conns, {"sources", "targets"}, file, "connections", problems)
        sources = validate_each(
            SourceConnection, conns.get("sources"), file, "connections.sources", problems
        )
        targets = validate_each(
            TargetConnection, conns.get("targets"), file, "connections.targets", problems
        )
        stages = validate_each(StageConfig, raw.get("s3_configs"), file, "s3_configs", problems)
        backup = validate(BackupDefaults, raw.get("backup") or {}, file, "backup", problems)
        return sources, targets, stages, backup or BackupDefaults()

    def _pipeline(
        self, stem: str, file: str, raw: dict[str, Any], problems: Problems
    ) -> PipelineConfig | None:
        warn_unknown_keys(raw, {"pipeline", "tables"}, file, "", problems)
        section = dict(raw.get("pipeline") or {})
        defaults = section.pop("default_table_config", None) or {}
        section["display_name"] = section.pop("name", None)
        section["name"] = stem
        header = validate(PipelineConfig, section, file, "pipeline", problems)
        tables_raw = raw.get("tables") or {}
        if not isinstance(tables_raw, dict):
            problems.error(file, "tables", "expected a mapping of schema.table entries")
            return None
        tables: dict[str, TableConfig] = {}
        for name, entry in tables_raw.items():
            merged = deep_merge(defaults, entry or {})
            table = validate(TableConfig, merged, file, f"tables.{name}", problems)
            if "." not in str(name):
                problems.error(file, f"tables.{name}", "table names are schema.table")
            elif table is not None:
                tables[str(name)] = table
        if header is None:
            return None
        return header.model_copy(update={"tables": tables})

    def _check_references(
        self,
        file: str,
        pipeline: PipelineConfig,
        sources: Mapping[str, Any],
        targets: Mapping[str, TargetConnection],
        stages: Mapping[str, StageConfig],
        problems: Problems,
    ) -> None:
        def known(kind: str, value: str, names: Mapping[str, Any], key: str) -> bool:
            if value in names:
                return True
            listed = ", ".join(sorted(names)) or "none configured"
            problems.error(file, key, f"unknown {kind} '{value}' (known: {listed})")
            return False

        known("source", pipeline.source, sources, "pipeline.source")
        target_ok = known("target", pipeline.target, targets, "pipeline.target")
        if pipeline.s3_config is not None:
            stage_ok = known("s3_config", pipeline.s3_config, stages, "pipeline.s3_config")
            stage_name = pipeline.s3_config
        elif stages:
            stage_ok, stage_name = True, next(iter(stages))
        else:
            problems.error(file, "pipeline.s3_config", "no s3_configs in connections.yml")
            return
        if target_ok and stage_ok:
            target = targets[pipeline.target]
            if target.type == "redshift" and stages[stage_name].is_local:
                problems.error(
                    file,
                    "pipeline.s3_config",
                    f"target '{pipeline.target}' is redshift and needs an S3 stage, "
                    f"but '{stage_name}' is a local_path stage",
                )

    def _redshift_keys(self, problems: Problems) -> dict[str, Any]:
        """``redshift_keys.json`` beside the config directory: not JSON is an error."""
        try:
            keys = load_keys_file(self.config_dir.resolve().parent / KEYS_FILE)
        except ConfigError as exc:
            problems.error(KEYS_FILE, "", str(exc).removeprefix(f"{KEYS_FILE}: "))
            return {}
        for table, problem in entry_problems(keys):
            problems.warnings.append(
                f"{KEYS_FILE}: {table}: {problem}; using DISTSTYLE AUTO SORTKEY AUTO"
            )
        return keys

    def _env_rows_per_file(self, problems: Problems) -> int | None:
        raw = self.env.get("BACKUP_BATCH_SIZE")
        if raw is None or raw == "":
            return None
        if not raw.isdigit() or int(raw) <= 0:
            problems.error("environment", "BACKUP_BATCH_SIZE", "must be a positive integer")
            return None
        return int(raw)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key written twice in one mapping.

    PyYAML keeps the last of the two silently (two entries of one table: the first
    one's settings vanish). Keys brought in by a ``<<`` merge may be overridden,
    as YAML means them to be.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                first = seen[key]
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first at line {first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)
