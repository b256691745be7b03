"""MySQL → Arrow types against the real MariaDB, read by both readers (SPEC §7, §10).

Every MySQL type with its extreme values goes through connectorx and PyMySQL;
both must give the golden Arrow types, the exact values, identical batches and
byte-identical Parquet files with microsecond timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import ssl
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pymysql
import pytest

from src.backup.connectorx_reader import ConnectorxReader
from src.backup.conversion_stats import ConversionStats
from src.backup.mysql_reader import MySQLReader, PyMySQLReader, make_reader
from src.backup.mysql_schema import load_table_schema
from src.core.connections import (
    MySQLEndpoint,
    _pymysql_connection_class,
    preferred_tls_context,
)
from src.core.table_schema import TableSchema, TypePolicy
from src.errors import ConfigError, DataError, NativeDecodeError, SourceConnectionError
from src.utils.naming import quote_mysql, quote_mysql_table
from tests.support.databases import MySQLDatabase, mysql_database
from tests.support.pipelines import make_project

READERS: list[type[MySQLReader]] = [ConnectorxReader, PyMySQLReader]
NATIVE = "connectorx, dates native"
WHOLE = "connectorx, read whole"  # whole=True: the result read whole on a worker thread
F32_01 = pa.array([0.1], pa.float32())[0].as_py()  # 0.1 as MySQL's FLOAT stores it

EVERY_TYPE_DDL = """
CREATE TABLE every_type (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, yr YEAR,
  dec38 DECIMAL(38,10), dec5 DECIMAL(5,2), dec18 DECIMAL(18,4), fl FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10),
  ch CHAR(4), vc VARCHAR(8), tx TEXT, lt LONGTEXT, js JSON,
  en ENUM('small','medium','large'), st SET('a','b','c'), geo GEOMETRY,
  d DATE, dtm DATETIME, dt6 DATETIME(6), ts3 TIMESTAMP(3) NULL, tm TIME, tm6 TIME(6),
  bn BINARY(4), vb VARBINARY(16), bl BLOB
) CHARACTER SET utf8mb4
"""
GOLDEN_TYPES: dict[str, pa.DataType] = {
    "id": pa.int32(),
    "ti": pa.int16(),
    "tiu": pa.int16(),
    "si": pa.int16(),
    "siu": pa.int32(),
    "mi": pa.int32(),
    "miu": pa.int32(),
    "i": pa.int32(),
    "iu": pa.int64(),
    "bi": pa.int64(),
    "biu": pa.decimal128(20, 0),
    "yr": pa.int16(),
    "dec38": pa.decimal128(38, 10),
    "dec5": pa.decimal128(5, 2),
    "dec18": pa.decimal128(18, 4),
    "fl": pa.float32(),
    "db": pa.float64(),
    "b1": pa.bool_(),
    "b10": pa.int64(),
    **{name: pa.string() for name in ("ch", "vc", "tx", "lt", "js", "en", "st", "geo")},
    "d": pa.date32(),
    "dtm": pa.timestamp("us"),
    "dt6": pa.timestamp("us"),
    "ts3": pa.timestamp("us"),
    "tm": pa.string(),
    "tm6": pa.string(),
    "bn": pa.binary(),
    "vb": pa.binary(),
    "bl": pa.binary(),
}
EMOJI = "😀"
MAX_ROW: dict[str, Any] = {
    "id": 1, "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607,
    "miu": 16777215, "i": 2147483647, "iu": 4294967295, "bi": 9223372036854775807,
    "biu": Decimal("18446744073709551615"), "yr": 2155,
    "dec38": Decimal("9999999999999999999999999999.9999999999"), "dec5": Decimal("999.99"),
    "dec18": Decimal("99999999999999.9999"),
    "fl": 123456792.0,  # the text protocol would say 123457000 (6 significant digits)
    "db": 1.7976931348623157e308, "b1": True, "b10": 1023,
    "ch": EMOJI * 4, "vc": EMOJI * 8, "tx": "ünïcödé — text", "lt": "x" * 70000,
    "js": '{"k": [1, 2, "é"]}', "en": "large", "st": "a,c", "geo": "POINT(1 2)",
    "d": dt.date(9999, 12, 31), "dtm": dt.datetime(9999, 12, 31, 23, 59, 59),
    "dt6": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    "ts3": dt.datetime(2038, 1, 19, 3, 14, 7, 999000),
    "tm": "838:59:59", "tm6": "838:59:59.000001",
    "bn": b"\x00\x01\x02\x03", "vb": b"a\x00b", "bl": bytes(range(256)),
}  # fmt: skip
MIN_ROW: dict[str, Any] = {
    "id": 2, "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
    "i": -2147483648, "iu": 0, "bi": -9223372036854775808, "biu": Decimal(0), "yr": 1901,
    "dec38": Decimal("-9999999999999999999999999999.9999999999"), "dec5": Decimal("-999.99"),
    "dec18": Decimal("-99999999999999.9999"),
    "fl": F32_01, "db": -2.2250738585072014e-308, "b1": False, "b10": 0,
    "ch": "", "vc": "a\x00b", "tx": "", "lt": "", "js": "[]", "en": "small", "st": "",
    "geo": "LINESTRING(0 0,1 1)", "d": dt.date(1000, 1, 1), "dtm": dt.datetime(1000, 1, 1),
    "dt6": dt.datetime(2025, 6, 30, 12, 34, 56, 1), "ts3": dt.datetime(1970, 1, 1, 0, 0, 1),
    "tm": "-838:59:59", "tm6": "-838:59:59.999999",
    "bn": b"\xff\xff\xff\xff", "vb": b"", "bl": b"\x00",
}  # fmt: skip
NULL_ROW: dict[str, Any] = {name: None for name in GOLDEN_TYPES} | {"id": 3}
ZERO_DATE_ROW: dict[str, Any] = NULL_ROW | {"id": 4}
ZERO_DATES = {"d": "0000-00-00", "dtm": "0000-00-00 00:00:00", "dt6": "2020-00-15 10:00:00"}
ZERO_DATES["ts3"] = "0000-00-00 00:00:00.000"
GEOMETRY_SQL = {"POINT(1 2)": "ST_GeomFromText('POINT(1 2)')"}
GEOMETRY_SQL["LINESTRING(0 0,1 1)"] = "ST_GeomFromText('LINESTRING(0 0,1 1)')"


def endpoint(db: MySQLDatabase, **changes: Any) -> MySQLEndpoint:
    """The endpoint of a test database."""
    values = {"host": db.host, "port": db.port, "user": db.user, "password": db.password}
    return MySQLEndpoint(**(values | {"database": db.name} | changes))


def schema_of(db: MySQLDatabase, table: str, policy: TypePolicy | None = None) -> TableSchema:
    """load_table_schema over a fresh connection."""
    with db.connect() as conn:
        return load_table_schema(conn, db.name, table, policy or TypePolicy())


def read_all(
    reader_cls: type[MySQLReader],
    db: MySQLDatabase,
    schema: TableSchema,
    where: str = "",
    params: Any = (),
    batch_size: int = 1000,
    whole: bool = False,
) -> tuple[list[pa.RecordBatch], ConversionStats]:
    """Every batch of ``SELECT <projection> FROM table [where] ORDER BY <pk>``.

    When connectorx cannot decode a date natively, the whole query is read again
    with the dates selected as text (the backup stage carries on from its position).
    """
    order = ", ".join(quote_mysql(c) for c in schema.primary_key) or "1"
    sql = f"SELECT {schema.select_list()} FROM {schema.sql_table()} {where} ORDER BY {order}"
    with reader_cls(endpoint(db), schema, batch_size) as reader:
        stream = reader.read(sql, params, whole=whole)
        try:
            batches = list(stream)
        except NativeDecodeError:
            if not schema.reads_dates_natively:
                raise
            text = schema.with_dates_as_text()
            return read_all(reader_cls, db, text, where, params, batch_size, whole)
    return batches, stream.stats


def insert(conn: Any, table: str, row: dict[str, Any]) -> None:
    """INSERT one row of the every-type table, geometries and bits as SQL expressions."""
    names, marks, values = [], [], []
    for name, value in row.items():
        names.append(quote_mysql(name))
        if name == "geo" and value is not None:
            marks.append(GEOMETRY_SQL[value])
        elif name in ("b1", "b10") and value is not None:
            marks.append("%s")
            values.append(int(value))
        else:
            marks.append("%s")
            values.append(value)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(marks)})", values)


def create_every_type(db: MySQLDatabase) -> tuple[str, dict[str, Any]]:
    """The every-type table with its max, min and NULL rows; ``(schema.table, table config)``."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(EVERY_TYPE_DDL)
        cur.execute("SET time_zone = '+00:00'")
        for row in (MAX_ROW, MIN_ROW, NULL_ROW):
            insert(conn, "every_type", row)
    # LONGTEXT holds 70,000 characters: past Redshift's 65535 bytes, truncated by policy.
    cfg = {"cdc_strategy": "id_only", "cdc_id_column": "id", "oversize_text": "truncate"}
    return f"{db.name}.every_type", cfg


