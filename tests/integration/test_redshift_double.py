"""The Redshift test double against real PostgreSQL and the test S3 server: one test per rule."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.databases import PgSchema
from tests.support.redshift_double import RedshiftDouble, RedshiftError, redshift_double_connect
from tests.support.s3_server import S3Bucket

ROLE = "arn:aws:iam::123456789012:role/redshift-copy"
UTC = dt.UTC


@pytest.fixture
def rs(pg: PgSchema, s3_bucket: S3Bucket) -> Iterator[RedshiftDouble]:
    """A Redshift double on the test's PostgreSQL schema and S3 bucket."""
    dsn = {"host": pg.host, "port": pg.port, "user": pg.user, "dbname": pg.database}
    conn = redshift_double_connect(dsn, s3_bucket.client, pg.name)
    yield conn
    conn.close()


def parquet_bytes(table: pa.Table, coerce: str | None = "us", **kwargs: Any) -> bytes:
    """The table as Parquet; ``coerce=None`` keeps the Arrow timestamp unit."""
    buf = io.BytesIO()
    pq.write_table(table, buf, coerce_timestamps=coerce, **kwargs)
    return buf.getvalue()


def put_file(bucket: S3Bucket, data: bytes, **entry: Any) -> dict[str, Any]:
    """Upload one file; return its manifest entry (``entry`` overrides fields)."""
    key = f"data/{uuid.uuid4().hex}.parquet"
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=data)
    base = {"url": f"s3://{bucket.name}/{key}", "mandatory": True}
    return {**base, "meta": {"content_length": len(data)}, **entry}


def put_manifest(bucket: S3Bucket, entries: list[dict[str, Any]]) -> str:
    """Upload a manifest; return its s3:// URL."""
    key = f"manifests/{uuid.uuid4().hex}.json"
    body = json.dumps({"entries": entries}).encode()
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    return f"s3://{bucket.name}/{key}"


def stage(bucket: S3Bucket, *tables: pa.Table) -> str:
    """Upload each table as one Parquet file, plus a manifest naming them."""
    return put_manifest(bucket, [put_file(bucket, parquet_bytes(t)) for t in tables])


def copy_sql(table: str, manifest: str, extra: str = "") -> str:
    return (
        f"COPY {table} FROM '{manifest}'\n  IAM_ROLE '{ROLE}'\n  FORMAT AS PARQUET MANIFEST {extra}"
    )


def run(rs: RedshiftDouble, *statements: str) -> list[tuple[Any, ...]]:
    """Execute statements; return the last one's rows (if any)."""
    with rs.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def one_column(rs: RedshiftDouble, bucket: S3Bucket, rs_type: str, array: pa.Array) -> None:
    """CREATE TABLE "t" ("v" <rs_type>) and COPY a one-column file into it."""
    run(rs, f'CREATE TABLE "t" ("v" {rs_type})')
    rs.commit()
    run(rs, copy_sql('"t"', stage(bucket, pa.table({"v": array}))))


# --------------------------------------------------------------------------- a good load

TYPED_DDL = """
CREATE TABLE "typed" (
    "id" BIGINT NOT NULL ENCODE az64,
    "small" SMALLINT, "i" INTEGER, "u64" DECIMAL(20,0), "amount" DECIMAL(12,2),
    "r" REAL, "d" DOUBLE PRECISION, "flag" BOOLEAN,
    "s" VARCHAR(8) ENCODE zstd, "c" CHAR(3), "day" DATE,
    "ts" TIMESTAMP, "tsu" TIMESTAMP, "bin" VARBYTE(16),
    PRIMARY KEY ("id")
) DISTSTYLE KEY DISTKEY ("id") COMPOUND SORTKEY ("id", "ts")
"""
TS_MAX = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
TYPED_COLUMNS: dict[str, tuple[pa.DataType, list[Any]]] = {
    "id": (pa.int64(), [1, 2, 3, 4]),
    "small": (pa.int16(), [-32768, 32767, 0, None]),
    "i": (pa.int32(), [2147483647, -2147483648, 0, None]),
    "u64": (pa.decimal128(20, 0), [Decimal(18446744073709551615), Decimal(0), Decimal(-1), None]),
    "amount": (pa.decimal128(12, 2), [Decimal("-1234567890.12"), Decimal("0.01"), None, None]),
    "r": (pa.float32(), [1.5, -0.25, 3.0, None]),
    "d": (pa.float64(), [0.1 + 0.2, 1 / 3, -1e300, None]),
    "flag": (pa.bool_(), [True, False, None, True]),
    "s": (pa.string(), ["😀😀", "", 'a"b,\nc', None]),
    "c": (pa.string(), ["abc", "x", "", None]),
    "day": (pa.date32(), [dt.date(1, 1, 1), dt.date(2024, 2, 29), dt.date(9999, 12, 31), None]),
    "ts": (pa.timestamp("us"), [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), TS_MAX, None, None]),
    "tsu": (pa.timestamp("us", tz="UTC"), [dt.datetime(2024, 6, 1, 0, 0, 0, 1, UTC)] + [None] * 3),
    "bin": (pa.binary(), [b"\x00\x01\xff", b"", None, b"x" * 16]),
}


