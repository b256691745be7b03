"""The table-schema contract both stages share: one source table's columns and types.

The backup stage builds a :class:`TableSchema` from ``information_schema``
(:mod:`src.backup.mysql_schema`) and embeds it in every staged Parquet file's
footer under :data:`SCHEMA_METADATA_KEY`; the load stage reads it back from
the footer to create and evolve the target table, so it never needs MySQL.
:data:`POSITION_METADATA_KEY` holds the watermark position a file was
recorded with (what ``watermark rebuild`` reads back).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar, Literal, get_args

import pyarrow as pa

from src.errors import DataError
from src.utils.naming import quote_mysql, quote_mysql_table

SCHEMA_METADATA_KEY = b"s3_backup.table_schema"
POSITION_METADATA_KEY = b"s3_backup.watermark_position"

ColumnKind = Literal[
    "integer",  # int16/int32/int64; also YEAR
    "unsigned_bigint",  # BIGINT UNSIGNED -> decimal128(20, 0)
    "decimal",  # DECIMAL(p<=38, s) read as its unscaled BIGINT (p<=18) or as text
    "decimal_text",  # DECIMAL(p>38) kept as text (policy decimal_overflow: varchar)
    "float",  # FLOAT read as DOUBLE -> float32
    "double",
    "bit_bool",  # BIT(1)
    "bit_int",  # BIT(n>1)
    "string",  # CHAR/VARCHAR/TEXT/JSON/ENUM/SET/GEOMETRY(WKT)/UUID/INET
    "date",
    "datetime",
    "timestamp",
    "time",  # TIME kept as MySQL's own text [-]HHH:MM:SS[.ffffff]
    "binary",
]
SelectAs = Literal["column", "text", "int", "wkt", "double", "scaled"]
TEMPORAL_KINDS: frozenset[str] = frozenset({"date", "datetime", "timestamp"})


@dataclass(frozen=True)
class TypePolicy:
    """What to do with values that cannot be carried losslessly (SPEC §7)."""

    decimal_overflow: Literal["error", "varchar"] = "error"
    oversize_text: Literal["error", "truncate"] = "error"
    zero_dates: Literal["null", "error"] = "null"
    nul_chars: Literal["strip", "error"] = "strip"
    # The target's most bytes in one text / binary value (its capabilities; None: no
    # limit, PostgreSQL's TEXT and BYTEA). Redshift's by default, the strictest.
    max_text_bytes: int | None = 65535
    max_binary_bytes: int | None = 1_024_000


@dataclass(frozen=True)
class ColumnSpec:
    """One source column: MySQL facts, its Arrow type, its projection and target lengths."""

    name: str
    target_name: str
    data_type: str
    column_type: str
    nullable: bool
    kind: ColumnKind
    arrow_type: pa.DataType
    select_as: SelectAs
    arrow_nullable: bool
    character_maximum_length: int | None = None
    character_octet_length: int | None = None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    character_set: str | None = None
    charset_max_bytes: int | None = None  # information_schema.CHARACTER_SETS.MAXLEN
    utf8_bytes_per_char: int | None = None  # as the value arrives (utf8mb4 session)
    enum_max_bytes: int | None = None  # longest ENUM value / full SET value, UTF-8 bytes
    is_unsigned: bool = False
    is_json: bool = False
    has_default: bool = False  # a non-NULL DEFAULT: rows before an ADD COLUMN hold it in MySQL
    zero_date_default: bool = False  # a legacy NOT NULL DEFAULT '0000-00-00' (or zero month/day)
    utc: bool = False  # TIMESTAMP: values are UTC wall-clock times
    max_value_bytes: int | None = None  # most bytes one value can take; None: unbounded
    redshift_length: int | None = None  # VARCHAR(n) / VARBYTE(n) length in bytes

    @property
    def target_nullable(self) -> bool:
        """Whether the target column takes NULL: MySQL's, or a zero-date default carried as NULL.

        A NOT NULL column whose default is a zero date holds zero dates, which the
        backup turns into NULL (``zero_dates: null``); other NOT NULL columns stay
        NOT NULL in the target.
        """
        return self.nullable or (self.zero_date_default and self.arrow_nullable)

    @property
    def arrow_field(self) -> pa.Field:
        """The field of the final Arrow schema (normalised name)."""
        return pa.field(self.target_name, self.arrow_type, nullable=self.arrow_nullable)

    def select_expr(self) -> str:
        """The projection of this column, aliased to its source name."""
        quoted = quote_mysql(self.name)
        if self.select_as == "column":
            return quoted
        if self.select_as == "scaled":
            # A DECIMAL(p <= 18, s) as the BIGINT of its digits (exact: the product has
            # no fraction): an integer travels and converts much faster than its text.
            return f"CAST({quoted} * {10**self.arrow_type.scale} AS SIGNED) AS {quoted}"
        # CAST ... AS CHAR converts to the connection charset (utf8mb4) and, for
        # TIMESTAMP, to the session time zone: https://mariadb.com/kb/en/cast/
        expr = {
            "text": f"CAST({quoted} AS CHAR)",
            "int": f"({quoted} + 0)",
            "wkt": f"ST_AsText({quoted})",
            # FLOAT's text form has 6 significant digits (123456789 -> "123457000"):
            # https://dev.mysql.com/doc/refman/8.0/en/problems-with-float.html
            "double": f"CAST({quoted} AS DOUBLE)",
        }[self.select_as]
        return f"{expr} AS {quoted}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the Arrow type as :func:`arrow_type_name`."""
        data = asdict(self)
        data["arrow_type"] = arrow_type_name(self.arrow_type)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["arrow_type"] = arrow_type_from_name(str(values["arrow_type"]))
        known_kind = values.get("kind") in get_args(ColumnKind)
        if not known_kind or values.get("select_as") not in get_args(SelectAs):
            raise DataError(f"staged table schema has an unknown column entry {data!r}")
        return cls(**values)


