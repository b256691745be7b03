"""What every command shares: global options, the loaded configuration, output.

Kept light on purpose: nothing heavy is imported until a command runs, so
``--help`` stays fast (SPEC §10).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from src.config.settings import AppConfig

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """Global options of one invocation, and the configuration loaded on demand."""

    config_dir: str | None = None
    env_file: str | None = None
    debug: bool = False
    quiet: bool = False
    _app: AppConfig | None = field(default=None, repr=False)

    def config(self) -> AppConfig:
        """Load (once) and return the validated configuration; warnings go to the log."""
        if self._app is None:
            from src.config.configuration_manager import ConfigurationManager
            from src.utils.logging_setup import get_logger, register_secrets

            loaded = ConfigurationManager(self.config_dir, self.env_file).load()
            register_secrets(loaded.app.secret_values())
            log = get_logger("config")
            for warning in loaded.warnings:
                log.warning(warning)
            self._app = loaded.app
        return self._app


pass_app = click.make_pass_decorator(AppContext)


def pipeline_option(required: bool = False, help_text: str | None = None) -> Callable[[F], F]:
    """``-p/--pipeline``: the pipeline file stem under config/pipelines/."""
    return click.option(
        "-p",
        "--pipeline",
        required=required,
        help=help_text or "Pipeline name (file stem under config/pipelines/).",
    )


def table_option(multiple: bool = False, required: bool = True) -> Callable[[F], F]:
    """``-t/--table``: a MySQL ``schema.table`` listed in the pipeline."""
    return click.option(
        "-t",
        "--table",
        "tables" if multiple else "table",
        multiple=multiple,
        required=required,
        help="MySQL table as schema.table" + (" (repeatable)." if multiple else "."),
    )


json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def info(message: str) -> None:
    """A human message on stderr (stdout is for data and reports); silent under -q."""
    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(AppContext) if ctx else None
    if app is None or not app.quiet:
        click.echo(message, file=sys.stderr)
