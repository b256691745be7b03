"""MySQL → Arrow type layer of the backup stage (SPEC §7).

The Arrow schema of a table is derived from ``information_schema`` alone, never
from the data, so every file of a table has the same schema. Each column gets:

* a *kind* saying how :mod:`src.backup.arrow_convert` turns the raw value into
  the final Arrow type;
* a *select* mode saying how it is projected. Types a driver gets wrong are
  selected as text (DECIMAL, TIME, MariaDB UUID/INET), as an integer (BIT,
  ``col + 0``), as WKT (GEOMETRY) or as DOUBLE (FLOAT), so that connectorx and
  PyMySQL receive the same values and produce identical batches.
  DATE/DATETIME/TIMESTAMP are selected as they are: connectorx decodes them to
  Arrow in Rust (measured: reading the SPEC §10.1 table with its three date
  columns cast to text took ~30% longer), PyMySQL receives the text ``CAST``
  would give. Only a zero date defeats connectorx (it panics): the backup then
  re-reads from its position with :meth:`TableSchema.with_dates_as_text`;
* the byte lengths the load stage needs for Redshift/PostgreSQL DDL.

Choices where SPEC §7 is silent:

* DATETIME *and* TIMESTAMP are tz-naive ``timestamp("us")``. TIMESTAMP values
  are read with the session in UTC (``time_zone = '+00:00'``), so they are UTC
  wall-clock values; both map to Redshift ``TIMESTAMP`` (no time zone), and one
  Parquet logical type (isAdjustedToUTC=false, MICROS) keeps the loader and its
  checks simple. ``ColumnSpec.utc`` records which columns hold UTC.
* DATE/DATETIME/TIMESTAMP fields are nullable in Arrow even when NOT NULL in
  MySQL while ``zero_dates`` is ``null``: a legacy ``NOT NULL DEFAULT
  '0000-00-00'`` column must still be writable.
* Dates with a zero month or day (``2020-00-15``, MySQL's "zero-in-date") are
  treated as zero dates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pymysql

from src.config.capabilities import REDSHIFT
from src.core.table_schema import TEMPORAL_KINDS, ColumnSpec, TableSchema, TypePolicy
from src.errors import ConfigError, DataError
from src.utils.naming import (
    MAX_IDENTIFIER_BYTES,
    normalize_column_names,
    quote_mysql,
)

# Redshift's lengths in bytes (its capabilities): the schema records them for its DDL.
REDSHIFT_MAX_VARCHAR_BYTES = REDSHIFT.max_text_bytes or 0
REDSHIFT_MAX_VARBYTE_BYTES = REDSHIFT.max_binary_bytes or 0
# "-838:59:59.999999": https://mariadb.com/kb/en/time/
TIME_TEXT_BYTES = 17
MAX_DECIMAL128_PRECISION = 38
MAX_SCALED_PRECISION = 18  # digits of a DECIMAL read as its unscaled BIGINT

_INTEGERS: dict[str, tuple[pa.DataType, pa.DataType]] = {
    # data_type: (signed, unsigned) per SPEC §7
    "tinyint": (pa.int16(), pa.int16()),
    "smallint": (pa.int16(), pa.int32()),
    "mediumint": (pa.int32(), pa.int32()),
    "int": (pa.int32(), pa.int64()),
    "integer": (pa.int32(), pa.int64()),
    "bigint": (pa.int64(), pa.decimal128(20, 0)),
}
_CHAR_TYPES = frozenset({"char", "varchar"})
_TEXT_TYPES = frozenset({"tinytext", "text", "mediumtext", "longtext", "json", "long varchar"})
_BINARY_TYPES = frozenset(
    {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "long varbinary"}
)
_GEOMETRY_TYPES = frozenset(
    {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring"}
    | {"multipolygon", "geometrycollection", "geomcollection"}
)
# MariaDB-only types, read through their text form (https://mariadb.com/kb/en/uuid-data-type/,
# https://mariadb.com/kb/en/inet6/, https://mariadb.com/kb/en/inet4/).
_MARIADB_TEXT_TYPES = {"uuid": 36, "inet6": 39, "inet4": 15}
# Most UTF-8 bytes one character of a column charset can need. Every MySQL charset
# other than these holds only BMP characters (<= 3 UTF-8 bytes); CHARACTER_SETS.MAXLEN
# counts bytes in the charset's own encoding, which is not what Redshift counts
# (latin1 is 1 byte in MySQL but "€" is 3 in UTF-8).
_UTF8_BYTES = {"ascii": 1, "utf8mb4": 4, "utf16": 4, "utf16le": 4, "utf32": 4, "gb18030": 4}
_DEFAULT_UTF8_BYTES = 3
# A zero date, or one with a zero month or day, as COLUMN_DEFAULT shows it ('0000-00-00').
_ZERO_DATE = re.compile(r"'?\d{4}-(?:00-\d{2}|\d{2}-00)")
_ENUM_VALUE = re.compile(r"'((?:[^'\\]|''|\\.)*)'")


def _enum_values(column_type: str) -> list[str]:
    # COLUMN_TYPE doubles quotes and backslashes: enum('it''s','a\\b').
    values = _ENUM_VALUE.findall(column_type[column_type.index("(") :])
    return [re.sub(r"''|\\(.)", lambda m: m[1] or "'", v) for v in values]


def _enum_bytes(column_type: str, is_set: bool, octet_length: int | None) -> int:
    # information_schema is utf8mb3, so a 4-byte character shows as "?": count every
    # "?" as 4 bytes, an upper bound that never makes the target column too narrow.
    sizes = [
        sum(4 if ch == "?" else len(ch.encode()) for ch in v) for v in _enum_values(column_type)
    ]
    longest = (sum(sizes) + max(len(sizes) - 1, 0)) if is_set else max(sizes, default=0)
    if octet_length is not None:
        longest = min(longest, octet_length)
    return max(longest, 1)


def _map_column(raw: dict[str, Any], policy: TypePolicy, table: str) -> dict[str, Any]:
    """The kind, Arrow type, projection and byte lengths of one information_schema row."""
    data_type: str = raw["data_type"]
    unsigned = raw["is_unsigned"]
    out: dict[str, Any] = {"select_as": "column"}
    if data_type in _INTEGERS:
        out["arrow_type"] = _INTEGERS[data_type][1 if unsigned else 0]
        out["kind"] = "unsigned_bigint" if data_type == "bigint" and unsigned else "integer"
    elif data_type == "year":
        out.update(kind="integer", arrow_type=pa.int16())
    elif data_type in ("decimal", "numeric"):
        precision, scale = raw["numeric_precision"], raw["numeric_scale"] or 0
        # Up to 18 digits the unscaled value fits a BIGINT (10**18 - 1 < 2**63): read as
        # that, 0.2-0.3 s less CPU per 2M rows of two such columns than their text.
        out["select_as"] = "scaled" if precision <= MAX_SCALED_PRECISION else "text"
        if precision <= MAX_DECIMAL128_PRECISION:
            out.update(kind="decimal", arrow_type=pa.decimal128(precision, scale))
        elif policy.decimal_overflow == "varchar":
            # sign, digits and the decimal point
            size = precision + 1 + (1 if scale else 0)
            out.update(kind="decimal_text", arrow_type=pa.string())
            out.update(max_value_bytes=size, redshift_length=size)
        else:
            raise DataError(
                f"column {raw['name']!r} of table {table} is {raw['column_type']}: precision "
                f"{precision} exceeds the {MAX_DECIMAL128_PRECISION} digits Parquet/Redshift "
                "decimals hold; set decimal_overflow: varchar for this table to carry it as text"
            )
    elif data_type == "float":
        out.update(kind="float", arrow_type=pa.float32(), select_as="double")
    elif data_type in ("double", "real"):
        out.update(kind="double", arrow_type=pa.float64())
    elif data_type == "bit":
        bits = raw["numeric_precision"] or 1
        kind, arrow_type = ("bit_bool", pa.bool_()) if bits == 1 else ("bit_int", pa.int64())
        out.update(kind=kind, arrow_type=arrow_type, select_as="int")
    elif data_type in _CHAR_TYPES:
        size = raw["character_maximum_length"] * raw["utf8_bytes_per_char"]
        out.update(kind="string", arrow_type=pa.string(), max_value_bytes=size)
        out["redshift_length"] = max(1, min(size, REDSHIFT_MAX_VARCHAR_BYTES))
    elif data_type in _TEXT_TYPES or data_type in _GEOMETRY_TYPES:
        size = None if data_type in _GEOMETRY_TYPES else raw["utf8_octet_length"]
        out.update(kind="string", arrow_type=pa.string(), max_value_bytes=size)
        out["redshift_length"] = REDSHIFT_MAX_VARCHAR_BYTES
        if data_type in _GEOMETRY_TYPES:
            out["select_as"] = "wkt"
    elif data_type in ("enum", "set"):
        size = _enum_bytes(raw["column_type"], data_type == "set", raw["max_bytes_bound"])
        out.update(kind="string", arrow_type=pa.string(), enum_max_bytes=size)
        out.update(max_value_bytes=size, redshift_length=size)
    elif data_type in _MARIADB_TEXT_TYPES:
        size = _MARIADB_TEXT_TYPES[data_type]
        out.update(kind="string", arrow_type=pa.string(), select_as="text")
        out.update(max_value_bytes=size, redshift_length=size)
    elif data_type == "date":
        out.update(kind="date", arrow_type=pa.date32())
    elif data_type in ("datetime", "timestamp"):
        out.update(kind=data_type, arrow_type=pa.timestamp("us"))
        out["utc"] = data_type == "timestamp"
    elif data_type == "time":
        out.update(kind="time", arrow_type=pa.string(), select_as="text")
        out.update(max_value_bytes=TIME_TEXT_BYTES, redshift_length=TIME_TEXT_BYTES)
    elif data_type in _BINARY_TYPES:
        size = raw["character_octet_length"]
        out.update(kind="binary", arrow_type=pa.binary(), max_value_bytes=size)
        out["redshift_length"] = max(
            1, min(size or REDSHIFT_MAX_VARBYTE_BYTES, REDSHIFT_MAX_VARBYTE_BYTES)
        )
    else:
        raise DataError(
            f"column {raw['name']!r} of table {table} has MySQL type {raw['column_type']}, "
            "which the backup cannot carry; exclude the table or change the column type"
        )
    return out


_COLUMNS_SQL = """
SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE,
       c.CHARACTER_MAXIMUM_LENGTH, c.CHARACTER_OCTET_LENGTH, c.NUMERIC_PRECISION,
       c.NUMERIC_SCALE, c.DATETIME_PRECISION, c.CHARACTER_SET_NAME, cs.MAXLEN,
       c.COLUMN_DEFAULT
