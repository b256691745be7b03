"""Raw reader batches → the final Arrow batch of a table (SPEC §7), vectorised.

Both readers produce a *raw* RecordBatch from :meth:`TableSchema.select_list`:
connectorx with native Arrow types for pass-through columns and strings for
the text projections; PyMySQL with strings (or binary) everywhere. Columns are
matched by position. Every step here is a pyarrow.compute kernel over a whole
column; Python only touches individual values on the rare paths (values to
truncate, the offending value of an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from src.backup.conversion_stats import ConversionStats
from src.core.json_text import has_json_nul_escape
from src.core.table_schema import TEMPORAL_KINDS, ColumnSpec, TableSchema
from src.errors import DataError

# MySQL's zero date and "zero-in-date" values (month or day 00) exist only while
# NO_ZERO_DATE / NO_ZERO_IN_DATE are off; no Arrow or target type can hold them:
# https://mariadb.com/kb/en/sql-mode/#no_zero_date
ZERO_DATE_PATTERN = r"^[0-9]{4}-(00-[0-9]{2}|[0-9]{2}-00)"
_INT64_MAX = 2**63 - 1
_SCAN_STEP = 1 << 20


def row_key(raw: pa.RecordBatch, schema: TableSchema, row: int) -> str:
    """Describe row ``row`` of ``raw`` by its primary key, for error messages.

    Key values are shown converted (``id=8``, ``code='x'``), so the message is the
    same whichever reader produced the raw batch.
    """
    if not schema.primary_key:
        return f"row {row + 1} of the chunk (table has no primary key)"
    one_row = raw.slice(row, 1)
    parts = []
    for name in schema.primary_key:
        index = next(i for i, c in enumerate(schema.columns) if c.name == name)
        try:
            value = convert_column(one_row, schema, index, ConversionStats())[0].as_py()
        except DataError:
            value = one_row.column(index)[0].as_py()
        parts.append(f"{name}={value!r}")
    return "primary key " + ", ".join(parts)


@dataclass
class _Column:
    """One column of a raw batch being converted, with what its errors must name."""

    raw: pa.RecordBatch
    schema: TableSchema
    index: int
    stats: ConversionStats

    @property
    def spec(self) -> ColumnSpec:
        return self.schema.columns[self.index]

    @property
    def values(self) -> pa.Array:
        return self.raw.column(self.index)

    def error(self, row: int, problem: str, hint: str) -> DataError:
        key = row_key(self.raw, self.schema, row)
        return DataError(
            f"table {self.schema.qualified_name}, column {self.spec.name!r}, {key}: "
            f"{problem}; {hint}"
        )


def _is_text(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
    )


def as_string(arr: pa.Array) -> pa.Array:
    """View any string/binary array as ``string`` (UTF-8 validated)."""
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def null_zero_dates(arr: pa.Array) -> tuple[pa.Array, pa.Array, int]:
    """Null MySQL zero dates in a text array; return (array, mask of zero dates, count)."""
    mask = pc.fill_null(pc.match_substring_regex(arr, ZERO_DATE_PATTERN), False)
    count = pc.sum(mask).as_py() or 0
    if count:
        arr = pc.if_else(mask, pa.nulls(len(arr), arr.type), arr)
    return arr, mask, count


def _may_contain_nul(arr: pa.Array) -> bool:
    # memchr over the value bytes, 1 MiB at a time: ~40x faster than the string
    # kernels, which matters because every string column of every batch is scanned.
    # Bytes outside the array's slice can only cause a needless exact count.
    data = arr.buffers()[2] if len(arr.buffers()) > 2 else None
    if data is None:
        return False
    view = memoryview(data)
    return any(
        bytes(view[i : i + _SCAN_STEP]).find(b"\x00") >= 0 for i in range(0, len(view), _SCAN_STEP)
    )


def strip_nul_chars(arr: pa.Array) -> tuple[pa.Array, int]:
    """Remove NUL characters from a string array; return (array, characters removed)."""
    if not _may_contain_nul(arr):
        return arr, 0
    count = pc.sum(pc.count_substring(arr, "\x00")).as_py() or 0
    if count:
        arr = pc.replace_substring(arr, "\x00", "")
    return arr, count


def oversize_mask(arr: pa.Array, max_bytes: int) -> pa.Array | None:
    """Boolean mask of values longer than ``max_bytes`` bytes, or None when there is none."""
    mask = pc.fill_null(pc.greater(pc.binary_length(arr), max_bytes), False)
    return mask if pc.any(mask).as_py() else None


def truncate_utf8(arr: pa.Array, max_bytes: int) -> tuple[pa.Array, int]:
    """Cut string values to at most ``max_bytes`` UTF-8 bytes on a character boundary."""
    mask = oversize_mask(arr, max_bytes)
    if mask is None:
        return arr, 0
    long_values = pc.filter(arr, mask).to_pylist()
    # Only the oversize values go through Python; "ignore" drops just the partial
    # character a byte cut leaves at the end.
    cut = [v.encode()[:max_bytes].decode("utf-8", "ignore") for v in long_values]
    return pc.replace_with_mask(arr, mask, pa.array(cut, pa.string())), len(cut)


def _first_true(mask: pa.Array) -> int:
    return int(pc.indices_nonzero(mask)[0].as_py())


def _first_unparsable(arr: pa.Array, target: pa.DataType) -> int:
    # Error path only: find the value the vectorised cast refused.
    for i, value in enumerate(arr):
        if value.is_valid:
            try:
                pa.array([value.as_py()], arr.type).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return i
    return 0


def _temporal(col: _Column) -> pa.Array:
    target = col.spec.arrow_type
    if not _is_text(col.values.type):
        # Decoded by connectorx, which cannot produce a zero date (it panics instead).
        return col.values.cast(target)
    arr = as_string(col.values)
    try:
        return arr.cast(target)  # fast path: no zero dates in this batch
    except pa.ArrowInvalid:
        pass
    arr, mask, count = null_zero_dates(arr)
    if count and col.schema.policy.zero_dates == "error":
        bad = _first_true(mask)
        hint = "fix the value in MySQL or set zero_dates: null for this table"
        raise col.error(bad, f"zero date {as_string(col.values)[bad].as_py()!r}", hint)
    col.stats.count("zero_dates", col.spec.target_name, count)
    try:
        return arr.cast(target)
    except pa.ArrowInvalid:
        bad = _first_unparsable(arr, target)
        problem = f"{arr[bad].as_py()!r} is not a valid {col.spec.data_type}"
        raise col.error(bad, problem, "fix the value in MySQL") from None


def _string(col: _Column) -> pa.Array:
    arr, nuls = strip_nul_chars(as_string(col.values))
    if nuls and col.schema.policy.nul_chars == "error":
        bad = _first_true(pc.fill_null(pc.match_substring(as_string(col.values), "\x00"), False))
        problem = "value contains a NUL character, which Redshift cannot load"
        hint = "fix the value in MySQL or set nul_chars: strip for this table"
        raise col.error(bad, problem, hint)
    if col.spec.is_json and col.schema.policy.nul_chars == "error":
        escaped = has_json_nul_escape(arr)
        if pc.any(escaped).as_py():
            problem = "JSON value holds a \\u0000 escape (a NUL character), which JSONB refuses"
            hint = "fix the value in MySQL or set nul_chars: strip for this table"
            raise col.error(_first_true(escaped), problem, hint)
    col.stats.count("nul_chars", col.spec.target_name, nuls)
    limit = col.schema.policy.max_text_bytes
    if limit is None:
        return arr
    if col.spec.max_value_bytes is not None and col.spec.max_value_bytes <= limit:
        return arr  # the column cannot hold a longer value: skip the scan
    mask = oversize_mask(arr, limit)
    if mask is None:
        return arr
    if col.schema.policy.oversize_text == "error":
        bad = _first_true(mask)
        size = len(arr[bad].as_py().encode())
        problem = f"value is {size} bytes, over Redshift's {limit}-byte VARCHAR"
        hint = "shorten it in MySQL or set oversize_text: truncate for this table"
        raise col.error(bad, problem, hint)
    arr, cut = truncate_utf8(arr, limit)
    col.stats.count("truncated", col.spec.target_name, cut)
    return arr


def _binary(col: _Column) -> pa.Array:
    arr = col.values.cast(pa.binary())
    limit = col.schema.policy.max_binary_bytes
    if limit is None:
        return arr
    if col.spec.max_value_bytes is not None and col.spec.max_value_bytes <= limit:
        return arr
    mask = oversize_mask(arr, limit)
    if mask is not None:
        bad = _first_true(mask)
        problem = f"value is {len(arr[bad].as_py())} bytes, over Redshift's {limit}-byte VARBYTE"
        raise col.error(bad, problem, "shorten it in MySQL or exclude the column")
    return arr


def _bit_int(col: _Column) -> pa.Array:
    arr = col.values
    if not pa.types.is_integer(arr.type):
        arr = as_string(arr)  # PyMySQL's text of `col + 0`
    unsigned = arr if pa.types.is_unsigned_integer(arr.type) else arr.cast(pa.uint64())
    big = pc.fill_null(pc.greater(unsigned, pa.scalar(_INT64_MAX, pa.uint64())), False)
    if pc.any(big).as_py():
        bad = _first_true(big)
        problem = f"BIT value {unsigned[bad].as_py()} does not fit BIGINT"
        raise col.error(bad, problem, "only BIT(64) values below 2**63 can be carried")
    return unsigned.cast(pa.int64())


def _scaled(col: _Column) -> pa.Array:
    """A DECIMAL read as the BIGINT of its digits (``select_as: scaled``), as the decimal.

    Arrow casts an int64 to a decimal of 19 digits at least; the column type bounds
    the digits, so the same 16-byte values are then viewed at the column's precision
    and scale (``1234567`` of a DECIMAL(10,3) is 1234.567).
    """
    arr = col.values
    if not pa.types.is_integer(arr.type):
        arr = as_string(arr)  # PyMySQL's text of the integer
    try:
        ints = arr.cast(pa.int64())
    except pa.ArrowInvalid:
        bad = _first_unparsable(arr, pa.int64())
        problem = f"{arr[bad].as_py()!r} is not the integer of a {col.spec.column_type}"
        raise col.error(bad, problem, "check the column type in MySQL") from None
    return ints.cast(pa.decimal128(19, 0)).view(col.spec.arrow_type)


def _cast(col: _Column) -> pa.Array:
    arr = col.values
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.string())
    if col.spec.kind == "float":
        # Through float64: FLOAT is projected as DOUBLE, whose text form round-trips.
        arr = arr.cast(pa.float64())
    try:
        return arr.cast(col.spec.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_unparsable(arr, col.spec.arrow_type)
        problem = f"{arr[bad].as_py()!r} does not fit {col.spec.arrow_type}"
        raise col.error(bad, problem, "check the column type in MySQL") from None


def convert_column(
    raw: pa.RecordBatch, schema: TableSchema, index: int, stats: ConversionStats
) -> pa.Array:
    """Convert column ``index`` of ``raw`` to its final type, counting into ``stats``."""
    col = _Column(raw, schema, index, stats)
    kind = col.spec.kind
    if kind in TEMPORAL_KINDS:
        return _temporal(col)
    if kind == "string":
        return _string(col)
    if kind in ("time", "decimal_text"):
        return as_string(col.values)
    if kind == "binary":
        return _binary(col)
    if kind == "bit_int":
        return _bit_int(col)
    if col.spec.select_as == "scaled":
        return _scaled(col)
    return _cast(col)


def convert_batch(
    raw: pa.RecordBatch, schema: TableSchema
) -> tuple[pa.RecordBatch, ConversionStats]:
    """Turn a raw reader batch into a batch of ``schema.arrow_schema`` plus its counters."""
    if raw.num_columns != len(schema.columns):
        raise DataError(
            f"table {schema.qualified_name}: the reader returned {raw.num_columns} columns, "
            f"the schema has {len(schema.columns)}; the table changed during the run, rerun it"
        )
    stats = ConversionStats()
    arrays = [convert_column(raw, schema, i, stats) for i in range(raw.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema), stats
