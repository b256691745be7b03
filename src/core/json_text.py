"""JSON text as the targets take it: PostgreSQL's JSONB has no U+0000.

JSONB refuses the escape ``\\u0000`` ("unsupported Unicode escape sequence",
https://www.postgresql.org/docs/current/datatype-json.html), so a PostgreSQL
load drops it from JSON columns, as ``nul_chars: strip`` drops NUL characters
from text; under ``nul_chars: error`` the backup refuses such a value. An
escaped backslash before ``u0000`` (``\\\\u0000``) is text, not the escape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# \u0000 after an even run of backslashes (RE2 has no look-behind: the run is captured).
JSON_NUL_ESCAPE = r"((?:^|[^\\])(?:\\\\)*)\\u0000"


def has_json_nul_escape(array: pa.Array) -> pa.Array:
    """Per value: whether the JSON text holds a ``\\u0000`` escape."""
    import pyarrow.compute as pc  # ~45 ms: a run with nothing new never imports it

    return pc.fill_null(pc.match_substring_regex(array, JSON_NUL_ESCAPE), False)


def strip_json_nul_escapes(array: pa.Array) -> pa.Array:
    """``array`` with every ``\\u0000`` escape removed (a pass per run of adjacent ones)."""
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring(array, "\\u0000")).as_py():
        return array  # the common case: one cheap scan
    while pc.any(has_json_nul_escape(array)).as_py():
        array = pc.replace_substring_regex(array, JSON_NUL_ESCAPE, r"\1")
    return array