def typed_table() -> pa.Table:
    return pa.table({name: pa.array(values, t) for name, (t, values) in TYPED_COLUMNS.items()})


def test_copy_loads_exact_values(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    table = typed_table()
    run(rs, TYPED_DDL)
    manifest = stage(s3_bucket, table.slice(0, 2), table.slice(2))
    run(rs, copy_sql('"typed"', manifest))
    assert run(rs, "SELECT pg_last_copy_count()") == [(4,)]
    rows = run(rs, 'SELECT * FROM "typed" ORDER BY "id"')
    rs.commit()
    expected = [list(r) for r in zip(*(v for _, v in TYPED_COLUMNS.values()), strict=True)]
    for row in expected:
        row[9] = None if row[9] is None else row[9].ljust(3)  # CHAR(3) is blank-padded
        row[12] = None if row[12] is None else row[12].replace(tzinfo=None)  # UTC wall clock
    got = [[bytes(v) if isinstance(v, memoryview) else v for v in row] for row in rows]
    assert got == expected


def test_copy_into_temp_and_qualified_tables(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, TYPED_DDL, f'CREATE TEMP TABLE "stage_typed" (LIKE "{rs.schema}"."typed")')
    manifest = stage(s3_bucket, typed_table())
    run(rs, copy_sql('"stage_typed"', manifest), copy_sql(f'"{rs.schema}"."typed"', manifest))
    assert run(rs, 'SELECT count(*) FROM "stage_typed"') == [(4,)]
    assert run(rs, 'SELECT count(*) FROM "typed"') == [(4,)]


def test_copy_100k_rows_is_fast(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    n = 100_000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "name": pa.array([f"name-{i}" for i in range(n)]),
            "at": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i) for i in range(n)]),
        }
    )
    run(rs, 'CREATE TABLE "big" ("id" BIGINT, "name" VARCHAR(32), "at" TIMESTAMP)')
    manifest = stage(s3_bucket, table)
    started = time.monotonic()
    run(rs, copy_sql('"big"', manifest))
    assert time.monotonic() - started < 10
    assert run(rs, 'SELECT count(*), sum("id") FROM "big"') == [(n, n * (n - 1) // 2)]


# --------------------------------------------------------------------------- pg_last_copy_count


def test_pg_last_copy_count_follows_redshift_rules(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    assert run(rs, "SELECT pg_last_copy_count()") == [(0,)]  # no COPY yet in this session
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    run(rs, copy_sql('"t"', stage(s3_bucket, pa.table({"v": [1, 2, 3]}))))
    assert run(rs, "SELECT pg_last_copy_count() AS n") == [(3,)]
    rs.commit()
    with pytest.raises(RedshiftError, match="MAXERROR"):  # rejected before loading: kept
        run(rs, copy_sql('"t"', "s3://x/m.json", "MAXERROR 10"))
    rs.rollback()
    assert run(rs, "SELECT pg_last_copy_count()") == [(3,)]
    missing = put_manifest(s3_bucket, [{"url": f"s3://{s3_bucket.name}/nope", "mandatory": True,
                                        "meta": {"content_length": 1}}])  # fmt: skip
    with pytest.raises(RedshiftError, match="mandatory"):  # failed while loading: 0
        run(rs, copy_sql('"t"', missing))
    rs.rollback()
    assert run(rs, "SELECT pg_last_copy_count()") == [(0,)]


# --------------------------------------------------------------------------- COPY rejections


@pytest.mark.parametrize(
    "extra",
    ["TRUNCATECOLUMNS", "MAXERROR 10", "REGION 'us-west-2'", "EMPTYASNULL", "ROUNDEC", "CSV",
     "DELIMITER ','", "ACCEPTANYDATE", "COMPUPDATE OFF", "BLANKSASNULL"],
)  # fmt: skip
def test_unsupported_copy_option_is_rejected(
    rs: RedshiftDouble, s3_bucket: S3Bucket, extra: str
) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    rs.commit()
    manifest = stage(s3_bucket, pa.table({"v": [1]}))
    keyword = extra.split()[0]
    with pytest.raises(RedshiftError, match=f"{keyword} argument is not supported for PARQUET"):
        run(rs, copy_sql('"t"', manifest, extra))
    rs.rollback()
    assert run(rs, 'SELECT count(*) FROM "t"') == [(0,)]


def test_allowlisted_copy_options_are_accepted(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    manifest = stage(s3_bucket, pa.table({"v": [1]}))
    extra = "SERIALIZETOJSON STATUPDATE OFF ACCEPTINVCHARS AS '?' EXPLICIT_IDS"
    run(rs, copy_sql('"t"', manifest, extra))
    secret = "aws_access_key_id=AKIDEXAMPLE;aws_secret_access_key=s3cr3t/KEY"
    run(rs, f"copy \"t\"\nfrom '{manifest}'\ncredentials '{secret}'\nformat as parquet manifest;")
    assert run(rs, 'SELECT count(*) FROM "t"') == [(2,)]
    assert any(secret in s for s in rs.statements)  # recorded as received, for secret greps


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY \"t\" FROM '{m}' IAM_ROLE '{r}' FORMAT AS PARQUET", "without MANIFEST"),
        ("COPY \"t\" FROM '{m}' IAM_ROLE '{r}' MANIFEST", "FORMAT AS PARQUET"),
        ("COPY \"t\" FROM '{m}' IAM_ROLE '{r}' FORMAT AS CSV MANIFEST", "FORMAT AS PARQUET"),
        ("COPY \"t\" FROM '{m}' FORMAT AS PARQUET MANIFEST", "IAM_ROLE or CREDENTIALS"),
        ("COPY \"t\" FROM '{m}' IAM_ROLE 'role-x' FORMAT AS PARQUET MANIFEST", "Invalid IAM_ROLE"),
        ("COPY \"t\" (\"v\") FROM '{m}' IAM_ROLE '{r}' FORMAT AS PARQUET MANIFEST", "column list"),
        ('COPY "t" FROM STDIN', "STDIN"),
        ("COPY \"t\" FROM '{m}' CREDENTIALS 'aws_secret_access_key=hush' FORMAT AS PARQUET "
         "MANIFEST", "Invalid credentials"),
    ],
)  # fmt: skip
def test_malformed_copy_is_rejected(
    rs: RedshiftDouble, s3_bucket: S3Bucket, sql: str, message: str
) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    manifest = stage(s3_bucket, pa.table({"v": [1]}))
    with pytest.raises(RedshiftError, match=message) as info:
        run(rs, sql.format(m=manifest, r=ROLE))
    assert "hush" not in str(info.value)  # a rejected credential is never echoed


def test_failed_copy_aborts_the_transaction(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    rs.commit()
    run(rs, 'INSERT INTO "t" VALUES (7)')
    with pytest.raises(RedshiftError):
        run(rs, copy_sql('"t"', stage(s3_bucket, pa.table({"v": pa.array([1], pa.int32())}))))
    with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
        run(rs, "SELECT 1")
    rs.rollback()
    assert run(rs, 'SELECT count(*) FROM "t"') == [(0,)]


def test_column_count_mismatch_is_rejected(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, 'CREATE TABLE "t" ("a" BIGINT, "b" BIGINT, "c" BIGINT)')
    rs.commit()
    for names in (["a", "b"], ["a", "b", "c", "d"]):
        manifest = stage(s3_bucket, pa.table({n: [1] for n in names}))
        with pytest.raises(RedshiftError, match=r"Unmatched number of columns.*Table columns: 3"):
            run(rs, copy_sql('"t"', manifest))
        rs.rollback()
    # FILLRECORD lets a file end early: the missing trailing columns are NULL.
    run(rs, copy_sql('"t"', stage(s3_bucket, pa.table({"a": [1], "b": [2]})), "FILLRECORD"))
    assert run(rs, 'SELECT * FROM "t"') == [(1, 2, None)]


def test_column_order_mismatch_is_rejected(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, 'CREATE TABLE "t" ("a" VARCHAR(5), "b" VARCHAR(5))')
    rs.commit()
    shifted = pa.table({"b": ["x"], "a": ["y"]})  # same types: only the names show the shift
    with pytest.raises(RedshiftError, match="position 1: file column 'b', table column 'a'"):
        run(rs, copy_sql('"t"', stage(s3_bucket, shifted)))


@pytest.mark.parametrize(
    ("rs_type", "array"),
    [
        ("INTEGER", pa.array([1], pa.int64())),
        ("BIGINT", pa.array([1], pa.int32())),
        ("INTEGER", pa.array([1], pa.int16())),
        ("BIGINT", pa.array([1], pa.uint32())),
        ("DECIMAL(12,2)", pa.array([Decimal("1.00")], pa.decimal128(10, 2))),
        ("DECIMAL(12,2)", pa.array([Decimal("1.000")], pa.decimal128(12, 3))),
        ("REAL", pa.array([1.0], pa.float64())),
        ("VARCHAR(10)", pa.array([b"x"], pa.binary())),
        ("VARBYTE(10)", pa.array(["x"])),
        ("DATE", pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us"))),
        ("BOOLEAN", pa.array([1], pa.int32())),
    ],
    ids=lambda v: str(v.type) if isinstance(v, pa.Array) else v,
)
def test_incompatible_parquet_type_is_rejected(
    rs: RedshiftDouble, s3_bucket: S3Bucket, rs_type: str, array: pa.Array
) -> None:
    with pytest.raises(RedshiftError, match="incompatible Parquet schema for column 'v'"):
        one_column(rs, s3_bucket, rs_type, array)


@pytest.mark.parametrize(
    ("unit", "options", "message"),
    [
        ("ns", {"coerce": None}, "nanoseconds"),
        ("ms", {"coerce": None}, "milliseconds"),
        ("us", {"coerce": None, "use_deprecated_int96_timestamps": True}, "INT96"),
    ],
)
def test_timestamp_must_be_microseconds(
    rs: RedshiftDouble, s3_bucket: S3Bucket, unit: str, options: dict[str, Any], message: str
) -> None:
    run(rs, 'CREATE TABLE "t" ("v" TIMESTAMP)')
    rs.commit()
    table = pa.table({"v": pa.array([dt.datetime(2024, 1, 1, 0, 0, 0, 1000)], pa.timestamp(unit))})
    manifest = put_manifest(s3_bucket, [put_file(s3_bucket, parquet_bytes(table, **options))])
    with pytest.raises(RedshiftError, match=message):
        run(rs, copy_sql('"t"', manifest))


@pytest.mark.parametrize(
    ("rs_type", "value", "message"),
    [
        ("VARCHAR(8)", "😀" * 3, "Table: 8, Data: 12"),  # 3 characters, 12 bytes
        ("VARCHAR(3)", "abcd", "Table: 3, Data: 4"),
        ("CHAR(8)", "é", "Multibyte character not supported for CHAR"),
        ("VARCHAR(8)", "a\x00b", "NUL"),
        ("VARBYTE(2)", b"abc", "Table: 2, Data: 3"),
    ],
)
def test_value_too_long_in_bytes_is_rejected(
    rs: RedshiftDouble, s3_bucket: S3Bucket, rs_type: str, value: Any, message: str
) -> None:
    with pytest.raises(RedshiftError, match=message):
        one_column(rs, s3_bucket, rs_type, pa.array([value]))


def test_manifest_rules(rs: RedshiftDouble, s3_bucket: S3Bucket) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    rs.commit()
    good = put_file(s3_bucket, parquet_bytes(pa.table({"v": [1, 2]})))
    gone = {"url": f"s3://{s3_bucket.name}/data/missing.parquet", "meta": {"content_length": 10}}
    cases = [
        ([good, {**gone, "mandatory": True}], "mandatory but not found"),
        ([{**good, "meta": {"content_length": good["meta"]["content_length"] + 1}}],
         "content_length in manifest .* does not match"),
        ([{**good, "meta": {}}], "content_length is required"),
        ([], "has no entries"),
    ]  # fmt: skip
    for entries, message in cases:
        with pytest.raises(RedshiftError, match=message):
            run(rs, copy_sql('"t"', put_manifest(s3_bucket, entries)))
        rs.rollback()
    with pytest.raises(RedshiftError, match=r"Manifest file .* is not found"):
        run(rs, copy_sql('"t"', f"s3://{s3_bucket.name}/manifests/none.json"))
    rs.rollback()
    run(rs, copy_sql('"t"', put_manifest(s3_bucket, [good, {**gone, "mandatory": False}])))
    assert run(rs, "SELECT pg_last_copy_count()") == [(2,)]  # a missing optional file is skipped


# --------------------------------------------------------------------------- TRUNCATE


def test_truncate_commits_implicitly(rs: RedshiftDouble, pg: PgSchema) -> None:
    run(rs, 'CREATE TABLE "audit" ("n" INTEGER)', 'CREATE TABLE "target" ("n" INTEGER)')
    run(rs, 'INSERT INTO "target" VALUES (1), (2)')
    rs.commit()
    run(rs, 'INSERT INTO "audit" VALUES (1)')  # same transaction, before the TRUNCATE
    run(rs, 'TRUNCATE "target"')
    run(rs, 'INSERT INTO "audit" VALUES (2)')  # after it: a new transaction
    rs.rollback()
    assert pg.execute('SELECT "n" FROM "audit"') == [(1,)]  # committed by the TRUNCATE
    assert pg.execute('SELECT count(*) FROM "target"') == [(0,)]  # not undone by the rollback
    # The same sequence with DELETE rolls back as one transaction.
    run(rs, 'INSERT INTO "target" VALUES (3)')
    rs.commit()
    run(rs, 'INSERT INTO "audit" VALUES (3)', 'DELETE FROM "target"')
    rs.rollback()
    assert pg.execute('SELECT "n" FROM "audit"') == [(1,)]
    assert pg.execute('SELECT "n" FROM "target"') == [(3,)]


# --------------------------------------------------------------------------- DDL


def test_create_table_is_stripped_for_postgres(rs: RedshiftDouble, pg: PgSchema) -> None:
    ddl = """CREATE TABLE IF NOT EXISTS "events" (
        "id" BIGINT NOT NULL ENCODE az64 DISTKEY,
        "name" VARCHAR(MAX) ENCODE lzo SORTKEY,
        "note" TEXT,
        "blob" VARBYTE(10) ENCODE zstd,
        "price" DECIMAL(12, 2) DEFAULT 0,
        "at" TIMESTAMP WITHOUT TIME ZONE ENCODE RAW
    ) BACKUP NO ENCODE AUTO"""
    run(rs, ddl)
    run(rs, 'CREATE TABLE "keyed" ("a" INT, "b" INT) DISTSTYLE KEY DISTKEY("a") '
            'INTERLEAVED SORTKEY("a", "b")')  # fmt: skip
    run(rs, 'CREATE TABLE "auto" ("a" INT) DISTSTYLE AUTO SORTKEY AUTO')
    rs.commit()
    assert rs.statements[0] == ddl  # recorded as received
    columns = pg.execute(
        "SELECT column_name, data_type, character_maximum_length, domain_name"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = 'events'"
        " ORDER BY ordinal_position",
        (pg.name,),
    )
    assert columns == [
        ("id", "bigint", None, None),
        ("name", "character varying", 65535, None),
        ("note", "character varying", 256, None),  # Redshift TEXT is VARCHAR(256)
        ("blob", "bytea", None, "varbyte_10"),
        ("price", "numeric", None, None),
        ("at", "timestamp without time zone", None, None),
    ]
    with pytest.raises(psycopg2.errors.CheckViolation):  # VARBYTE(10) counts bytes everywhere
        run(rs, 'INSERT INTO "events" ("id", "blob") VALUES (1, \'\\x0102030405060708090a0b\')')


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ('("a" INT) DISTKEY("b")', 'column "b" named in DISTKEY/SORTKEY does not exist'),
        ('("a" INT) COMPOUND SORTKEY("a", "zz")', 'column "zz" named in DISTKEY/SORTKEY'),
        ('("a" INT) DISTSTYLE KEY', "DISTSTYLE KEY requires a DISTKEY"),
        ('("a" INT) DISTSTYLE EVEN DISTKEY("a")', "DISTSTYLE EVEN cannot have a DISTKEY"),
        ('("a" INT DISTKEY, "b" INT DISTKEY)', "only one DISTKEY"),
        ("(" + ", ".join(f'"c{i}" INT' for i in range(9)) + ") INTERLEAVED SORTKEY("
         + ", ".join(f'"c{i}"' for i in range(9)) + ")", "at most 8 columns"),
        ('("a" VARCHAR(65536))', "cannot exceed 65535"),
        ('("a" CHAR(4097))', "cannot exceed 4096"),
        ('("a" VARBYTE(1024001))', "cannot exceed 1024000"),
        ('("a" DECIMAL(39,0))', "precision must be 1..38"),
        ('("oid" INT)', 'column name "oid" conflicts with a system column name'),
        ('("a" INT, xmin INT)', 'column name "xmin" conflicts'),
        ('("CTID" INT)', 'column name "CTID" conflicts'),
        ('("insertxid" INT)', 'column name "insertxid" conflicts'),
        ('("' + "é" * 64 + '" INT)', "longer than 127 bytes"),
        ('("a" BYTEA)', 'type "bytea" does not exist'),
        ('("a" JSONB)', 'type "jsonb" does not exist'),
        ('("a" SERIAL)', 'type "serial" does not exist'),
        ('("a" INT CHECK ("a" > 0))', "CHECK constraints are not supported"),
        ('("a" VARCHAR(5) ENCODE az64)', "az64 is not supported for type VARCHAR"),
        ('("a" INT ENCODE fancy)', 'invalid encoding type "fancy"'),
        ('("a" INT) PARTITION BY RANGE ("a")', "syntax error"),
    ],
)  # fmt: skip
def test_invalid_create_table_is_rejected(
    rs: RedshiftDouble, pg: PgSchema, ddl: str, message: str
) -> None:
    with pytest.raises(RedshiftError, match=message):
        run(rs, f'CREATE TABLE "bad" {ddl}')
    rs.rollback()
    assert pg.execute("SELECT to_regclass('bad')") == [(None,)]


def test_alter_table_rules(rs: RedshiftDouble, pg: PgSchema) -> None:
    run(rs, 'CREATE TABLE "t" ("id" BIGINT, "name" VARCHAR(8), "n" INTEGER DEFAULT 0,'
            ' "code" VARCHAR(4) DEFAULT \'x\', "key" VARCHAR(4) UNIQUE)')  # fmt: skip
    run(rs, 'ALTER TABLE "t" ADD COLUMN "extra" VARCHAR(20) ENCODE zstd')
    run(rs, 'ALTER TABLE "t" ADD COLUMN "raw" VARBYTE(100)')
    run(rs, 'ALTER TABLE "t" ALTER DISTKEY "id"', 'ALTER TABLE "t" ALTER COLUMN "name" ENCODE lzo')
    rs.commit()
    rejected = [
        ('ALTER TABLE "t" ADD COLUMN "xmax" INTEGER', "system column"),
        ('ALTER TABLE "t" ADD COLUMN "k" INTEGER DISTKEY', "cannot add a DISTKEY"),
        ('ALTER TABLE "t" ADD COLUMN "w" VARCHAR(70000)', "cannot exceed 65535"),
        ('ALTER TABLE "t" ALTER COLUMN "name" TYPE VARCHAR(16)', "inside a transaction block"),
        ('ALTER TABLE "t" ALTER COLUMN "name" SET NOT NULL', "supports only TYPE and ENCODE"),
    ]
    for sql, message in rejected:
        with pytest.raises(RedshiftError, match=message):
            run(rs, sql)
        rs.rollback()
    rs.autocommit = True
    run(rs, 'ALTER TABLE "t" ALTER COLUMN "name" TYPE VARCHAR(16)')  # widening, autocommit
    for sql, message in [
        ('ALTER TABLE "t" ALTER COLUMN "name" TYPE VARCHAR(4)', "cannot shrink VARCHAR\\(16\\)"),
        ('ALTER TABLE "t" ALTER COLUMN "id" TYPE VARCHAR(40)', '"id" is bigint, not VARCHAR'),
        ('ALTER TABLE "t" ALTER COLUMN "id" TYPE DECIMAL(20,0)', "only VARCHAR"),
        ('ALTER TABLE "t" ALTER COLUMN "name" TYPE VARCHAR(20) USING "name"', "USING"),
        ('ALTER TABLE "t" ALTER COLUMN "code" TYPE VARCHAR(20)', "DEFAULT or a key constraint"),
        ('ALTER TABLE "t" ALTER COLUMN "key" TYPE VARCHAR(20)', "DEFAULT or a key constraint"),
        ('ALTER TABLE "t" ALTER COLUMN "n" TYPE VARCHAR(9)', "is integer, not VARCHAR"),
    ]:
        with pytest.raises(RedshiftError, match=message):
            run(rs, sql)
    types = pg.execute(
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 't' ORDER BY ordinal_position",
        (pg.name,),
    )
    assert types == [
        ("id", "bigint", None),
        ("name", "character varying", 16),
        ("n", "integer", None),
        ("code", "character varying", 4),
        ("key", "character varying", 4),
        ("extra", "character varying", 20),
        ("raw", "bytea", None),
    ]


# --------------------------------------------------------------------------- pass-through


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ('INSERT INTO "t" VALUES (1) ON CONFLICT DO NOTHING', "ON CONFLICT"),
        ('INSERT INTO "t" VALUES (1) RETURNING "v"', "RETURNING"),
        ('CREATE INDEX "t_v" ON "t" ("v")', "CREATE INDEX"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory"),
    ],
)
def test_postgres_only_sql_is_rejected(rs: RedshiftDouble, sql: str, message: str) -> None:
    run(rs, 'CREATE TABLE "t" ("v" BIGINT)')
    with pytest.raises(RedshiftError, match=message):
        run(rs, sql)


