"""The one exception hierarchy of the tool, grouped by what the caller should do.

Every error a command can end with is a subclass of :class:`BackupError`; its
``exit_code`` is the code the CLI error boundary exits with. Messages are one
line, say what failed and what to do, and never contain a secret value (the
boundary scrubs them once more before printing).

A second axis says whether trying again can help, as dlt's
``TransientException``/``TerminalException`` do: a class is :class:`Transient`
(a dropped connection, a throttled or aborted request) or terminal (everything
else: the same input fails the same way). Retries inside a run retry only
transient errors; each driver's errors are classified into this hierarchy in
one method of its reader, stage or target dialect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Transient:
    """Mixin: the same operation may succeed when tried again."""


class BackupError(Exception):
    """Base of every error the tool raises on purpose (terminal unless Transient)."""

    exit_code = 1


class ConfigError(BackupError):
    """The configuration or the command line is wrong: fix it and rerun."""

    exit_code = 1


class SourceConnectionError(Transient, BackupError):
    """A server (MySQL, SSH bastion, S3, target) could not be reached: retry later."""

    exit_code = 2


class PartialFailure(BackupError):
    """Some tables of a run failed while others succeeded."""

    exit_code = 3


class DataError(BackupError):
    """The data cannot be carried as asked (type, fidelity, unreadable watermark)."""

    exit_code = 4


class NativeDecodeError(DataError):
    """connectorx could not decode a value it received natively (it panicked).

    The backup stage catches it while dates are selected natively and re-reads
    from its position with the dates as text; anywhere else it is a DataError.
    """


class CorruptStagedFile(DataError):
    """A staged Parquet file cannot be read (truncated, damaged, not ours).

    The load quarantines it and loads the table's other files; ``uri`` names it.
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"staged file {uri} is corrupt ({reason})")
        self.uri = uri
        self.reason = reason


class StageError(BackupError):
    """Reading or writing the S3 bucket or the local stage directory failed."""

    exit_code = 5


class StageUnavailableError(Transient, StageError):
    """The stage did not answer, or asked to slow down (S3 503 SlowDown, 500): retry later."""


class LoadError(BackupError):
    """Loading into Redshift or PostgreSQL failed; nothing was committed."""

    exit_code = 6


class LoadConflictError(Transient, LoadError):
    """The target aborted the load for a concurrent writer (serializable isolation)."""


class TargetConnectionLost(Transient, LoadError):
    """The target connection broke during a load: nothing was committed; a new one may work."""


class LockHeldError(BackupError):
    """Another run holds the table's lock: wait for it or check the holder."""

    exit_code = 7


@contextmanager
def step(doing: str) -> Iterator[None]:
    """Name the step a :class:`StageError` raised inside failed in ("taking the lock of …").

    The stage names the object and the request; the step says what the run was
    doing with it. The error keeps its class (and so its exit code and whether it
    is transient).
    """
    try:
        yield
    except StageError as exc:
        raise type(exc)(f"{doing}: {exc}") from exc


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (drivers add DETAIL/HINT/CONTEXT lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same operation again may succeed."""
    return isinstance(exc, Transient)


# Exit code for a run interrupted by the operator (SIGINT).
EXIT_INTERRUPTED = 130
