"""Entry point: the Click group, its global options, and the one error boundary.

Every command returns an exit code (or None for 0); every error ends here and
leaves as one ``Error: …`` line on stderr with its exit code (README.md lists them).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import traceback
from typing import Any

import click

from src.cli.config_cmd import config_group
from src.cli.context import AppContext
from src.cli.s3clean_cmd import s3clean_group
from src.cli.status_cmd import status
from src.cli.sync_cmd import sync_group
from src.cli.verify_cmd import verify
from src.cli.watermark_cmd import watermark_group
from src.errors import EXIT_INTERRUPTED, BackupError
from src.utils.memory import tune_malloc


class _Boundary(click.Group):
    """A Click group whose ``main`` maps every outcome to the tool's exit codes."""

    debug = False
    # Closed when the command ends, after its last line: --json-logs' stderr pipe.
    cleanup = contextlib.ExitStack()

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line and exit with the right code (never returns)."""
        kwargs["standalone_mode"] = False
        sys.excepthook = _printed_by_native_code
        tune_malloc()  # process-wide, before any thread: see the module
        try:
            self._run(*args, **kwargs)
        finally:
            self.cleanup.close()

    def _run(self, *args: Any, **kwargs: Any) -> None:
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # Usage errors are configuration errors to cron wrappers: exit 1, not Click's 2.
            exc.show()
            sys.exit(1)
        except click.Abort:
            _error("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except BackupError as exc:
            _error(str(exc), exc if self.debug else None)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _error("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            _error(
                f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                exc if self.debug else None,
            )
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _printed_by_native_code(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """An exception C code prints with ``PyErr_Print`` instead of raising: one debug line.

    Every exception a command raises ends at the boundary above, so only native
    code reaches this hook: psycopg2 prints the server's error of a COPY whose
    connection was terminated (``AdminShutdown`` … ``SystemError: <function
    decode> returned a result with an exception set``) and then raises it, and
    the load reports that error itself.
    """
    from src.utils.logging_setup import get_logger, scrub_text

    text = scrub_text(f"{kind.__name__}: {exc}")
    get_logger("cli").debug("a driver printed an error", error=text)


def _error(message: str, exc: BaseException | None = None) -> None:
    from src.utils.logging_setup import scrub_text

    if exc is not None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        click.echo(scrub_text(text), file=sys.stderr)
    click.echo(f"Error: {scrub_text(message)}", file=sys.stderr)


@click.group(cls=_Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False),
    help="Configuration directory (default: $BACKUP_CONFIG_DIR or ./config).",
)
@click.option("--env-file", type=click.Path(dir_okay=False), help="Read variables from this file.")
@click.option("--debug", is_flag=True, help="DEBUG logs and tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Also append logs to this file.")
@click.option("--json-logs", is_flag=True, help="Logs as JSON lines.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_dir: str | None,
    env_file: str | None,
    debug: bool,
    quiet: bool,
    log_file: str | None,
    json_logs: bool,
) -> None:
    """s3-backup: copy MySQL tables into Redshift or PostgreSQL through Parquet on S3."""
    from src.utils.logging_setup import configure_logging
    from src.utils.native_output import native_stderr

    _Boundary.debug = debug
    _Boundary.cleanup.enter_context(native_stderr(json_lines=json_logs, show_panics=debug))
    configure_logging(debug=debug, quiet=quiet, json_logs=json_logs, log_file=log_file)
    ctx.obj = AppContext(config_dir=config_dir, env_file=env_file, debug=debug, quiet=quiet)


cli.add_command(status)
cli.add_command(config_group)
cli.add_command(sync_group)
cli.add_command(watermark_group)
cli.add_command(s3clean_group)
cli.add_command(verify)


def run() -> None:
    """The program's entry point (``python -m src.cli.main``, the ``s3-backup`` script).

    The command line, then a quick exit: once the command has ended and no
    other non-daemon thread runs, the exit handlers run, the output is
    flushed, and the process leaves without Python's teardown of every module
    (70-90 ms with pyarrow, connectorx and pydantic loaded: a fifth of the run
    of a table with nothing new). In-process callers (tests, Airflow) use
    :data:`cli` and keep the normal exit.
    """
    try:
        cli()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # Python's rule for a message: printed, exit 1
            print(exc.code, file=sys.stderr)
            code = 1
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)  # the interpreter waits for them, as always
    atexit._run_exitfuncs()  # logging's flush and close, temp-file finalizers, ...
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