@dataclass
class EveryType:
    """The every-type table and what each reader made of it."""

    db: MySQLDatabase
    schema: TableSchema
    batches: dict[str, pa.Table]
    stats: dict[str, ConversionStats]


@pytest.fixture(scope="module")
def every_type() -> Iterator[EveryType]:
    """The every-type table with max, min, NULL and zero-date rows, read by both readers."""
    with mysql_database() as db:
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute(EVERY_TYPE_DDL)
            cur.execute("SET time_zone = '+00:00'")
            for row in (MAX_ROW, MIN_ROW, NULL_ROW):
                insert(conn, "every_type", row)
            # Zero dates can only be written with a permissive sql_mode:
            # https://mariadb.com/kb/en/sql-mode/#no_zero_date
            cur.execute("SET SESSION sql_mode = ''")
            insert(conn, "every_type", ZERO_DATE_ROW | ZERO_DATES)
        schema = schema_of(db, "every_type", TypePolicy(oversize_text="truncate"))
        tables, stats = {}, {}
        for reader_cls in READERS:
            batches, stats[reader_cls.name] = read_all(reader_cls, db, schema, batch_size=2)
            tables[reader_cls.name] = pa.Table.from_batches(batches, schema.arrow_schema)
        # Without the zero-date row, connectorx decodes every date natively.
        batches, _ = read_all(ConnectorxReader, db, schema, where="WHERE id <> 4", batch_size=2)
        tables[NATIVE] = pa.Table.from_batches(batches, schema.arrow_schema)
        batches, stats[WHOLE] = read_all(ConnectorxReader, db, schema, batch_size=2, whole=True)
        tables[WHOLE] = pa.Table.from_batches(batches, schema.arrow_schema)
        yield EveryType(db, schema, tables, stats)


