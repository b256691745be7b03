"""Amazon Redshift as a target: byte-sized VARCHARs, COPY from a Parquet manifest.

Redshift quirks that shape this module:

- VARCHAR lengths count bytes, at most 65535
  (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html);
- COPY from Parquet maps columns by position with no type coercion, and a
  manifest for columnar files needs ``meta.content_length``
  (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html,
  https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html);
- ``pg_last_copy_count()`` gives the rows the last COPY of the session loaded
  (https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_COUNT.html).

Credentials: ``IAM_ROLE`` when configured; otherwise ``CREDENTIALS`` built from
the stage's keys, which never reach a log line (the statement logged is the
one with the secret masked).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa

from src.config.capabilities import REDSHIFT
from src.config.redshift_keys import table_keys
from src.config.settings import StageConfig, TargetConnection
from src.core.row_compare import HASH_FROM
from src.core.stage import Stage
from src.core.table_schema import ColumnSpec, TableSchema
from src.errors import ConfigError
from src.load.targets.base import COMMON_TYPES, StagedFileRef, TargetDialect
from src.utils.faults import fault_point
from src.utils.logging_setup import get_logger
from src.utils.naming import quote_literal, quote_pg, quote_pg_table

log = get_logger("redshift")
REDSHIFT_MAX_VARCHAR = REDSHIFT.max_text_bytes or 0
REDSHIFT_MAX_VARBYTE = REDSHIFT.max_binary_bytes or 0


class RedshiftDialect(TargetDialect):
    """Redshift: the staged files are COPYed straight from S3 through a manifest."""

    capabilities = REDSHIFT
    decimal_name = "DECIMAL"

    def __init__(
        self, target: TargetConnection, stage_cfg: StageConfig, keys: dict[str, Any]
    ) -> None:
        if stage_cfg.is_local:
            raise ConfigError("a redshift target needs an S3 stage, not a local_path")
        self.target = target
        self.stage_cfg = stage_cfg
        self.keys = keys

    def column_type(self, col: ColumnSpec) -> str:
        """SPEC §7's Redshift column."""
        t = col.arrow_type
        if pa.types.is_decimal(t):
            return f"DECIMAL({t.precision},{t.scale})"
        if pa.types.is_string(t):
            length = col.redshift_length or REDSHIFT_MAX_VARCHAR
            return f"VARCHAR({min(max(length, 1), REDSHIFT_MAX_VARCHAR)})"
        if pa.types.is_binary(t):
            length = col.redshift_length or REDSHIFT_MAX_VARBYTE
            return f"VARBYTE({min(max(length, 1), REDSHIFT_MAX_VARBYTE)})"
        return COMMON_TYPES[str(t)]

    def is_conflict(self, exc: BaseException) -> bool:
        """Redshift's serializable isolation violation, error 1023 (SQLSTATE XX000).

        https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html
        """
        return super().is_conflict(exc) or str(exc).lstrip().startswith(("1023", "ERROR:  1023"))

    def change_column_sql(
        self, target_schema: str, table: str, column: str, new_type: str, nullable: bool
    ) -> list[str]:
        """Add a column of ``new_type``, copy, drop the old one, rename: one transaction.

        Redshift's ALTER COLUMN changes only a VARCHAR's length and cannot drop
        NOT NULL (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html),
        so an integer widening or a nullable column is a new column. The loads
        name their columns, so the new column's place at the end does not matter.
        """
        qualified = quote_pg_table(target_schema, table)
        old = quote_pg(column)
        new = quote_pg("s3b_swap_" + hashlib.sha1(column.encode(), usedforsecurity=False)
                       .hexdigest()[:8])  # fmt: skip
        return [
            "BEGIN",
            f"ALTER TABLE {qualified} ADD COLUMN {new} {new_type}",
            f"UPDATE {qualified} SET {new} = CAST({old} AS {new_type})",
            f"ALTER TABLE {qualified} DROP COLUMN {old}",
            f"ALTER TABLE {qualified} RENAME COLUMN {new} TO {old}",
            "COMMIT",
        ]

    def digest_hash(self, row_text: str) -> str:
        """STRTOL of the MD5's last 15 hex digits, as DECIMAL(38) so that SUM cannot overflow.

        Redshift has no bit-string casts; data-diff's Redshift dialect uses the same form.
        https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
        """
        return f"CAST(STRTOL(SUBSTRING(MD5({row_text}), {HASH_FROM}), 16) AS DECIMAL(38))"

    def digest_hex(self, column: str) -> str:
        """FROM_VARBYTE(…, 'hex'): https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_VARBYTE.html"""
        return f"LOWER(FROM_VARBYTE({column}, 'hex'))"

    def text_order(self, column: str) -> str:
        """Redshift compares VARCHAR by its UTF-8 bytes (its collation is case-sensitive binary).

        https://docs.aws.amazon.com/redshift/latest/dg/r_collation_function.html
        """
        return column

    def table_options(self, schema: TableSchema, source_table: str, *, merges: bool) -> str:
        """DISTSTYLE / DISTKEY / SORTKEY from redshift_keys.json (AUTO by default)."""
        names = [c.target_name for c in schema.columns]
        return table_keys(self.keys, source_table, names).clauses()

    def copy_sql(self, table: str, manifest_uri: str, *, masked: bool = False) -> str:
        """The COPY statement; ``masked`` replaces any credential with ``***``."""
        if self.target.iam_role:
            auth = f"IAM_ROLE {quote_literal(self.target.iam_role)}"
        else:
            key = self.stage_cfg.access_key_id
            secret = self.stage_cfg.secret_access_key
            if key is None or secret is None:
                raise ConfigError("redshift target needs iam_role, or access keys in its s3_config")
            if masked:
                creds = "aws_access_key_id=***;aws_secret_access_key=***"
            else:
                creds = (
                    f"aws_access_key_id={key.get_secret_value()};"
                    f"aws_secret_access_key={secret.get_secret_value()}"
                )
            auth = f"CREDENTIALS {quote_literal(creds)}"
        return f"COPY {table} FROM {quote_literal(manifest_uri)} {auth} FORMAT AS PARQUET MANIFEST"

    def copy_files(
        self,
        cursor: Any,
        stage: Stage,
        table: str,
        schema: TableSchema,
        files: list[StagedFileRef],
        load_prefix: str,
    ) -> int:
        """Write the manifest next to the files, COPY it, return ``pg_last_copy_count()``."""
        manifest = {
            "entries": [
                {"url": f.uri, "mandatory": True, "meta": {"content_length": f.size}} for f in files
            ]
        }
        manifest_key = f"{load_prefix}manifest.json"
        stage.put_bytes(manifest_key, json.dumps(manifest).encode())
        manifest_uri = stage.uri(manifest_key)
        fault_point("after_manifest")
        log.info("COPY", sql=self.copy_sql(table, manifest_uri, masked=True))
        try:
            cursor.execute(self.copy_sql(table, manifest_uri))
        except Exception as exc:
            raise self.classify(
                exc, f"Redshift COPY of {len(files)} files via {manifest_uri}"
            ) from None
        cursor.execute("SELECT pg_last_copy_count()")
        (count,) = cursor.fetchone()
        return int(count)
