"""ConfigurationManager: loading order, substitution, validation messages (SPEC §3)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from src.config.configuration_manager import ConfigurationManager, LoadedConfig
from src.config.settings import resolve_chunk_size, resolve_rows_per_file
from src.errors import ConfigError

CONNECTIONS = """
connections:
  sources:
    SRC:
      host: db.internal
      port: 3306
      database: shop
      username: reader
      password: "{password}"
  targets:
    pg:
      type: postgres
      host: 127.0.0.1
      database: dw
      username: loader
      password: "${{DB_PG_PASSWORD:-pgpass}}"
      schema: public
    rs:
      type: redshift
      host: rs.internal
      database: dw
      username: loader
      iam_role: arn:aws:iam::123456789012:role/copy
s3_configs:
  s3_qa:
    bucket_name: qa-bucket
    region: us-west-2
  local:
    local_path: .stage
{extra}
"""

PIPELINE = """
pipeline:
  name: p
  source: {source}
  target: {target}
  s3_config: {stage}
  processing: {{batch_size: {pipeline_batch}}}
  default_table_config:
    cdc_strategy: hybrid
    cdc_timestamp_column: updated_at
    cdc_id_column: id
tables:
  shop.orders:
    processing: {{batch_size: 1000000}}
  shop.items: {{}}