FROM information_schema.COLUMNS c
LEFT JOIN information_schema.CHARACTER_SETS cs ON cs.CHARACTER_SET_NAME = c.CHARACTER_SET_NAME
WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s
ORDER BY c.ORDINAL_POSITION
"""
_PRIMARY_KEY_SQL = """
SELECT COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY'
ORDER BY SEQ_IN_INDEX
"""
# MariaDB stores JSON as LONGTEXT plus a json_valid() CHECK, visible only here
# (https://mariadb.com/kb/en/json-data-type/); MySQL's CHECK_CONSTRAINTS has no TABLE_NAME.
_JSON_CHECKS_SQL = """
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(_text(value))


def _query(
    conn: pymysql.connections.Connection, sql: str, args: Sequence[Any]
) -> list[tuple[Any, ...]]:
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _column_spec(
    name: str,
    target: str,
    row: tuple[Any, ...],
    checks: set[str],
    policy: TypePolicy,
    qualified: str,
) -> ColumnSpec:
    """Build one ColumnSpec from a row of _COLUMNS_SQL."""
    data_type, column_type = _text(row[1]).lower(), _text(row[2]).lower()
    charset = None if row[9] is None else _text(row[9])
    utf8_bytes = None if charset is None else _UTF8_BYTES.get(charset, _DEFAULT_UTF8_BYTES)
    chars, octets = _int(row[4]), _int(row[5])
    if octets is not None and utf8_bytes is not None and not charset_is_utf8(charset):
        octets_utf8: int | None = octets * utf8_bytes  # upper bound: >= 1 byte per char
    else:
        octets_utf8 = octets
    facts: dict[str, Any] = {
        "character_maximum_length": chars,
        "character_octet_length": octets,
        "numeric_precision": _int(row[6]),
        "numeric_scale": _int(row[7]),
        "charset_max_bytes": _int(row[10]),
        "utf8_bytes_per_char": utf8_bytes,
        "is_unsigned": " unsigned" in column_type or " zerofill" in column_type,
    }
    raw = dict(facts, name=name, data_type=data_type, column_type=column_type)
    raw["utf8_octet_length"] = octets_utf8
    raw["max_bytes_bound"] = None if chars is None or not utf8_bytes else chars * utf8_bytes
    mapped = _map_column(raw, policy, qualified)
    nullable = _text(row[3]).upper() == "YES"
    zero_date_nulls = mapped["kind"] in TEMPORAL_KINDS and policy.zero_dates == "null"
    return ColumnSpec(
        name=name,
        target_name=target,
        data_type=data_type,
        column_type=column_type,
        nullable=nullable,
        arrow_nullable=nullable or zero_date_nulls,
        datetime_precision=_int(row[8]),
        character_set=charset,
        is_json=data_type == "json" or f"json_valid({quote_mysql(name)})" in checks,
        # MariaDB reports the default of a nullable column without one as the text NULL.
        has_default=row[11] is not None and _text(row[11]).upper() != "NULL",
        zero_date_default=row[11] is not None and _ZERO_DATE.match(_text(row[11])) is not None,
        **facts,
        **mapped,
    )


