"""Unit tests of the vectorised conversions of raw reader batches (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from src.backup.arrow_convert import (
    convert_batch,
    null_zero_dates,
    oversize_mask,
    row_key,
    strip_nul_chars,
    truncate_utf8,
)
from src.backup.conversion_stats import ConversionStats
from src.core.table_schema import (
    ColumnSpec,
    TableSchema,
    TypePolicy,
    arrow_type_from_name,
    arrow_type_name,
)
from src.errors import DataError


def spec(name: str, kind: str, arrow_type: pa.DataType, **extra: Any) -> ColumnSpec:
    """A ColumnSpec with only what conversion looks at."""
    select_as = {"decimal": "text", "date": "text", "datetime": "text", "bit_int": "int"}
    values: dict[str, Any] = {
        "name": name,
        "target_name": name.lower(),
        "data_type": kind,
        "column_type": kind,
        "nullable": True,
        "kind": kind,
        "arrow_type": arrow_type,
        "select_as": select_as.get(kind, "column"),
        "arrow_nullable": True,
    }
    return ColumnSpec(**(values | extra))


def table(*columns: ColumnSpec, pk: tuple[str, ...] = ("id",), **policy: Any) -> TableSchema:
    """A TableSchema ``db.t`` whose first column is ``id``."""
    id_spec = spec("id", "integer", pa.int64(), nullable=False, arrow_nullable=False)
    return TableSchema("db", "t", (id_spec, *columns), pk, TypePolicy(**policy))


def raw(*arrays: pa.Array) -> pa.RecordBatch:
    """A raw batch with positional column names."""
    return pa.RecordBatch.from_arrays(list(arrays), names=[f"c{i}" for i in range(len(arrays))])


def as_bytes(values: list[Any]) -> pa.Array:
    """A column as the PyMySQL reader builds it: every value as bytes."""
    return pa.array([None if v is None else str(v).encode() for v in values], pa.binary())


IDS = pa.array([1, 2, 3], pa.int64())


def test_null_zero_dates_counts_zero_and_zero_in_dates() -> None:
    arr = pa.array(["0000-00-00", "2020-00-15", "2020-05-00 10:00:00", "2020-05-01", None])
    out, mask, count = null_zero_dates(arr)
    assert count == 3
    assert mask.to_pylist() == [True, True, True, False, False]
    assert out.to_pylist() == [None, None, None, "2020-05-01", None]


def test_strip_nul_chars_counts_characters() -> None:
    arr = pa.array(["a\x00b\x00", "clean", None, "\x00"])
    out, count = strip_nul_chars(arr)
    assert count == 3
    assert out.to_pylist() == ["ab", "clean", None, ""]


def test_strip_nul_chars_leaves_clean_arrays_untouched() -> None:
    arr = pa.array(["clean", None, "é"])
    out, count = strip_nul_chars(arr)
    assert count == 0 and out is arr


def test_strip_nul_chars_on_a_slice_counts_only_the_slice() -> None:
    arr = pa.array(["\x00", "x", "y"]).slice(1)
    out, count = strip_nul_chars(arr)
    assert count == 0 and out.to_pylist() == ["x", "y"]


def test_truncate_utf8_cuts_on_a_character_boundary() -> None:
    arr = pa.array(["é" * 5, "short", None, "ab😀"])
    out, count = truncate_utf8(arr, 5)
    assert count == 2
    assert out.to_pylist() == ["éé", "short", None, "ab"]
    assert oversize_mask(out, 5) is None


@pytest.mark.parametrize("pymysql_like", [False, True], ids=["connectorx", "pymysql"])
def test_convert_batch_gives_the_final_types(pymysql_like: bool) -> None:
    schema = table(
        spec("small", "integer", pa.int16()),
        spec("big_u", "unsigned_bigint", pa.decimal128(20, 0)),
        spec("amount", "decimal", pa.decimal128(38, 10)),
        spec("ratio", "float", pa.float32()),
        spec("flag", "bit_bool", pa.bool_()),
        spec("mask", "bit_int", pa.int64()),
        spec("day", "date", pa.date32()),
        spec("at", "datetime", pa.timestamp("us")),
        spec("dur", "time", pa.string()),
        spec("blob", "binary", pa.binary()),
    )
    values: list[list[Any]] = [
        [1, 2, 3],
        [-128, 127, None],
        [18446744073709551615, 0, None],
        ["9999999999999999999999999999.9999999999", "-0.5000000000", None],
        [0.10000000149011612, 1.5, None],
        [1, 0, None],
        [1023, 0, None],
        ["9999-12-31", "0000-00-00", None],
        ["9999-12-31 23:59:59.999999", "2025-01-01 00:00:00", None],
        ["-838:59:59", "838:59:59.000001", None],
        [b"\x00\x01", b"", None],
    ]
    if pymysql_like:
        batch = raw(*[as_bytes(v) for v in values[:-1]], pa.array(values[-1], pa.binary()))
    else:
        native = [pa.int64(), pa.int8(), pa.uint64(), pa.string(), pa.float64()]
        native += [pa.uint32(), pa.uint64(), pa.string(), pa.string(), pa.string()]
        native += [pa.large_binary()]
        batch = raw(*[pa.array(v, t) for v, t in zip(values, native, strict=True)])
    out, stats = convert_batch(batch, schema)
    assert out.schema.equals(schema.arrow_schema)
    assert out.to_pylist()[0] == {
        "id": 1,
        "small": -128,
        "big_u": Decimal("18446744073709551615"),
        "amount": Decimal("9999999999999999999999999999.9999999999"),
        "ratio": pa.array([0.1], pa.float32())[0].as_py(),
        "flag": True,
        "mask": 1023,
        "day": dt.date(9999, 12, 31),
        "at": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "dur": "-838:59:59",
        "blob": b"\x00\x01",
    }
    assert out.column("day").to_pylist()[1:] == [None, None]
    assert stats.as_dict() == {"zero_dates": 1, "nul_chars": 0, "truncated": 0}


def test_both_raw_forms_convert_to_equal_batches() -> None:
    schema = table(spec("s", "string", pa.string()), spec("at", "timestamp", pa.timestamp("us")))
    strings, stamps = ["a\x00", "é", None], ["2038-01-19 03:14:07.999", None, "0000-00-00 00:00:00"]
    native, _ = convert_batch(raw(IDS, pa.array(strings), pa.array(stamps)), schema)
    text, _ = convert_batch(raw(as_bytes([1, 2, 3]), as_bytes(strings), as_bytes(stamps)), schema)
    assert native.equals(text)


def test_zero_date_policy_error_names_table_column_and_key() -> None:
    schema = table(spec("day", "date", pa.date32()), zero_dates="error")
    batch = raw(IDS, pa.array(["2020-01-01", "2020-00-01", None]))
    with pytest.raises(DataError, match=r"table db\.t, column 'day', primary key id=2: zero date"):
        convert_batch(batch, schema)


def test_invalid_date_text_is_a_data_error() -> None:
    schema = table(spec("day", "date", pa.date32()))
    with pytest.raises(DataError, match=r"id=3: 'yesterday' is not a valid date"):
        convert_batch(raw(IDS, pa.array(["2020-01-01", "0000-00-00", "yesterday"])), schema)


def test_nul_policy_error() -> None:
    schema = table(spec("s", "string", pa.string()), nul_chars="error")
    with pytest.raises(DataError, match=r"column 's', primary key id=3: value contains a NUL"):
        convert_batch(raw(IDS, pa.array(["a", "b", "c\x00"])), schema)


def test_oversize_text_error_and_truncate() -> None:
    long_value = "é" * 40000
    batch = raw(IDS, pa.array(["ok", long_value, None]))
    with pytest.raises(DataError, match=r"id=2: value is 80000 bytes, over Redshift's 65535"):
        convert_batch(batch, table(spec("t", "string", pa.string())))
    truncating = table(spec("t", "string", pa.string()), oversize_text="truncate")
    out, stats = convert_batch(batch, truncating)
    assert out.column("t").to_pylist() == ["ok", "é" * 32767, None]
    assert stats.truncated == 1 and dict(stats.by_column["t"]) == {"truncated": 1}


def test_short_columns_skip_the_oversize_scan() -> None:
    # A VARCHAR(10) cannot exceed the cap, so an impossible value is not even looked at.
    short = spec("t", "string", pa.string(), max_value_bytes=40)
    out, stats = convert_batch(raw(IDS, pa.array(["x" * 70000, None, None])), table(short))
    assert len(out.column("t")[0].as_py()) == 70000 and stats.truncated == 0


def test_oversize_binary_is_an_error() -> None:
    batch = raw(IDS, pa.array([b"x" * 1_024_001, None, b""], pa.binary()))
    with pytest.raises(DataError, match=r"id=1: value is 1024001 bytes, over Redshift's"):
        convert_batch(batch, table(spec("b", "binary", pa.binary())))


def test_bit64_with_the_top_bit_set_is_an_error() -> None:
    batch = raw(IDS, pa.array([1, 2**64 - 1, None], pa.uint64()))
    with pytest.raises(DataError, match=r"id=2: BIT value 18446744073709551615 does not fit"):
        convert_batch(batch, table(spec("m", "bit_int", pa.int64())))


def test_integer_overflow_is_a_data_error() -> None:
    batch = raw(IDS, as_bytes([1, 40000, None]))
    with pytest.raises(
        DataError, match=r"column 'n', primary key id=2: '40000' does not fit int16"
    ):
        convert_batch(batch, table(spec("n", "integer", pa.int16())))


@pytest.mark.parametrize("pymysql_like", [False, True])
def test_a_scaled_decimal_becomes_the_decimal_of_its_digits(pymysql_like: bool) -> None:
    # DECIMAL(18,4) read as CAST(x * 10000 AS SIGNED): the BIGINT of its digits.
    digits = [999_999_999_999_999_999, -999_999_999_999_999_999, None]
    column = as_bytes(digits) if pymysql_like else pa.array(digits, pa.int64())
    d18 = spec("d", "decimal", pa.decimal128(18, 4), select_as="scaled")
    batch, _ = convert_batch(raw(IDS, column), table(d18))
    assert batch.schema.field("d").type == pa.decimal128(18, 4)
    assert batch.column(1).to_pylist() == [
        Decimal("99999999999999.9999"),
        Decimal("-99999999999999.9999"),
        None,
    ]
    assert d18.select_expr() == "CAST(`d` * 10000 AS SIGNED) AS `d`"


def test_a_scaled_decimal_that_is_no_integer_is_a_data_error() -> None:
    d5 = spec("d", "decimal", pa.decimal128(5, 2), select_as="scaled", column_type="decimal(5,2)")
    with pytest.raises(DataError, match=r"id=2: '1.5' is not the integer of a decimal\(5,2\)"):
        convert_batch(raw(IDS, as_bytes([1, "1.5", None])), table(d5))


def test_row_key_without_primary_key_and_with_a_compound_one() -> None:
    schema = table(spec("code", "string", pa.string()), pk=())
    batch = raw(IDS, pa.array(["a", "b", "c"]))
    assert row_key(batch, schema, 1) == "row 2 of the chunk (table has no primary key)"
    schema = table(spec("code", "string", pa.string()), pk=("id", "code"))
    assert row_key(raw(as_bytes([1, 2, 3]), as_bytes(["a", "b", "c"])), schema, 2) == (
        "primary key id=3, code='c'"
    )


def test_column_count_mismatch_is_a_data_error() -> None:
    with pytest.raises(DataError, match="returned 1 columns, the schema has 2"):
        convert_batch(raw(IDS), table(spec("x", "string", pa.string())))


def test_stats_accumulate() -> None:
    total = ConversionStats()
    one = ConversionStats()
    one.count("zero_dates", "d", 2)
    one.count("nul_chars", "s", 0)
    total.add(one)
    total.add(one)
    assert total.as_dict() == {"zero_dates": 4, "nul_chars": 0, "truncated": 0}
    assert {k: dict(v) for k, v in total.by_column.items()} == {"d": {"zero_dates": 4}}


def test_select_list_quotes_and_escapes_percent() -> None:
    schema = TableSchema(
        "d%b",
        "t`x",
        (
            spec("we`ird%s", "string", pa.string()),
            spec("amount", "decimal", pa.decimal128(10, 2)),
            spec("m", "bit_int", pa.int64()),
        ),
    )
    assert schema.select_list() == (
        "`we``ird%%s`, CAST(`amount` AS CHAR) AS `amount`, (`m` + 0) AS `m`"
    )
    assert schema.sql_table() == "`d%%b`.`t``x`"


@pytest.mark.parametrize(
    "arrow_type",
    [pa.int16(), pa.decimal128(20, 0), pa.timestamp("us"), pa.date32(), pa.binary(), pa.bool_()],
)
def test_arrow_type_names_round_trip(arrow_type: pa.DataType) -> None:
    assert arrow_type_from_name(arrow_type_name(arrow_type)) == arrow_type


def test_schema_json_round_trip_and_rejects_foreign_documents() -> None:
    schema = table(spec("amount", "decimal", pa.decimal128(38, 10), redshift_length=None))
    assert TableSchema.from_json(schema.to_json()) == schema
    with pytest.raises(DataError, match="format"):
        TableSchema.from_json('{"format": "other", "version": 1}')
    with pytest.raises(DataError, match="not valid JSON"):
        TableSchema.from_json("{")