"""


def write_config(
    root: Path,
    *,
    password: str = "${DB_SRC_PASSWORD:-secret}",
    extra: str = "",
    source: str = "SRC",
    target: str = "pg",
    stage: str = "local",
    pipeline_batch: int = 5000,
    pipeline_text: str | None = None,
) -> Path:
    config = root / "config"
    (config / "pipelines").mkdir(parents=True)
    (config / "connections.yml").write_text(CONNECTIONS.format(password=password, extra=extra))
    text = pipeline_text or PIPELINE.format(
        source=source, target=target, stage=stage, pipeline_batch=pipeline_batch
    )
    (config / "pipelines" / "p.yml").write_text(text)
    return config


def load(config: Path, environ: dict[str, str] | None = None, **kw: str) -> LoadedConfig:
    return ConfigurationManager(config, environ=environ or {}, **kw).load()


def errors_of(config: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(config, environ)
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def test_valid_config_loads_frozen_with_secrets(tmp_path: Path) -> None:
    app = load(write_config(tmp_path)).app
    src = app.sources["SRC"]
    assert src.password.get_secret_value() == "secret"
    assert "secret" not in repr(src)
    assert app.targets["pg"].password.get_secret_value() == "pgpass"
    with pytest.raises(Exception, match="frozen"):
        src.host = "other"  # type: ignore[misc]
    assert set(app.secret_values()) == {"secret", "pgpass"}


def test_variable_outside_allowlist(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${HOME}")
    assert errors_of(config, {"HOME": "/root"}) == [
        "connections.yml: connections.sources.SRC.password: variable HOME is not allowed here "
        "(names must start with one of BACKUP_, CONFIG_, DB_, DB2_, CONN_, SSH_, REDSHIFT_, "
        "MYSQL_, AWS_, S3_)"
    ]


def test_unset_variable_without_default(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_MISSING}")
    assert errors_of(config) == [
        "connections.yml: connections.sources.SRC.password: "
        "variable DB_MISSING is not set and has no default"
    ]


def test_default_used_and_environment_value_wins(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_PW:-fallback}")
    assert load(config).app.sources["SRC"].password.get_secret_value() == "fallback"
    app = load(config, {"DB_PW": "from-env"}).app
    assert app.sources["SRC"].password.get_secret_value() == "from-env"


def test_double_dollar_is_a_literal(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="pre$${DB_NOT_SUBSTITUTED}post")
    app = load(config, {"DB_NOT_SUBSTITUTED": "x"}).app
    assert app.sources["SRC"].password.get_secret_value() == "pre${DB_NOT_SUBSTITUTED}post"


def test_newline_value_is_rejected(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_PW}")
    assert errors_of(config, {"DB_PW": "a\nb"}) == [
        "connections.yml: connections.sources.SRC.password: variable DB_PW contains a newline"
    ]


def test_substitution_only_in_string_values_after_parsing(tmp_path: Path) -> None:
    # A value that looks like YAML must not change the document's structure.
    config = write_config(tmp_path, password="${DB_PW}")
    app = load(config, {"DB_PW": "x: [1, 2]"}).app
    assert app.sources["SRC"].password.get_secret_value() == "x: [1, 2]"


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, pipeline_text="pipeline:\n  name: p\n  source: [unclosed\n")
    assert errors_of(config) == [
        "pipelines/p.yml: line 4, column 1: invalid YAML: "
        "expected ',' or ']', but got '<stream end>'"
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"source": "NOPE"}, "pipeline.source: unknown source 'NOPE' (known: SRC)"),
        ({"target": "nope"}, "pipeline.target: unknown target 'nope' (known: pg, rs)"),
        ({"stage": "nope"}, "pipeline.s3_config: unknown s3_config 'nope' (known: local, s3_qa)"),
        (
            {"target": "rs", "stage": "local"},
            "pipeline.s3_config: target 'rs' is redshift and needs an S3 stage, "
            "but 'local' is a local_path stage",
        ),
    ],
)
def test_pipeline_references(tmp_path: Path, kwargs: dict[str, str], expected: str) -> None:
    assert errors_of(write_config(tmp_path, **kwargs)) == [f"pipelines/p.yml: {expected}"]


def test_redshift_target_with_s3_stage_is_fine(tmp_path: Path) -> None:
    app = load(write_config(tmp_path, target="rs", stage="s3_qa")).app
    assert app.targets["rs"].effective_port == 5439


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_MISSING}", source="NOPE")
    errors = errors_of(config)
    assert len(errors) == 2
    assert errors[0].startswith("connections.yml: connections.sources.SRC.password:")
    assert errors[1].startswith("pipelines/p.yml: pipeline.source: unknown source 'NOPE'")


def test_unknown_key_warns_with_suggestion_and_legacy_keys_are_silent(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5)
    text = text.replace("  shop.items: {}", "  shop.items: {cdc_stratgy: id_only}")
    text += "  shop.legacy: {sync_frequency: hourly, monitoring: {x: 1}}\n"
    loaded = load(write_config(tmp_path, pipeline_text=text))
    assert loaded.warnings == (
        "pipelines/p.yml: tables.shop.items.cdc_stratgy: unknown key ignored "
        "(did you mean 'cdc_strategy'?)",
    )
    assert "shop.legacy" in loaded.app.pipelines["p"].tables


def test_invalid_value_is_reported_with_key_path(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5)
    text = text.replace("  shop.items: {}", "  shop.items: {cdc_strategy: sometimes}")
    errors = errors_of(write_config(tmp_path, pipeline_text=text))
    assert len(errors) == 1
    assert errors[0].startswith("pipelines/p.yml: tables.shop.items.cdc_strategy: Input should be")


def test_source_charset_must_be_utf8mb4(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    connections = config / "connections.yml"
    text = connections.read_text()
    connections.write_text(
        text.replace(
            "      username: reader\n", "      username: reader\n      charset: latin1\n", 1
        )
    )
    assert errors_of(config)[0] == (
        "connections.yml: connections.sources.SRC.charset: "
        "the backup reads MySQL in utf8mb4 only: remove the key or set utf8mb4"
    )
    connections.write_text(
        text.replace(
            "      username: reader\n", "      username: reader\n      charset: UTF8MB4\n", 1
        )
    )
    assert load(config).app.sources["SRC"].charset == "UTF8MB4"


def test_three_levels_of_chunk_size(tmp_path: Path) -> None:
    app = load(write_config(tmp_path)).app
    pipeline = app.pipelines["p"]
    assert resolve_chunk_size(pipeline, pipeline.tables["shop.orders"]) == (
        1_000_000,
        "table config",
    )
    assert resolve_chunk_size(pipeline, pipeline.tables["shop.items"]) == (5000, "pipeline config")
    bare = pipeline.model_copy(
        update={"processing": pipeline.processing.model_copy(update={"batch_size": None})}
    )
    assert resolve_chunk_size(bare, bare.tables["shop.items"]) == (100_000, "system default")


def test_rows_per_file_resolution(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="backup:\n  batch_size: 200000\n")
    app = load(config).app
    pipeline = app.pipelines["p"]
    table = pipeline.tables["shop.items"]
    assert resolve_rows_per_file(app, pipeline, table) == (
        200_000,
        "connections.yml backup.batch_size",
    )
    app = load(config, {"BACKUP_BATCH_SIZE": "300000"}).app
    assert resolve_rows_per_file(app, pipeline, table) == (300_000, "BACKUP_BATCH_SIZE")
    app = load(write_config(tmp_path / "other")).app
    assert resolve_rows_per_file(app, app.pipelines["p"], table) == (5000, "chunk size")


def test_dotenv_never_overrides_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_PW}")
    env_file = tmp_path / "custom.env"
    env_file.write_text("DB_PW=from-dotenv\n")
    app = load(config, {}, env_file=str(env_file)).app
    assert app.sources["SRC"].password.get_secret_value() == "from-dotenv"
    app = load(config, {"DB_PW": "from-environment"}, env_file=str(env_file)).app
    assert app.sources["SRC"].password.get_secret_value() == "from-environment"


def test_environment_overlay_is_deep_merged(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (config / "environments").mkdir()
    (config / "environments" / "prod.yml").write_text(
        textwrap.dedent(
            """
            pipeline:
              processing: {batch_size: 7777}
            tables:
              shop.items: {lookback_seconds: 60}
            """
        )
    )
    app = load(config, {"BACKUP_ENVIRONMENT": "prod"}).app
    pipeline = app.pipelines["p"]
    assert pipeline.processing.batch_size == 7777
    assert pipeline.tables["shop.items"].lookback_seconds == 60
    # The overlay adds to, but does not replace, the table's own settings.
    assert pipeline.tables["shop.items"].cdc_timestamp_column == "updated_at"
    assert pipeline.tables["shop.orders"].processing.batch_size == 1_000_000


def test_strategy_alias_and_required_columns(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5)
    text = text.replace(
        "  shop.items: {}", "  shop.items: {cdc_strategy: timestamp_id, cdc_id_column: null}"
    )
    errors = errors_of(write_config(tmp_path, pipeline_text=text))
    assert errors == ["pipelines/p.yml: tables.shop.items: cdc_strategy hybrid needs cdc_id_column"]


def test_shipped_demo_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    app = load(root / "config").app
    assert "demo_pipeline" in app.pipelines


# ------------------------------------------------------------- input limits (#12)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 8):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        levels.append(f"a{n}: &a{n} [{refs}]")
    text = PIPELINE.format(
        source="SRC", target="pg", stage="local", pipeline_batch=5000
    ) + "\n".join(["bomb:", *("  " + line for line in levels)])
    config = write_config(tmp_path, pipeline_text=text)
    started = time.perf_counter()
    errors = errors_of(config)
    assert time.perf_counter() - started < 2
    assert len(errors) == 1 and errors[0].startswith("pipelines/p.yml: ")
    assert "more than 100,000 values through YAML aliases" in errors[0]


def test_a_table_written_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: the first entry's settings would vanish."""
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5000)
    text += "  shop.items:\n    write_mode: append\n"
    (line,) = errors_of(write_config(tmp_path, pipeline_text=text))
    first = text.splitlines().index("  shop.items: {}") + 1
    assert line.startswith("pipelines/p.yml: line ") and "invalid YAML: key 'shop.items'" in line
    assert f"appears twice in one mapping (first at line {first})" in line, line


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5000)
    text = text.replace(
        "  shop.items: {}",
        "  shop.items: &base {write_mode: merge, lookback_seconds: 5}\n"
        "  shop.more: {<<: *base, lookback_seconds: 9}",
    )
    tables = load(write_config(tmp_path, pipeline_text=text)).app.pipelines["p"].tables
    assert tables["shop.more"].lookback_seconds == 9