def charset_is_utf8(charset: str | None) -> bool:
    """True when the charset's bytes are UTF-8 bytes (its octet lengths count UTF-8)."""
    return charset in ("utf8", "utf8mb3", "utf8mb4")


def load_table_schema(
    conn: pymysql.connections.Connection,
    schema: str,
    table: str,
    policy: TypePolicy,
    max_identifier_bytes: int = MAX_IDENTIFIER_BYTES,
) -> TableSchema:
    """Read the table's columns and primary key from ``information_schema``.

    ConfigError when the table does not exist; DataError for a column that
    cannot be carried (unknown type, DECIMAL over 38 digits without the
    ``decimal_overflow: varchar`` policy, names folding to one target name, a
    name longer than the target's ``max_identifier_bytes``).
    """
    qualified = f"{schema}.{table}"
    rows = _query(conn, _COLUMNS_SQL, (schema, table))
    if not rows:
        raise ConfigError(
            f"table {qualified} was not found on the MySQL source (no columns in "
            "information_schema); check the table name in the pipeline and the user's grants"
        )
    pk = tuple(_text(r[0]) for r in _query(conn, _PRIMARY_KEY_SQL, (schema, table)))
    try:
        checks = {_text(r[0]) for r in _query(conn, _JSON_CHECKS_SQL, (schema, table))}
    except pymysql.err.MySQLError:
        checks = set()  # MySQL: no TABLE_NAME column, and JSON has its own DATA_TYPE
    names = [_text(r[0]) for r in rows]
    targets = normalize_column_names(names, qualified, max_identifier_bytes)
    columns = [
        _column_spec(name, target, row, checks, policy, qualified)
        for name, target, row in zip(names, targets, rows, strict=True)
    ]
    return TableSchema(schema, table, tuple(columns), pk, policy)
