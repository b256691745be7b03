"""Names: the one module that normalises and quotes identifiers and makes S3 key parts.

Nothing else in the code base lowercases, quotes or slugs a table or column
name; it calls this module, so the rules below hold everywhere (SPEC §7, §8).

* Target identifiers (columns, tables) keep every character, are always
  double-quoted downstream, and are only changed where a warehouse forces it:
  ASCII letters are lowercased, a leading digit or a system column name gets a
  prefix, and more than 127 UTF-8 bytes is an error.
* Quoting doubles the quote character; NUL bytes are refused.
* S3 key parts are slugs of ``[a-z0-9_]`` only, so no name can produce ``..``,
  ``/`` or a leading slash. A slug in which a character had to be replaced gets
  an 8-hex-digit hash of the original names, so names that differ only in such
  characters (``a.b``/``a-b``/``a b``) never share a watermark or a prefix.
  :mod:`src.utils.stage_keys` lays those parts out into the stage's keys.
* Airflow task ids keep case and the dot of ``schema.table`` (:func:`task_id`).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Sequence

from src.errors import ConfigError, DataError

# Column names a user table cannot have, even double-quoted. The first seven are
# listed by Redshift (https://docs.aws.amazon.com/redshift/latest/dg/r_names.html,
# "System column names") and PostgreSQL
# (https://www.postgresql.org/docs/current/ddl-system-columns.html). insertxid and
# deletexid are Redshift's own hidden MVCC columns, present in pg_attribute of
# every Redshift table (https://www.redshiftresearchproject.org/slblog/2022-08.html).
REDSHIFT_SYSTEM_COLUMNS: frozenset[str] = frozenset(
    {"oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "insertxid", "deletexid"}
)

# Redshift: identifiers are 1 to 127 bytes of UTF-8, quotes excluded
# (https://docs.aws.amazon.com/redshift/latest/dg/r_names.html).
MAX_IDENTIFIER_BYTES = 127
# A target's own limit comes from its capabilities (src/config/capabilities.py).

COLUMN_PREFIX = "col_"
TABLE_PREFIX = "t_"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NOT_KEY_CHAR = re.compile(r"[^a-z0-9_]")
_HASH_HEX_DIGITS = 8


# https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html
MYSQL_MAX_NAME_CHARS = 64


def _ascii_lower(text: str) -> str:
    # Only ASCII letters are folded: that is what Redshift does
    # (https://docs.aws.amazon.com/redshift/latest/dg/r_names.html) and what PostgreSQL
    # does to unquoted names in a UTF-8 database (downcase_identifier in scansup.c).
    # str.lower() would also change byte lengths ("İ" -> "i̇") and map the Kelvin
    # sign to an ASCII "k".
    return text.translate(_ASCII_LOWER)


def unrepresentable(text: str) -> str | None:
    """Describe the first character no target identifier can hold, or return None."""
    for char in text:
        category = unicodedata.category(char)
        # Redshift identifiers are "UTF-8 printable characters" only (r_names.html);
        # a NUL cannot be sent to PostgreSQL at all; a lone surrogate is not UTF-8.
        if category == "Cc":
            return f"the control character {char!r}"
        if category == "Cs":
            return f"the unpaired surrogate {char!r} (not valid UTF-8)"
    return None


def _normalize(
    name: str,
    label: str,
    prefix: str,
    reserved: frozenset[str],
    error: type[Exception],
    hint: str,
    max_bytes: int = MAX_IDENTIFIER_BYTES,
) -> str:
    """Shared rules of column and table names; ``label`` names the object in errors."""
    if not name:
        raise error(f"{label} is empty; {hint}")
    bad = unrepresentable(name)
    if bad is not None:
        raise error(f"{label} contains {bad}, which Redshift cannot hold; {hint}")
    result = _ascii_lower(name)
    # A leading digit is legal when quoted, but the old tool and operators' SQL
    # expect names that can also be written unquoted (SPEC §7: "col_190_time").
    if result[0] in string.digits or result in reserved:
        result = prefix + result
    size = len(result.encode("utf-8"))
    if size > max_bytes:
        whose = "Redshift's" if max_bytes == MAX_IDENTIFIER_BYTES else "the target's"
        raise error(
            f"{label} becomes {size} bytes as a target name, over {whose} "
            f"{max_bytes}-byte limit; {hint}"
        )
    return result


def _column(name: str, table: str | None, max_bytes: int = MAX_IDENTIFIER_BYTES) -> str:
    label = f"column {shown(name)}" + (f" of table {table}" if table else "")
    hint = "rename the column in MySQL"
    return _normalize(
        name, label, COLUMN_PREFIX, REDSHIFT_SYSTEM_COLUMNS, DataError, hint, max_bytes
    )


def shown(text: str, limit: int = 256) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (a name can be megabytes)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def split_table_name(qualified: str) -> tuple[str, str]:
    """Split ``schema.table`` on its first dot; ConfigError when a part is missing or too long."""
    schema, dot, table = qualified.partition(".")
    if not dot or not schema or not table:
        raise ConfigError(
            f"table name {shown(qualified)} is not of the form schema.table; "
            "write it as the MySQL schema and table, e.g. unidw.orders"
        )
    bad = unrepresentable(qualified)
    if bad is not None:
        raise ConfigError(f"table name {shown(qualified)} contains {bad}; fix the table name")
    for part in (schema, table):
        if len(part) > MYSQL_MAX_NAME_CHARS:
            raise ConfigError(
                f"table name {shown(qualified)}: {shown(part, 20)} is {len(part):,} characters, "
                f"and MySQL names have at most {MYSQL_MAX_NAME_CHARS}; fix the table name"
            )
    return schema, table


def normalize_column_name(name: str) -> str:
    """Return the target column name of MySQL column ``name`` (SPEC §7).

    ASCII letters are lowercased; a leading digit or a system column name gets
    ``col_``; every other character is kept. DataError when the name is empty,
    holds a control character, or ends up longer than 127 UTF-8 bytes.
    """
    return _column(name, None)


def normalize_column_names(
    names: Sequence[str], table: str, max_bytes: int = MAX_IDENTIFIER_BYTES
) -> list[str]:
    """Normalise every column of ``table``; DataError when two fold to one name.

    ``max_bytes`` is the target's identifier limit (its capabilities).
    """
    sources: dict[str, str] = {}
    result: list[str] = []
    for name in names:
        target = _column(name, table, max_bytes)
        if target in sources:
            raise DataError(
                f"columns {sources[target]!r} and {name!r} of table {table} both become "
                f"{target!r} in the target; rename one of them in MySQL"
            )
        sources[target] = name
        result.append(target)
    return result


def normalize_table_name(name: str, max_bytes: int = MAX_IDENTIFIER_BYTES) -> str:
    """Return the target table name for MySQL table ``name``.

    Same rules as columns, except that a leading digit gets ``t_`` and system
    column names do not apply. ConfigError (the name comes from the pipeline
    file) when it is empty, holds a control character or exceeds ``max_bytes``.
    """
    hint = "set a shorter target_name for this table in the pipeline file"
    label = f"table {shown(name)}"
    return _normalize(name, label, TABLE_PREFIX, frozenset(), ConfigError, hint, max_bytes)


def target_table_name(
    source_table: str, configured: str | None, max_bytes: int = MAX_IDENTIFIER_BYTES
) -> str:
    """The target table of MySQL table ``source_table``: ``target_name`` when configured.

    A configured name follows the same rules as a derived one (lowercased,
    checked for control characters and the target's byte limit).
    """
    return normalize_table_name(configured or source_table, max_bytes)


def _check_identifier(identifier: str) -> None:
    if not identifier:
        raise DataError("cannot quote an empty identifier; every table and column needs a name")
    if "\x00" in identifier:
        raise DataError(
            f"identifier {identifier!r} contains a NUL byte, which neither MySQL nor "
            "PostgreSQL accepts; rename it"
        )


def quote_mysql(identifier: str) -> str:
    """Quote a MySQL/MariaDB identifier with backticks, doubling embedded backticks.

    Backticks work whatever the sql_mode (ANSI_QUOTES only changes double quotes):
    https://mariadb.com/kb/en/identifier-names/
    """
    _check_identifier(identifier)
    return "`" + identifier.replace("`", "``") + "`"


def quote_mysql_table(schema: str, table: str) -> str:
    """Return the MySQL/MariaDB table reference `schema`.`table`."""
    return f"{quote_mysql(schema)}.{quote_mysql(table)}"


def quote_pg(identifier: str) -> str:
    """Quote a Redshift/PostgreSQL identifier with double quotes, doubling embedded ones.

    https://docs.aws.amazon.com/redshift/latest/dg/r_names.html ("Delimited identifiers").
    """
    _check_identifier(identifier)
    return '"' + identifier.replace('"', '""') + '"'


def quote_pg_table(schema: str, table: str) -> str:
    """Return ``"schema"."table"`` for Redshift/PostgreSQL."""
    return f"{quote_pg(schema)}.{quote_pg(table)}"


def quote_literal(value: str) -> str:
    """Return ``value`` as a SQL string literal, for the rare statements that cannot bind it.

    Single quotes are doubled. A backslash is refused: Redshift reads it as an
    escape in a plain literal (its QUOTE_LITERAL doubles it,
    https://docs.aws.amazon.com/redshift/latest/dg/r_QUOTE_LITERAL.html) while
    PostgreSQL, with standard_conforming_strings on, keeps it as is, so no one
    spelling is right for both. The value is never echoed: it may be a secret.
    """
    for char, label in (("\x00", "a NUL byte"), ("\\", "a backslash")):
        if char in value:
            raise DataError(
                f"a SQL string literal cannot contain {label} (value not shown); "
                "remove it from the configured path, role or credential"
            )
    return "'" + value.replace("'", "''") + "'"


# SPEC §8: the old tool's keys turn these into "_" with no hash; keep them stable.
_SPEC_SEPARATORS = str.maketrans({".": "_", ":": "_", "-": "_"})


def key_part(*parts: str) -> str:
    """Join ``parts`` with ``_`` into an S3-key-safe slug matching ``^[a-z0-9_]+$``.

    ASCII letters are lowercased and ``.``, ``:`` and ``-`` become ``_`` exactly
    as SPEC §8 (and the old tool) spell keys. Every other character outside
    ``[a-z0-9_]`` also becomes ``_``, and then ``_`` plus 8 hex digits of the
    SHA-1 of the original parts (as a JSON list) is appended, so two names that
    differ only in such characters get different slugs. Names that
    differ only in ASCII case, or in where ``_`` splits them, still share one.
    ConfigError when there is no part or a part is empty.
    """
    if not parts or not all(parts):
        raise ConfigError(
            f"cannot build an S3 key from the empty name in {list(parts)!r}; "
            "check the connection, table and target names in the configuration"
        )
    lowered = _ascii_lower("_".join(parts)).translate(_SPEC_SEPARATORS)
    slug = _NOT_KEY_CHAR.sub("_", lowered)
    if slug != lowered:
        original = json.dumps(list(parts)).encode("ascii")
        digest = hashlib.sha1(original, usedforsecurity=False).hexdigest()
        slug = f"{slug}_{digest[:_HASH_HEX_DIGITS]}"
    return slug


def table_slug(scope: str, schema: str, table: str) -> str:
    """Return ``<scope>_<schema>_<table>`` as one key part (SPEC §8)."""
    return key_part(scope, schema, table)


# Airflow task ids: letters, digits, "_", "-" and "." only, at most 250 characters
# (https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/dags.html;
# KEY_REGEX and ID_LEN in airflow.utils.helpers).
# MySQL's 64-character names keep every id far below that limit.
_NOT_TASK_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")


def task_id(action: str, qualified: str) -> str:
    """Return the Airflow task id of ``action`` (``sync``, ``verify``) on ``schema.table``.

    ``sync_<schema>.<table>``: case and the dot are kept, so two tables never share an
    id through folding or through where ``_`` splits them; any other character outside
    ``[A-Za-z0-9_-]`` becomes ``_`` and an 8-hex-digit hash of the name is appended,
    as :func:`key_part` does. ConfigError for a name that is not ``schema.table``.
    """
    schema, table = split_table_name(qualified)
    parts = [_NOT_TASK_ID_CHAR.sub("_", part) for part in (schema, table)]
    ident = f"{action}_{parts[0]}.{parts[1]}"
    if parts != [schema, table]:
        digest = hashlib.sha1(qualified.encode("utf-8"), usedforsecurity=False).hexdigest()
        ident = f"{ident}_{digest[:_HASH_HEX_DIGITS]}"
    return ident
