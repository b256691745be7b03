"""PostgreSQL's binary COPY from Arrow batches (src/load/targets/postgres.py, #13)."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from src.errors import LoadError
from src.load.targets.postgres import _BinaryEncoder
from tests.support.databases import PgSchema


def copy(pg: PgSchema, data: bytes) -> int:
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (id BIGINT, note TEXT, price NUMERIC(12,2))")
            cur.copy_expert("COPY t FROM STDIN WITH (FORMAT binary)", io.BytesIO(data))
            cur.execute("SELECT id, note, price::text FROM t ORDER BY id")
            rows = cur.fetchall()
        conn.rollback()
    finally:
        conn.close()
    return len(rows)


def batch(ids: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(ids, pa.int64()),
            "note": pa.array([f"n{i}" for i in ids], pa.string()),
            "price": pa.array([None] * len(ids), pa.decimal128(12, 2)),
        }
    )


def test_batches_become_one_stream_with_its_trailer(pg: PgSchema) -> None:
    encode = _BinaryEncoder()
    data = encode(batch([1, 2])) + encode(batch([3])) + encode.trailer()
    assert copy(pg, data) == 3


def test_no_batches_is_an_empty_copy_not_a_bad_signature(pg: PgSchema) -> None:
    assert copy(pg, _BinaryEncoder().trailer()) == 0


def test_a_batch_of_another_schema_is_refused_not_misencoded() -> None:
    encode = _BinaryEncoder()
    encode(batch([1]))
    other = pa.RecordBatch.from_pydict({"id": pa.array([2], pa.int32())})
    with pytest.raises(LoadError, match="differ in their Arrow schema"):
        encode(other)
