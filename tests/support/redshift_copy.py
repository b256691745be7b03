"""Redshift COPY-from-Parquet rules for the test double: manifest, schema and value checks.

Redshift reads Parquet through Redshift Spectrum: columns are matched **by position**, the
counts must agree, and a file whose Parquet type does not fit the column fails the whole
COPY ("incompatible Parquet schema"):
  https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html
AWS documents no exact type table for COPY; where it is silent the double is strict (same
integer width, exact DECIMAL precision and scale, TIMESTAMP in microseconds only).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.support.redshift_ddl import RsType
from tests.support.redshift_sql import RedshiftError


@dataclass(frozen=True)
class TargetColumn:
    """A column of the COPY target, as Redshift would type it."""

    name: str
    rs_type: RsType


# --------------------------------------------------------------------------- PostgreSQL → Redshift

_PG_SIMPLE = {
    "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "real": "REAL",
    "double precision": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
}  # fmt: skip
_PG_LENGTH = re.compile(r"(character varying|character|numeric)(?:\((\d+)(?:,(\d+))?\))?$")


def rs_type_from_pg(pg_type: str, domain: str | None) -> RsType | None:
    """The Redshift type a PostgreSQL column (``format_type`` text) stands for, or None."""
    if domain and domain.startswith("varbyte_"):
        return RsType("VARBYTE", length=int(domain.removeprefix("varbyte_")))
    if pg_type in _PG_SIMPLE:
        return RsType(_PG_SIMPLE[pg_type])
    if pg_type.startswith("timestamp"):
        return RsType("TIMESTAMPTZ" if "with time zone" in pg_type else "TIMESTAMP")
    if pg_type == "text":
        return RsType("VARCHAR", length=256)  # Redshift TEXT is VARCHAR(256)
    if pg_type == "bytea":
        return RsType("VARBYTE", length=64000)  # Redshift's VARBYTE default
    m = _PG_LENGTH.match(pg_type)
    if m is None:
        return None
    kind, a, b = m.groups()
    if kind == "numeric":
        return RsType("DECIMAL", precision=int(a or 18), scale=int(b or 0))
    default = 256 if kind == "character varying" else 1
    return RsType("VARCHAR" if kind == "character varying" else "CHAR", length=int(a or default))


# --------------------------------------------------------------------------- manifest

# A Parquet COPY manifest needs meta.content_length for every entry, which must be the
# object's real size; a mandatory entry whose file is missing fails the COPY, a missing
# optional one is skipped:
#   https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html
#   https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    m = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if m is None:
        raise RedshiftError(f"invalid S3 URL {url!r}")
    return m.group(1), m.group(2)


def _get_object(s3: Any, url: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    bucket, key = split_s3_url(url)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise


def read_manifest(s3: Any, manifest_url: str) -> list[tuple[str, bytes]]:
    """Fetch and verify a manifest; return (url, bytes) for each file present."""
    body = _get_object(s3, manifest_url)
    if body is None:
        raise RedshiftError(f"Manifest file {manifest_url!r} is not found (S3 key does not exist)")
    try:
        manifest = json.loads(body)
        entries = manifest["entries"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RedshiftError(f"Manifest file {manifest_url!r} is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise RedshiftError(f"Manifest file {manifest_url!r} has no entries")
    files: list[tuple[str, bytes]] = []
    for entry in entries:
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str):
            raise RedshiftError(f"Manifest entry without a url: {entry!r}")
        length = (entry.get("meta") or {}).get("content_length")
        if not isinstance(length, int) or isinstance(length, bool):
            raise RedshiftError(
                f"Manifest entry {url!r}: meta.content_length is required for PARQUET COPY"
            )
        data = _get_object(s3, url)
        if data is None:
            if entry.get("mandatory", False):
                raise RedshiftError(f"Manifest file entry {url!r} is mandatory but not found")
            continue
        if len(data) != length:
            raise RedshiftError(
                f"Spectrum Scan Error: file {url!r} content_length in manifest ({length}) "
                f"does not match the actual file size ({len(data)})"
            )
        files.append((url, data))
    return files


# --------------------------------------------------------------------------- schema


def _describe(col: pq.ColumnSchema) -> str:
    logical = str(col.logical_type) if col.logical_type.type != "NONE" else ""
    return f"{col.physical_type} {logical}".strip()


def _type_error(col: pq.ColumnSchema, target: TargetColumn) -> str | None:
    """Why the Parquet column cannot load into the target column, or None if it can."""
    physical, logical = col.physical_type, col.logical_type.type
    info = json.loads(col.logical_type.to_json()) if logical != "NONE" else {}
    kind = target.rs_type.kind
    int_ok = logical == "NONE" or (logical == "INT" and info.get("isSigned"))
    width = info.get("bitWidth", 32 if physical == "INT32" else 64)
    if kind == "DECIMAL":
        exact = (col.precision, col.scale) == (target.rs_type.precision, target.rs_type.scale)
        return None if logical == "DECIMAL" and exact else "DECIMAL needs the column's (p,s)"
    if kind in ("SMALLINT", "INTEGER", "BIGINT"):
        need = {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}[kind]
        ok = physical in ("INT32", "INT64") and int_ok and width == need
        return None if ok else f"{kind} needs a signed {need}-bit integer"
    if kind in ("TIMESTAMP", "TIMESTAMPTZ"):
        if physical == "INT96":
            return "INT96 timestamps are rejected by the double (write TIMESTAMP(MICROS))"
        if logical != "TIMESTAMP":
            return f"{kind} needs a Parquet TIMESTAMP"
        unit = info.get("timeUnit")
        return None if unit == "microseconds" else f"timestamp unit {unit}: must be microseconds"
    expected = {
        "REAL": ("FLOAT", "NONE"), "DOUBLE": ("DOUBLE", "NONE"), "BOOLEAN": ("BOOLEAN", "NONE"),
        "CHAR": ("BYTE_ARRAY", "STRING"), "VARCHAR": ("BYTE_ARRAY", "STRING"),
        "VARBYTE": ("BYTE_ARRAY", "NONE"), "DATE": ("INT32", "DATE"),
    }.get(kind)  # fmt: skip
    if expected is None:
        return f"column type {target.rs_type} is not emulated by the double"
    return None if (physical, logical) == expected else f"{kind} needs {' '.join(expected)}"


def check_schema(url: str, pf: pq.ParquetFile, columns: list[TargetColumn], fill: bool) -> None:
    """Column count, position/name and type of every Parquet column against the table."""
    fields = pf.schema_arrow
    nested = [f.name for f in fields if pa.types.is_nested(f.type)]
    if nested:
        raise RedshiftError(f"File {url!r} has nested columns {nested}: load them into SUPER")
    n_file, n_table = len(fields), len(columns)
    if n_file != n_table and not (fill and n_file < n_table):
        raise RedshiftError(
            f"Spectrum Scan Error: Unmatched number of columns between table and file "
            f"{url!r}. Table columns: {n_table}, Data columns: {n_file}"
        )
    for pos, target in enumerate(columns[:n_file]):
        col = pf.schema.column(pos)
        # Redshift itself maps by position only; the double also compares names (folded to
        # lower case as Redshift folds identifiers) so that a shifted column is caught even
        # when the neighbouring types happen to match.
        if col.name.lower() != target.name.lower():
            raise RedshiftError(
                f"Column order mismatch in {url!r} at position {pos + 1}: file column "
                f"{col.name!r}, table column {target.name!r} (Parquet COPY maps by position)"
            )
        reason = _type_error(col, target)
        if reason:
            raise RedshiftError(
                f"Spectrum Scan Error: File {url!r} has an incompatible Parquet schema for "
                f"column {target.name!r}. Column type: {target.rs_type}, Parquet schema: "
                f"{_describe(col)} ({reason})"
            )


# --------------------------------------------------------------------------- values


def check_values(url: str, batch: pa.RecordBatch, columns: list[TargetColumn]) -> None:
    """Lengths in bytes and characters Redshift refuses.

    VARCHAR(n)/CHAR(n) count UTF-8 **bytes** and CHAR takes single-byte characters only
    (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html); VARBYTE(n) counts
    bytes (https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html). A NUL
    character fails the load (FIELD_NOTES; PostgreSQL cannot store it either).
    """
    for pos, target in enumerate(columns[: batch.num_columns]):
        arr, kind, limit = batch.column(pos), target.rs_type.kind, target.rs_type.length
        if kind not in ("VARCHAR", "CHAR", "VARBYTE") or arr.null_count == len(arr):
            continue
        nbytes = pc.binary_length(arr)
        longest = pc.max(nbytes).as_py()
        if limit is not None and longest > limit:
            raise RedshiftError(
                f"Spectrum Scan Error: The length of the data column {target.name!r} is longer "
                f"than the length defined in the table. Table: {limit}, Data: {longest} "
                f"(bytes; file {url!r})"
            )
        if kind == "VARBYTE":
            continue
        if pc.any(pc.match_substring(arr, "\x00")).as_py():
            raise RedshiftError(f"Invalid NUL character in column {target.name!r} ({url!r})")
        if kind == "CHAR" and pc.any(pc.not_equal(pc.utf8_length(arr), nbytes)).as_py():
            raise RedshiftError(
                f"Multibyte character not supported for CHAR column {target.name!r}; use VARCHAR"
            )


def batch_to_csv(batch: pa.RecordBatch, columns: list[TargetColumn]) -> bytes:
    """The batch as PostgreSQL ``COPY … (FORMAT csv)`` input (unquoted empty field = NULL)."""
    arrays: list[pa.Array] = []
    for pos, target in enumerate(columns[: batch.num_columns]):
        arr = batch.column(pos)
        if pa.types.is_timestamp(arr.type) and target.rs_type.kind == "TIMESTAMP":
            arr = arr.cast(pa.timestamp("us"))  # UTC wall clock, no zone suffix
        elif pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            arr = pa.array(
                [None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string()
            )
        arrays.append(arr)
    names = [f"c{i}" for i in range(len(arrays))]
    buf = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False)
    pacsv.write_csv(pa.Table.from_arrays(arrays, names=names), buf, options)
    return buf.getvalue()
