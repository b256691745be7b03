"""Where things live in the stage (SPEC §8): watermark and lock keys, a table's data
prefix, partition paths, data-file names and run ids.

Every name in a key goes through :func:`src.utils.naming.key_part` (or
``table_slug``), so no table or connection name can produce ``..``, ``/`` or a
leading slash; this module only lays those parts out.
"""

from __future__ import annotations

import datetime as dt
import secrets

from src.errors import ConfigError
from src.utils.naming import key_part, table_slug, unrepresentable

# S3 object keys are at most 1,024 bytes of UTF-8
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html); a local
# stage's path components at most 255 bytes (NAME_MAX on Linux file systems).
MAX_KEY_BYTES = 1024
MAX_PATH_SEGMENT_BYTES = 255

_WATERMARK_DIR = "watermarks/v2"
WATERMARK_PREFIX = f"{_WATERMARK_DIR}/"  # every watermark and lock key starts with it


def watermark_key(scope: str, schema: str, table: str, target: str) -> str:
    """Return the key of a table's watermark: ``watermarks/v2/<slug>_<target>.json``."""
    return f"{_WATERMARK_DIR}/{table_slug(scope, schema, table)}_{key_part(target)}.json"


def lock_key(scope: str, schema: str, table: str, target: str) -> str:
    """Return the key of a table's lock: ``watermarks/v2/locks/<slug>_<target>.lock``."""
    return f"{_WATERMARK_DIR}/locks/{table_slug(scope, schema, table)}_{key_part(target)}.lock"


def _path_segments(value: str, setting: str) -> list[str]:
    """Split a configured key prefix into its segments; ConfigError on ``..`` or ``\\``."""
    bad = unrepresentable(value)
    if bad is not None or "\\" in value:
        found = bad or "a backslash"
        raise ConfigError(f"{setting} {value!r} contains {found}; use a plain prefix like 'a/b/'")
    segments = [segment for segment in value.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise ConfigError(
            f"{setting} {value!r} contains a '..' segment; use a plain prefix like 'a/b/'"
        )
    return segments


def check_key_prefix(value: str, setting: str) -> None:
    """ConfigError when a configured key prefix holds ``..``, a backslash or a control character."""
    _path_segments(value, setting)


def table_data_prefix(
    incremental_path: str, isolation_prefix: str, scope: str, schema: str, table: str
) -> str:
    """Return ``<incremental_path>/<isolation_prefix>/<slug>/``, the table's data prefix.

    Empty, ``.`` and repeated-slash segments of the two settings are dropped; the
    result has no leading ``/`` and always ends with ``/``, so the prefix of
    ``orders`` never matches the files of ``orders_archive`` (SPEC §8).
    """
    segments = _path_segments(incremental_path, "incremental_path")
    segments += _path_segments(isolation_prefix, "isolation_prefix")
    segments.append(table_slug(scope, schema, table))
    return "/".join(segments) + "/"


def partition_path(day: dt.date) -> str:
    """Return ``year=YYYY/month=MM/day=DD/`` for ``partition_strategy: datetime``."""
    return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"


def _utc_stamp(moment: dt.datetime) -> str:
    """Format ``moment`` in UTC as ``YYYYMMDD_HHMMSS``; a naive value is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    # Not strftime: %Y does not zero-pad years before 1000 on glibc.
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}_"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


def data_file_name(
    scope: str,
    schema: str,
    table: str,
    started_at: dt.datetime,
    execution_id: str,
    chunk: int,
    file: int,
) -> str:
    """Return ``<slug>_<YYYYMMDD_HHMMSS>_<exec suffix>_<chunk:05d>_<file:03d>.parquet``.

    ``started_at`` is written in UTC (naive = UTC); the execution-id suffix is the
    last ``_``-separated part of ``execution_id``, as a key part.
    """
    if chunk < 0 or file < 0:
        raise ValueError(f"chunk and file numbers must be >= 0, got {chunk} and {file}")
    suffix = execution_suffix(execution_id)
    slug = table_slug(scope, schema, table)
    return f"{slug}_{_utc_stamp(started_at)}_{suffix}_{chunk:05d}_{file:03d}.parquet"


def execution_suffix(execution_id: str) -> str:
    """The part of a run's id that its data file names carry (its last ``_`` part)."""
    return key_part(execution_id.rsplit("_", 1)[-1])


def new_execution_id(now: dt.datetime | None = None) -> str:
    """Return a new ``sync_YYYYMMDD_HHMMSS_<8 random hex>`` id; ``now`` defaults to UTC now."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    return f"sync_{_utc_stamp(moment)}_{secrets.token_hex(4)}"