@dataclass(frozen=True)
class TableSchema:
    """A source table as the backup stage reads it and the load stage creates it."""

    schema: str
    table: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...] = ()
    policy: TypePolicy = field(default_factory=TypePolicy)

    FORMAT: ClassVar[str] = "s3-redshift-backup/table-schema"
    VERSION: ClassVar[int] = 1

    @property
    def qualified_name(self) -> str:
        """``schema.table``, for messages."""
        return f"{self.schema}.{self.table}"

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        """The final Arrow schema: normalised names, Arrow nullability."""
        return pa.schema([c.arrow_field for c in self.columns])

    def column(self, name: str) -> ColumnSpec:
        """The column with source name ``name``; KeyError when absent."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def reads_dates_natively(self) -> bool:
        """True when some DATE/DATETIME/TIMESTAMP column is selected as it is (not as text)."""
        return any(c.kind in TEMPORAL_KINDS and c.select_as == "column" for c in self.columns)

    def with_dates_as_text(self) -> TableSchema:
        """This schema with every DATE/DATETIME/TIMESTAMP column selected as text.

        The projection connectorx needs for a zero date (``0000-00-00``, or a zero
        month or day), which it cannot decode natively; the final Arrow types are
        the same, so files written before and after the switch are alike.
        """
        columns = tuple(
            replace(c, select_as="text") if c.kind in TEMPORAL_KINDS else c for c in self.columns
        )
        return replace(self, columns=columns)

    def select_list(self) -> str:
        """The SQL projection, ``%`` doubled: every reader query is a pyformat template."""
        return ", ".join(c.select_expr() for c in self.columns).replace("%", "%%")

    def sql_table(self) -> str:
        """`schema`.`table`, ``%`` doubled like :meth:`select_list`."""
        return quote_mysql_table(self.schema, self.table).replace("%", "%%")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form that travels with the staged files."""
        return {
            "format": self.FORMAT,
            "version": self.VERSION,
            "schema": self.schema,
            "table": self.table,
            "primary_key": list(self.primary_key),
            "policy": asdict(self.policy),
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self) -> str:
        """The schema as a JSON document (stable key order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        """Inverse of :meth:`to_dict`; DataError when the document is not one."""
        if data.get("format") != cls.FORMAT or data.get("version") != cls.VERSION:
            raise DataError(
                f"staged table schema has format {data.get('format')!r} version "
                f"{data.get('version')!r}; expected {cls.FORMAT!r} version {cls.VERSION}"
            )
        try:
            return cls(
                schema=str(data["schema"]),
                table=str(data["table"]),
                columns=tuple(ColumnSpec.from_dict(c) for c in data["columns"]),
                primary_key=tuple(data["primary_key"]),
                policy=TypePolicy(**data["policy"]),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"staged table schema is incomplete or malformed: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> TableSchema:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"staged table schema is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DataError("staged table schema is not a JSON object")
        return cls.from_dict(data)


_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date32": pa.date32(),
    "timestamp[us]": pa.timestamp("us"),
}
_DECIMAL_NAME = re.compile(r"decimal128\((\d+),(\d+)\)")


def arrow_type_name(arrow_type: pa.DataType) -> str:
    """A stable name for the Arrow types this module produces (inverse: arrow_type_from_name)."""
    if pa.types.is_decimal(arrow_type):
        return f"decimal128({arrow_type.precision},{arrow_type.scale})"
    for name, known in _SIMPLE_TYPES.items():
        if arrow_type == known:
            return name
    raise DataError(f"Arrow type {arrow_type} is not one the type layer produces")


def arrow_type_from_name(name: str) -> pa.DataType:
    """Parse :func:`arrow_type_name` output."""
    if name in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[name]
    match = _DECIMAL_NAME.fullmatch(name)
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    raise DataError(f"staged table schema has an unknown Arrow type {name!r}")