def test_other_statements_pass_through(rs: RedshiftDouble) -> None:
    run(rs, 'CREATE TABLE "ledger" ("file_key" VARCHAR(512) PRIMARY KEY, "rows" BIGINT,'
            ' "loaded_at" TIMESTAMP DEFAULT GETDATE())')  # fmt: skip
    rs.commit()
    with rs.cursor() as cur:
        cur.executemany(
            'INSERT INTO "ledger" ("file_key", "rows") VALUES (%s, %s)', [("a", 1), ("b", 2)]
        )
        assert cur.rowcount == 2
        cur.execute('UPDATE "ledger" SET "rows" = "rows" + %(d)s WHERE "file_key" = %(k)s',
                    {"d": 10, "k": "a"})  # fmt: skip
        assert cur.rowcount == 1
        cur.execute('SELECT \'a;b\' AS x; SELECT "file_key", "rows" FROM "ledger" ORDER BY 1')
        assert cur.fetchall() == [("a", 11), ("b", 2)]
        cur.execute('SELECT count(*) FROM "ledger" WHERE "loaded_at" <= GETDATE()')
        assert cur.fetchone() == (2,)  # Redshift's GETDATE() default filled loaded_at
        cur.execute("SHOW TimeZone")
        assert cur.fetchone() == ("UTC",)
        with pytest.raises(RedshiftError, match="STDIN"):
            cur.copy_expert('COPY "ledger" FROM STDIN', io.BytesIO(b""))
    rs.rollback()
    with rs:
        run(rs, 'DELETE FROM "ledger"')
    assert run(rs, 'SELECT count(*) FROM "ledger"') == [(0,)]
    assert not rs.closed and rs.autocommit is False


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT ('x' || MD5('a'))::BIT(60)::BIGINT", 'type "bit"'),
        ("SELECT CAST('1' AS BIT(1))", 'type "bit"'),
        ("SELECT 'a' COLLATE \"C\"", 'collation "C"'),
    ],
)
def test_postgresql_only_verify_sql_is_rejected(rs: RedshiftDouble, sql: str, message: str) -> None:
    """verify's PostgreSQL checksum forms must never reach Redshift (its own use STRTOL)."""
    with pytest.raises(RedshiftError, match=message), rs.cursor() as cur:
        cur.execute(sql)
    rs.rollback()
    with rs.cursor() as cur:  # the Redshift forms the double emulates
        cur.execute("SELECT STRTOL('ff', 16), FROM_VARBYTE('ab'::bytea, 'hex')")
        assert cur.fetchone() == (255, "6162")
