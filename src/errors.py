"""The one exception hierarchy of the tool, grouped by what the caller should do.

Every error a command can end with is a subclass of :class:`BackupError`; its
``exit_code`` is the code of SPEC §9 that the CLI error boundary exits with.
Messages are one line, say what failed and what to do, and never contain a
secret value (the boundary scrubs them once more before printing).
"""

from __future__ import annotations


class BackupError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 1
    kind = "error"


class ConfigError(BackupError):
    """The configuration or the command line is wrong: fix it and rerun."""

    exit_code = 1
    kind = "config"


class SourceConnectionError(BackupError):
    """A server (MySQL, SSH bastion, S3, target) could not be reached: retry later."""

    exit_code = 2
    kind = "connection"


class PartialFailure(BackupError):
    """Some tables of a run failed while others succeeded."""

    exit_code = 3
    kind = "partial"


class DataError(BackupError):
    """The data cannot be carried as asked (type, fidelity, unreadable watermark)."""

    exit_code = 4
    kind = "data"


class NativeDecodeError(DataError):
    """connectorx could not decode a value it received natively (it panicked).

    The backup stage catches it while dates are selected natively and re-reads
    from its position with the dates as text; anywhere else it is a DataError.
    """


class StageError(BackupError):
    """Reading or writing the S3 bucket or the local stage directory failed."""

    exit_code = 5
    kind = "stage"


class LoadError(BackupError):
    """Loading into Redshift or PostgreSQL failed; nothing was committed."""

    exit_code = 6
    kind = "load"


class LockHeldError(BackupError):
    """Another run holds the table's lock: wait for it or check the holder."""

    exit_code = 7
    kind = "lock"


# Exit code for a run interrupted by the operator (SIGINT), SPEC §9.
EXIT_INTERRUPTED = 130