def test_a_shared_anchor_is_still_fine(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5000)
    text = text.replace("  shop.items: {}", "  shop.items: &same {}\n  shop.more: *same")
    assert set(load(write_config(tmp_path, pipeline_text=text)).app.pipelines["p"].tables) == {
        "shop.orders",
        "shop.items",
        "shop.more",
    }


def test_oversized_file_and_names_are_refused(tmp_path: Path) -> None:
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5000)
    config = write_config(tmp_path, pipeline_text=text + "#" * 1_100_000 + "\n")
    (error,) = errors_of(config)
    assert error.startswith("pipelines/p.yml: ") and "a configuration file may have" in error
    long_name = "x" * 10_000_000
    text = text.replace("  shop.items: {}", f"  shop.items: {{target_name: {long_name}}}")
    (config / "pipelines" / "p.yml").write_text(text)
    (error,) = errors_of(config)
    assert "a configuration file may have" in error  # 10 MB: refused before parsing
    text = PIPELINE.format(source="SRC", target="pg", stage="local", pipeline_batch=5000)
    text = text.replace("  shop.items: {}", f"  shop.items: {{target_name: {'y' * 5000}}}")
    (config / "pipelines" / "p.yml").write_text(text)
    (error,) = errors_of(config)
    assert "over the target's 63-byte limit" in error and len(error) < 600
    text = text.replace(f"{{target_name: {'y' * 5000}}}", "{}").replace(
        "shop.items", "s." + "t" * 65
    )
    (config / "pipelines" / "p.yml").write_text(text)
    (error,) = errors_of(config)
    assert "MySQL names have at most 64" in error and len(error) < 600


def test_env_file_values_are_literal(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_SRC_PASSWORD}")
    env_file = tmp_path / ".env"
    env_file.write_text("DB_SRC_PASSWORD=ab${HOME}cd\n")
    app = load(config, {"HOME": "/root"}, env_file=str(env_file)).app
    assert app.sources["SRC"].password.get_secret_value() == "ab${HOME}cd"


def test_nested_default_resolves_under_the_allowlist(tmp_path: Path) -> None:
    config = write_config(tmp_path, password="${DB_A:-${DB_B}}")
    assert load(config, {"DB_B": "bee"}).app.sources["SRC"].password.get_secret_value() == "bee"
    assert load(config, {"DB_A": "a"}).app.sources["SRC"].password.get_secret_value() == "a"
    config = write_config(tmp_path / "2", password="${DB_A:-x${HOME}y}")
    (error,) = errors_of(config, {"HOME": "/root"})
    assert "variable HOME is not allowed here" in error
    config = write_config(tmp_path / "3", password="${DB_A:-${DB_B}")
    (error,) = errors_of(config)
    assert "without its closing" in error
