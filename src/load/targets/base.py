"""What the load protocol needs from a target database, and what both share.

A :class:`TargetDialect` knows its type map, its DDL extras and how to fill a
staging table from staged files; everything else (ledger, merge, schema
evolution, transaction) is the one protocol in :mod:`src.load.load_stage`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from src.config.capabilities import TargetCapabilities
from src.core.row_compare import HASH_FROM
from src.core.stage import Stage
from src.core.table_schema import ColumnSpec, TableSchema
from src.errors import LoadConflictError, LoadError, first_line
from src.utils.naming import quote_pg, quote_pg_table

LEDGER_TABLE = "s3_backup_load_ledger"
# Arrow types whose column type is spelled the same on Redshift and PostgreSQL (SPEC §7).
COMMON_TYPES = {
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "date32[day]": "DATE",
    "timestamp[us]": "TIMESTAMP",
}


@dataclass(frozen=True)
class StagedFileRef:
    """One file to load: its watermark URI, stage key, and Parquet facts."""

    uri: str
    key: str
    size: int
    rows: int
    sha256: str | None = None  # as staged (None: staged before digests were recorded)


@dataclass(frozen=True)
class TargetColumn:
    """A column as the target database reports it."""

    name: str
    data_type: str  # information_schema.columns.data_type, lowercased
    char_length: int | None
    precision: int | None
    scale: int | None
    nullable: bool = True

    def sql_type(self) -> str:
        """The type as DDL spells it (for casts)."""
        if self.data_type in ("character varying", "varchar") and self.char_length:
            return f"VARCHAR({self.char_length})"
        if self.data_type in ("character", "char") and self.char_length:
            return f"CHAR({self.char_length})"
        if self.data_type == "numeric" and self.precision is not None:
            return f"NUMERIC({self.precision},{self.scale or 0})"
        return self.data_type.upper()


# Families of types a value can move between by an explicit cast without loss of meaning.
_FAMILIES = {
    "smallint": "number",
    "integer": "number",
    "bigint": "number",
    "numeric": "number",
    "decimal": "number",
    "real": "number",
    "double precision": "number",
    "boolean": "bool",
    "character varying": "text",
    "varchar": "text",
    "character": "text",
    "char": "text",
    "text": "text",
    "jsonb": "text",
    "json": "text",
    "date": "time",
    "timestamp without time zone": "time",
    "timestamp with time zone": "time",
    "timestamp": "time",
    "bytea": "binary",
    "varbyte": "binary",
    "binary varying": "binary",
}


def type_family(data_type: str) -> str:
    """The family of a type name (``number``, ``text``, ``time``, ``bool``, ``binary``)."""
    base = data_type.lower().split("(")[0].strip()
    return _FAMILIES.get(base, base)


class TargetDialect(ABC):
    """One target database's differences from the shared load protocol."""

    capabilities: TargetCapabilities  # what the database can hold and do

    @property
    def name(self) -> str:
        """``postgres`` or ``redshift``."""
        return self.capabilities.name

    @property
    def enforces_primary_key(self) -> bool:
        """A duplicate key fails (PostgreSQL); Redshift accepts one silently, so it
        always merges through a staging table."""
        return self.capabilities.enforces_primary_key

    @property
    def upserts(self) -> bool:
        """``INSERT … ON CONFLICT (key) DO UPDATE`` merges (PostgreSQL); Redshift has no
        ON CONFLICT, so it deletes the keys and inserts."""
        return self.capabilities.upserts

    def merges_by_key(self, cur: Any, target: str, pk: list[str]) -> bool:
        """Whether ``MERGE`` may take the upsert's place on ``target`` (quoted), keyed by
        ``pk``: where the server has it and a unique index holds exactly those columns."""
        return False

    def is_duplicate_key(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the database refusing a duplicate primary key."""
        return False

    def is_upsert_refusal(self, exc: BaseException) -> bool:
        """Whether an upsert was refused for its input, not for the database's state."""
        return False

    def is_conflict(self, exc: BaseException) -> bool:
        """Whether the database aborted the transaction for a concurrent writer.

        SQLSTATE 40001 (serialization_failure) and 40P01 (deadlock_detected):
        https://www.postgresql.org/docs/current/errcodes-appendix.html
        """
        return getattr(exc, "pgcode", None) in ("40001", "40P01")

    def classify(self, exc: BaseException, doing: str) -> LoadError:
        """The driver's error as ours: a conflict (transient: retried), else a load error."""
        if self.is_conflict(exc):
            return LoadConflictError(
                f"{doing} was aborted by a concurrent writer: {first_line(exc)}"
            )
        return LoadError(f"{doing} failed: {first_line(exc)}")

    @abstractmethod
    def column_type(self, col: ColumnSpec) -> str:
        """The target type of a source column (SPEC §7)."""

    def table_options(self, schema: TableSchema, source_table: str, *, merges: bool) -> str:
        """Clauses after the column list of CREATE TABLE (Redshift: DISTSTYLE/SORTKEY;
        PostgreSQL: room for updates in a table that ``merges`` by key)."""
        return ""

    def create_table_sql(
        self,
        target_schema: str,
        table: str,
        schema: TableSchema,
        pk: list[str],
        *,
        merges: bool = False,
    ) -> str:
        """``CREATE TABLE IF NOT EXISTS`` from the staged schema (``merges``: its loads
        update rows by key, not only insert)."""
        cols = [
            f"{quote_pg(c.target_name)} {self.column_type(c)}"
            + ("" if c.target_nullable else " NOT NULL")
            for c in schema.columns
        ]
        if pk:
            cols.append(f"PRIMARY KEY ({', '.join(quote_pg(k) for k in pk)})")
        body = ",\n  ".join(cols)
        extra = self.table_options(schema, f"{schema.schema}.{schema.table}", merges=merges)
        return (
            f"CREATE TABLE IF NOT EXISTS {quote_pg_table(target_schema, table)} (\n  {body}\n)"
            + (f" {extra}" if extra else "")
        )

    def staging_sql(self, staging: str, schema: TableSchema) -> str:
        """A session-local staging table (``staging`` quoted) with the files' columns."""
        cols = ", ".join(f"{quote_pg(c.target_name)} {self.column_type(c)}" for c in schema.columns)
        return f"CREATE TEMP TABLE {staging} ({cols})"

    # How DDL spells an exact decimal type.
    decimal_name = "NUMERIC"

    def widen_varchar_sql(self, target_schema: str, table: str, column: str, length: int) -> str:
        """Make a VARCHAR column longer."""
        return (
            f"ALTER TABLE {quote_pg_table(target_schema, table)} "
            f"ALTER COLUMN {quote_pg(column)} TYPE VARCHAR({length})"
        )

    def change_column_sql(
        self, target_schema: str, table: str, column: str, new_type: str, nullable: bool
    ) -> list[str]:
        """Give a column a wider type (``new_type``) or drop its NOT NULL (``nullable``)."""
        qualified = quote_pg_table(target_schema, table)
        if nullable:
            return [f"ALTER TABLE {qualified} ALTER COLUMN {quote_pg(column)} DROP NOT NULL"]
        return [f"ALTER TABLE {qualified} ALTER COLUMN {quote_pg(column)} TYPE {new_type}"]

    # ------------------------------------------------------------ verify
    # The row hash of verify: the last 15 hex digits of the MD5 as a BIGINT, as
    # data-diff's PostgreSQL dialect computes it (the bit(60) cast reads hex).
    def digest_hash(self, row_text: str) -> str:
        """The 60-bit integer of the MD5 of ``row_text`` (an SQL text expression)."""
        return f"('x' || SUBSTRING(MD5({row_text}), {HASH_FROM}))::BIT(60)::BIGINT"

    def digest_hex(self, column: str) -> str:
        """Lowercase hex of a binary column."""
        return f"ENCODE({column}, 'hex')"

    def text_order(self, column: str) -> str:
        """A text column as it sorts by codepoint (MySQL's side sorts its UTF-8 bytes)."""
        return f'{column} COLLATE "C"'

    @abstractmethod
    def copy_files(
        self,
        cursor: Any,
        stage: Stage,
        table: str,
        schema: TableSchema,
        files: list[StagedFileRef],
        load_prefix: str,
    ) -> int:
        """Load ``files`` into ``table`` (quoted SQL name); return the rows the database counted."""