def test_golden_arrow_types(every_type: EveryType) -> None:
    arrow_schema = every_type.schema.arrow_schema
    assert dict(zip(arrow_schema.names, arrow_schema.types, strict=True)) == GOLDEN_TYPES
    for table in every_type.batches.values():
        assert table.schema.equals(every_type.schema.arrow_schema)
    assert not every_type.schema.arrow_schema.field("id").nullable
    # NULLable in Arrow while zero dates become NULL, whatever MySQL says.
    assert every_type.schema.arrow_schema.field("d").nullable


@pytest.mark.parametrize("reader", [*(r.name for r in READERS), NATIVE, WHOLE])
@pytest.mark.parametrize("expected", [MAX_ROW, MIN_ROW, NULL_ROW], ids=["max", "min", "nulls"])
def test_exact_values(every_type: EveryType, reader: str, expected: dict[str, Any]) -> None:
    rows = {row["id"]: row for row in every_type.batches[reader].to_pylist()}
    want = dict(expected)
    if expected is MAX_ROW:
        want["lt"] = "x" * 65535  # oversize_text: truncate
    if expected is MIN_ROW:
        want["vc"] = "ab"  # NUL stripped
    assert rows[expected["id"]] == want


@pytest.mark.parametrize("reader", [*(r.name for r in READERS), WHOLE])
def test_zero_dates_become_null_and_are_counted(every_type: EveryType, reader: str) -> None:
    rows = {row["id"]: row for row in every_type.batches[reader].to_pylist()}
    assert all(rows[4][name] is None for name in ZERO_DATES)
    stats = every_type.stats[reader]
    assert stats.zero_dates == 4
    assert stats.nul_chars == 1
    assert stats.truncated == 1
    assert {name: dict(c) for name, c in stats.by_column.items()} == {
        "d": {"zero_dates": 1},
        "dtm": {"zero_dates": 1},
        "dt6": {"zero_dates": 1},
        "ts3": {"zero_dates": 1},
        "vc": {"nul_chars": 1},
        "lt": {"truncated": 1},
    }


