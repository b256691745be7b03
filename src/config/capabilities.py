"""What each target database can hold and do, in one object per database.

The dialects (:mod:`src.load.targets`), the backup's value limits and the names'
checks all ask this, never a type string: like dlt's destination capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetCapabilities:
    """A target database's limits and abilities."""

    name: str
    # Identifiers: Redshift 1 to 127 bytes of UTF-8
    # (https://docs.aws.amazon.com/redshift/latest/dg/r_names.html); PostgreSQL truncates
    # silently to NAMEDATALEN - 1 = 63 bytes, so two long names would become one table
    # (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).
    max_identifier_bytes: int
    # Most bytes a text / binary value may have (None: TEXT and BYTEA take what MySQL holds).
    # https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html
    # https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html
    max_text_bytes: int | None
    max_binary_bytes: int | None
    # The database rejects a duplicate primary key (Redshift accepts one silently).
    enforces_primary_key: bool
    # INSERT … ON CONFLICT (key) DO UPDATE merges (Redshift has no ON CONFLICT).
    upserts: bool


POSTGRES = TargetCapabilities(
    name="postgres",
    max_identifier_bytes=63,
    max_text_bytes=None,
    max_binary_bytes=None,
    enforces_primary_key=True,
    upserts=True,
)
REDSHIFT = TargetCapabilities(
    name="redshift",
    max_identifier_bytes=127,
    max_text_bytes=65535,
    max_binary_bytes=1_024_000,
    enforces_primary_key=False,
    upserts=False,
)
CAPABILITIES = {caps.name: caps for caps in (POSTGRES, REDSHIFT)}


def capabilities(target_type: str) -> TargetCapabilities:
    """The capabilities of a target type (``postgres`` or ``redshift``)."""
    return CAPABILITIES[target_type]
