"""PostgreSQL as a target: native types, ``COPY … FROM STDIN`` streamed from Parquet."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from src.backup.mysql_schema import ColumnSpec, TableSchema
from src.core.stage import LocalStage, Stage
from src.core.targets.base import COMMON_TYPES, StagedFileRef, TargetDialect
from src.errors import StageError
from src.utils.faults import fault_point
from src.utils.naming import quote_pg

_BOUNDED_STRINGS = ("char", "varchar", "enum", "set", "time")


class PostgresDialect(TargetDialect):
    """PostgreSQL: VARCHAR counts characters; TEXT and JSONB for unbounded text."""

    name = "postgres"

    def column_type(self, col: ColumnSpec) -> str:
        """SPEC §7's PostgreSQL column."""
        t = col.arrow_type
        if pa.types.is_decimal(t):
            return f"NUMERIC({t.precision},{t.scale})"
        if pa.types.is_string(t):
            if col.is_json:
                return "JSONB"
            if col.data_type in ("char", "varchar") and col.character_maximum_length:
                return f"VARCHAR({col.character_maximum_length})"
            if col.data_type in _BOUNDED_STRINGS:
                return "VARCHAR"
            return "TEXT"
        return "BYTEA" if pa.types.is_binary(t) else COMMON_TYPES[str(t)]

    def fill_staging(
        self,
        cursor: Any,
        stage: Stage,
        staging: str,
        schema: TableSchema,
        files: list[StagedFileRef],
        load_prefix: str,
    ) -> int:
        """Stream each file's batches as CSV into ``COPY … FROM STDIN``; sum the counts."""
        cols = ", ".join(quote_pg(c.target_name) for c in schema.columns)
        sql = f"COPY {quote_pg(staging)} ({cols}) FROM STDIN WITH (FORMAT csv)"
        total = 0
        for ref in files:
            source = _open(stage, ref)
            parquet = pq.ParquetFile(source)
            for batch in parquet.iter_batches(batch_size=50_000):
                buffer = io.BytesIO()
                pacsv.write_csv(
                    _csv_ready(batch),
                    buffer,
                    write_options=pacsv.WriteOptions(include_header=False),
                )
                buffer.seek(0)
                cursor.copy_expert(sql, buffer)
                total += cursor.rowcount
                fault_point("mid_copy")
        return total


def _open(stage: Stage, ref: StagedFileRef) -> Any:
    if isinstance(stage, LocalStage):
        return stage.uri(ref.key)
    data = stage.get_bytes(ref.key)
    if data is None:
        raise StageError(f"staged file {ref.uri} disappeared before it was loaded")
    return pa.BufferReader(data)


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Binary columns as PostgreSQL's ``\\x`` hex text (Arrow's CSV writer has no binary)."""
    if not any(pa.types.is_binary(f.type) for f in batch.schema):
        return batch
    arrays = []
    for array, fld in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_binary(fld.type):
            hexed = [None if v is None else "\\x" + v.hex() for v in array.to_pylist()]
            array = pa.array(hexed, pa.string())
        arrays.append(array)
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(arrays, names=names)