def test_connectorx_ends_with_native_decode_error_on_a_zero_date(every_type: EveryType) -> None:
    """The backup stage's cue to select dates as text; the rows before it are whole."""
    order = f"SELECT {every_type.schema.select_list()} FROM every_type ORDER BY id"
    seen: list[int] = []
    reader = ConnectorxReader(endpoint(every_type.db), every_type.schema, batch_size=1)
    with reader, pytest.raises(NativeDecodeError, match="connectorx panicked on a date value"):
        for batch in reader.read(order):
            seen += batch.column(0).to_pylist()
    assert seen == [1, 2, 3]  # every row before the zero date, none lost


def test_readers_produce_identical_batches_and_parquet(every_type: EveryType) -> None:
    cx, py = every_type.batches["connectorx"], every_type.batches["pymysql"]
    assert cx.equals(py, check_metadata=True)
    assert every_type.batches[WHOLE].equals(py, check_metadata=True)
    without_zero_dates = py.filter(pc.not_equal(py["id"], 4))
    assert every_type.batches[NATIVE].equals(without_zero_dates, check_metadata=True)
    files = []
    for table in (cx, py):
        sink = io.BytesIO()
        with pq.ParquetWriter(
            sink, every_type.schema.arrow_schema, compression="snappy", coerce_timestamps="us"
        ) as writer:
            for batch in table.to_batches():
                writer.write_batch(batch)
        files.append(sink.getvalue())
    assert files[0] == files[1]
    parquet = pq.ParquetFile(io.BytesIO(files[0]))
    for name in ("dtm", "dt6", "ts3"):
        column = parquet.schema.column(parquet.schema.names.index(name))
        logical = json.loads(column.logical_type.to_json())
        assert column.physical_type == "INT64"
        assert logical["Type"] == "Timestamp"
        assert logical["timeUnit"] == "microseconds"
        assert logical["isAdjustedToUTC"] is False
    assert parquet.read().equals(cx)


def test_schema_json_round_trip(every_type: EveryType) -> None:
    text = every_type.schema.to_json()
    back = TableSchema.from_json(text)
    assert back == every_type.schema
    assert back.arrow_schema.equals(every_type.schema.arrow_schema)
    spec = {c["name"]: c for c in json.loads(text)["columns"]}
    assert spec["vc"]["redshift_length"] == 32  # VARCHAR(8) utf8mb4: 8 x 4 bytes
    assert spec["en"]["redshift_length"] == len("medium")
    assert spec["st"]["redshift_length"] == len("a,b,c")
    assert spec["tx"]["redshift_length"] == 65535
    assert spec["tm"]["redshift_length"] == 17
    assert spec["ts3"]["utc"] is True and spec["dtm"]["utc"] is False
    assert spec["js"]["is_json"] is True and spec["lt"]["is_json"] is False
    assert spec["bn"]["redshift_length"] == 4


@pytest.mark.parametrize("reader_cls", READERS)
def test_timestamp_is_read_in_utc(mysql_db: MySQLDatabase, reader_cls: type[MySQLReader]) -> None:
    mysql_db.execute("CREATE TABLE tz (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, d DATETIME)")
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+05:00'")
        cur.execute("INSERT INTO tz VALUES (1, '2025-01-01 05:00:00.5', '2025-01-01 05:00:00')")
    batches, _ = read_all(reader_cls, mysql_db, schema_of(mysql_db, "tz"))
    assert batches[0].to_pylist() == [
        {"id": 1, "ts": dt.datetime(2025, 1, 1, 0, 0, 0, 500000), "d": dt.datetime(2025, 1, 1, 5)}
    ]


def test_wide_decimal_is_an_error_unless_policy_varchar(mysql_db: MySQLDatabase) -> None:
    mysql_db.execute("CREATE TABLE wide (id INT PRIMARY KEY, amount DECIMAL(65,2))")
    value = "-" + "9" * 63 + ".99"
    mysql_db.execute("INSERT INTO wide VALUES (1, %s), (2, NULL)", [value])
    with pytest.raises(DataError, match=r"'amount'.*wide.*decimal_overflow: varchar"):
        schema_of(mysql_db, "wide")
    schema = schema_of(mysql_db, "wide", TypePolicy(decimal_overflow="varchar"))
    assert schema.arrow_schema.field("amount").type == pa.string()
    assert schema.column("amount").redshift_length == 67
    for reader_cls in READERS:
        batches, _ = read_all(reader_cls, mysql_db, schema)
        assert pa.Table.from_batches(batches).column("amount").to_pylist() == [value, None]


def test_unknown_table_is_a_config_error(mysql_db: MySQLDatabase) -> None:
    with pytest.raises(ConfigError, match=rf"{mysql_db.name}\.nope"):
        schema_of(mysql_db, "nope")


def _policy_table(db: MySQLDatabase) -> None:
    db.execute(
        "CREATE TABLE p (k1 INT, k2 VARCHAR(5), d DATE, s VARCHAR(5), t MEDIUMTEXT, "
        "PRIMARY KEY (k1, k2))"
    )
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO p VALUES (7, 'x', '2020-01-01', 'ok', 'é')")
        cur.execute("INSERT INTO p VALUES (8, 'y', '0000-00-00', 'n\\0l', %s)", ["é" * 40000])


@pytest.mark.parametrize("reader_cls", READERS)
@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (TypePolicy(), r"column 't', primary key k1=8, k2='y': value is 80000 bytes"),
        (
            TypePolicy(zero_dates="error", oversize_text="truncate"),
            r"column 'd', primary key k1=8, k2='y': zero date '0000-00-00'",
        ),
        (
            TypePolicy(nul_chars="error", oversize_text="truncate"),
            r"column 's', primary key k1=8, k2='y': value contains a NUL character",
        ),
    ],
    ids=["oversize", "zero_dates", "nul_chars"],
)
def test_policy_errors_name_table_column_and_key(
    mysql_db: MySQLDatabase, reader_cls: type[MySQLReader], policy: TypePolicy, message: str
) -> None:
    _policy_table(mysql_db)
    with pytest.raises(DataError, match=rf"table {mysql_db.name}\.p, {message}"):
        read_all(reader_cls, mysql_db, schema_of(mysql_db, "p", policy))


@pytest.mark.parametrize("reader_cls", READERS)
def test_truncation_keeps_whole_characters(
    mysql_db: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    _policy_table(mysql_db)
    schema = schema_of(mysql_db, "p", TypePolicy(oversize_text="truncate"))
    batches, stats = read_all(reader_cls, mysql_db, schema)
    long_value = pa.Table.from_batches(batches).column("t")[1].as_py()
    assert long_value == "é" * 32767  # 65534 bytes: a 2-byte character does not fit in 65535
    assert (stats.truncated, stats.zero_dates, stats.nul_chars) == (1, 1, 1)


HOSTILE_TABLE = 'we`ird "tab;le%s'
HOSTILE_COLUMN = 'Co`l "u;mn%(x)s'


@pytest.mark.parametrize("reader_cls", READERS)
def test_hostile_names_and_parameters(
    mysql_db: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    table = quote_mysql_table(mysql_db.name, HOSTILE_TABLE)
    column = quote_mysql(HOSTILE_COLUMN)
    mysql_db.execute(f"CREATE TABLE {table} (`id` INT PRIMARY KEY, {column} VARCHAR(40))")
    tricky = "it's a \\ back'slash\" -- ;"
    mysql_db.executemany(
        f"INSERT INTO {table.replace('%', '%%')} VALUES (%s, %s)",
        [(1, tricky), (2, "other")],
    )
    schema = schema_of(mysql_db, HOSTILE_TABLE)
    assert schema.arrow_schema.names == ["id", 'co`l "u;mn%(x)s']
    where = f"WHERE {column.replace('%', '%%')} = %s AND `id` > %s"
    batches, _ = read_all(reader_cls, mysql_db, schema, where, (tricky, 0))
    assert pa.Table.from_batches(batches).to_pylist() == [{"id": 1, 'co`l "u;mn%(x)s': tricky}]


def test_special_password_works_for_both_readers_and_the_cli(
    mysql_db: MySQLDatabase, tmp_path: Path
) -> None:
    # Non-ASCII too: PyMySQL alone would send a str password as latin1.
    user, password = f"cx_{uuid.uuid4().hex[:8]}", "p@ss:w/rd%?#&'\\ +é"
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    mysql_db.execute("INSERT INTO t VALUES (1)")
    hosts = ("%%", "localhost")  # %% : these statements go through pyformat
    for host in hosts:
        mysql_db.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", [password])
        grant = f"GRANT SELECT ON {quote_mysql(mysql_db.name)}.* TO '{user}'@'{host}'"
        mysql_db.execute(grant, ())
    try:
        ep = endpoint(mysql_db, user=user, password=password)
        schema = schema_of(mysql_db, "t")
        with ConnectorxReader(ep, schema) as reader:
            batches = list(reader.read(f"SELECT {schema.select_list()} FROM {schema.sql_table()}"))
        assert batches[0].column(0).to_pylist() == [1]
        with PyMySQLReader(ep, schema) as reader:
            batches = list(reader.read(f"SELECT {schema.select_list()} FROM {schema.sql_table()}"))
        assert batches[0].column(0).to_pylist() == [1]
        assert password not in repr(ep)
        # The planning connection too (it once sent the password as latin1).
        table = f"{mysql_db.name}.t"
        credentials = {"username": user, "password": password}
        cfg = {"cdc_strategy": "id_only", "cdc_id_column": "id"}
        project = make_project(tmp_path, mysql_db, {table: cfg}, source_extra=credentials)
        out = project.backup(table)
        assert project.staged_table(table).column("id").to_pylist() == [1], out.stderr
    finally:
        for host in hosts:
            mysql_db.execute(f"DROP USER IF EXISTS '{user}'@'{host}'", ())


@pytest.mark.parametrize("reader_cls", READERS)
def test_unreachable_server_is_a_connection_error(
    mysql_db: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    schema = schema_of(mysql_db, "t")
    ep = endpoint(mysql_db, port=1, connect_timeout=2, password="s3cret-pw")
    with pytest.raises(SourceConnectionError) as info, reader_cls(ep, schema) as reader:
        list(reader.read(f"SELECT {schema.select_list()} FROM {schema.sql_table()}"))
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize("reader_cls", READERS)
def test_empty_result_yields_no_batch(
    mysql_db: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATETIME)")
    batches, stats = read_all(reader_cls, mysql_db, schema_of(mysql_db, "t"))
    assert batches == [] and stats.as_dict() == {"zero_dates": 0, "nul_chars": 0, "truncated": 0}


def test_pymysql_reader_reconnects_after_the_server_drops_it(mysql_db: MySQLDatabase) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    mysql_db.execute("INSERT INTO t VALUES (1), (2)")
    schema = schema_of(mysql_db, "t")
    sql = f"SELECT {schema.select_list()} FROM {schema.sql_table()} WHERE id > %s"
    with PyMySQLReader(endpoint(mysql_db), schema) as reader:
        assert sum(b.num_rows for b in reader.read(sql, (0,))) == 2
        assert reader._conn is not None
        mysql_db.execute("KILL %s", (reader._conn.thread_id(),))  # as wait_timeout would
        assert sum(b.num_rows for b in reader.read(sql, (1,))) == 1


def test_factory_prefers_connectorx(mysql_db: MySQLDatabase) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY, g POINT, b BIT(3), t TIME)")
    schema = schema_of(mysql_db, "t")
    assert isinstance(make_reader(endpoint(mysql_db), schema), ConnectorxReader)
    assert isinstance(make_reader(endpoint(mysql_db), schema, prefer="pymysql"), PyMySQLReader)


STREAM_ROWS = 200_000


@pytest.fixture(scope="module")
def big_table() -> Iterator[MySQLDatabase]:
    """200,000 rows of about 100 bytes, made by one INSERT ... SELECT from the Sequence engine."""
    with mysql_database() as db:
        db.execute("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100), at DATETIME(6))")
        db.execute(
            f"INSERT INTO big SELECT seq, REPEAT(CHAR(97 + seq % 26), 90), "
            f"'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{STREAM_ROWS}"
        )
        yield db


@pytest.mark.parametrize("reader_cls", READERS)
def test_streaming_in_bounded_batches(
    big_table: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    schema = schema_of(big_table, "big")
    sql = f"SELECT {schema.select_list()} FROM {schema.sql_table()} ORDER BY id"
    tracemalloc.start()
    try:
        with reader_cls(endpoint(big_table), schema, batch_size=10_000) as reader:
            sizes, total = [], 0
            for batch in reader.read(sql):
                sizes.append(batch.num_rows)
                total += pc.sum(batch.column("id")).as_py()
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sizes) >= 20 and max(sizes) <= 10_000
    assert sum(sizes) == STREAM_ROWS and total == STREAM_ROWS * (STREAM_ROWS + 1) // 2
    # Python objects never hold more than about one batch: the 200,000 rows as PyMySQL
    # tuples would take ~40 MB; streaming 10,000 at a time stays far below.
    assert python_peak < 12 * 2**20


def test_a_bounded_connectorx_read_leaves_the_gil_to_other_threads(
    big_table: MySQLDatabase,
) -> None:
    """A load alongside the extract runs while connectorx reads a result whole.

    connectorx's stream holds the GIL while it waits for a batch: with one batch
    of 100,000 rows, a ticking thread would stall for the whole read.
    """
    schema = schema_of(big_table, "big")
    sql = f"SELECT {schema.select_list()} FROM {schema.sql_table()} ORDER BY id LIMIT 100000"
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    with ConnectorxReader(endpoint(big_table), schema, batch_size=100_000) as reader:
        list(reader.read(sql, whole=True))  # connectorx imported, before the clock starts
        ticker = threading.Thread(target=tick)
        ticker.start()
        begin = time.perf_counter()
        try:
            read = sum(b.num_rows for b in reader.read(sql, whole=True))
        finally:
            took = time.perf_counter() - begin
            done.set()
            ticker.join()
    assert read == 100_000
    during = [t for t in ticks if begin <= t <= begin + took]
    gaps = [b - a for a, b in zip([begin, *during], [*during, begin + took], strict=True)]
    assert max(gaps) < took / 2, f"the ticker stalled {max(gaps):.3f} s of a {took:.3f} s read"


def test_a_connection_killed_during_a_whole_read_is_a_connection_error(
    big_table: MySQLDatabase,
) -> None:
    """A whole read (on a worker thread) reports a KILL as a
    RuntimeError, not a panic: it is exit 2 too (the chunk loop reconnects and resumes)."""
    schema = schema_of(big_table, "big")
    sql = (
        f"SELECT {schema.select_list()} FROM {schema.sql_table()} "
        "WHERE SLEEP(0.0001) = 0 ORDER BY id LIMIT 50000"
    )
    with ConnectorxReader(endpoint(big_table), schema) as reader:
        stream = reader.read(sql, start=True, whole=True)
        deadline = time.monotonic() + 20
        running: list[Any] = []
        while not running and time.monotonic() < deadline:
            running = big_table.execute(
                "SELECT ID FROM information_schema.PROCESSLIST "
                "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                (f"SELECT %FROM `{big_table.name}`.`big` WHERE SLEEP%",),
            )
        assert running, "the read's query is not running"
        for (thread,) in running:
            big_table.execute(f"KILL {thread}")
        with pytest.raises(SourceConnectionError) as raised:
            list(stream)
    assert f"127.0.0.1:{big_table.port}" in str(raised.value)


@pytest.mark.parametrize("reader_cls", READERS)
def test_a_connection_killed_mid_read_is_a_connection_error_never_a_zero_date(
    big_table: MySQLDatabase, reader_cls: type[MySQLReader]
) -> None:
    """Guards each reader's classify(): a server KILL mid-read is exit 2 (SourceConnectionError).

    connectorx reports it as a panic, like a zero date; only the panic's message
    tells them apart.
    """
    schema = schema_of(big_table, "big")
    # SLEEP per row keeps the query running on the server until the KILL (otherwise
    # the server may have sent every row before it: "Unknown thread id").
    sql = (
        f"SELECT {schema.select_list()} FROM {schema.sql_table()} "
        "WHERE SLEEP(0.0001) = 0 ORDER BY id"
    )
    with (
        reader_cls(endpoint(big_table), schema, batch_size=1_000) as reader,
        pytest.raises(SourceConnectionError) as raised,
    ):
        for n, _batch in enumerate(reader.read(sql)):
            if n == 2:
                running = big_table.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST "
                    "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (f"SELECT %FROM `{big_table.name}`.`big` WHERE SLEEP%",),
                )
                assert running, "the read's query is not running"
                for (thread,) in running:
                    big_table.execute(f"KILL {thread}")
    assert not isinstance(raised.value, NativeDecodeError)
    assert f"127.0.0.1:{big_table.port}" in str(raised.value)


def test_connections_share_one_tls_preferred_context(mysql_db: MySQLDatabase) -> None:
    """PyMySQL's per-connection CA-store load (~44 ms) happens once per process."""
    first, second = endpoint(mysql_db).connect(), endpoint(mysql_db).connect()
    try:
        assert first.ctx is not None and first.ctx is second.ctx
        with second.cursor() as cur:
            cur.execute("SELECT @@time_zone")
            assert cur.fetchone() == ("+00:00",)  # the session settings still apply
    finally:
        first.close()
        second.close()


def test_the_tls_preferred_context_never_loads_the_ca_store(
    mysql_db: MySQLDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the system's CA store (~35-44 ms a process) buys nothing: the context
    verifies nothing. Building it by PyMySQL's ``create_default_context()`` fails this."""
    loads: list[object] = []
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", lambda *a: loads.append(a))
    _pymysql_connection_class.cache_clear()  # a new class: its context not built yet
    try:
        conn = endpoint(mysql_db).connect()
        conn.close()
        assert conn.ctx is not None and loads == []
    finally:
        _pymysql_connection_class.cache_clear()


def test_the_tls_preferred_context_is_the_one_pymysql_builds() -> None:
    """Same protocol, versions, options, flags and (no) verification as PyMySQL's own."""
    theirs = pymysql.connections.Connection._create_ssl_ctx(None, {})  # type: ignore[arg-type]
    ours = preferred_tls_context()
    for attribute in (
        "protocol",
        "options",
        "verify_flags",
        "verify_mode",
        "check_hostname",
        "minimum_version",
        "maximum_version",
        "post_handshake_auth",
    ):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    assert ours.get_ciphers() == theirs.get_ciphers()
