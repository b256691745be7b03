"""A Redshift test double: a psycopg2 PostgreSQL connection that behaves like Redshift.

Redshift cannot run here. The product's Redshift loader takes a DB-API connection; tests hand
it a :class:`RedshiftDouble`, so the real loader code runs end to end against PostgreSQL,
while the double executes what Redshift executes and rejects what Redshift rejects:

* ``COPY t FROM 's3://…/manifest' IAM_ROLE '…' FORMAT AS PARQUET MANIFEST`` is executed: the
  manifest and the Parquet files are read from the test S3 server and checked by Redshift's
  rules (:mod:`tests.support.redshift_copy`), then the rows go into PostgreSQL with
  ``COPY … FROM STDIN (FORMAT csv)``; ``pg_last_copy_count()`` answers the row count.
* ``CREATE TABLE`` / ``ALTER TABLE`` are checked and stripped of Redshift-only clauses
  (:mod:`tests.support.redshift_ddl`); ``TRUNCATE`` commits implicitly, as on Redshift.
* PostgreSQL-only SQL Redshift refuses (``ON CONFLICT``, ``RETURNING``, ``CREATE INDEX``,
  ``COPY FROM STDIN``) is rejected (:mod:`tests.support.redshift_sql`).
* Everything else passes through unchanged. Any rejection raises :class:`RedshiftError` and,
  as on Redshift, aborts the current transaction.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg2
import psycopg2.extensions
import pyarrow.parquet as pq

from tests.support.redshift_copy import (
    TargetColumn,
    batch_to_csv,
    check_schema,
    check_values,
    read_manifest,
    rs_type_from_pg,
)
from tests.support.redshift_ddl import (
    CREATE_TABLE,
    DdlPlan,
    RsType,
    translate_alter_table,
    translate_create_table,
    varbyte_domain,
)
from tests.support.redshift_sql import (
    RedshiftError,
    check_postgres_only,
    parse_copy,
    quote_ident,
    split_statements,
    tokenize,
)

__all__ = ["RedshiftDouble", "RedshiftDoubleCursor", "RedshiftError", "redshift_double_connect"]

_BATCH_ROWS = 100_000
_COLUMNS_SQL = """
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            ELSE format_type(a.atttypid, a.atttypmod) END,
       CASE WHEN t.typtype = 'd' THEN t.typname END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_ALTER_COLUMN_SQL = """
SELECT format_type(a.atttypid, a.atttypmod), a.atthasdef,
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid
               AND a.attnum = ANY (c.conkey) AND c.contype IN ('p', 'u', 'f'))
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attname = %s AND NOT a.attisdropped
"""
# Redshift's GETDATE(): statement start, session time zone (UTC), whole seconds.
# https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html
_GETDATE_SQL = (
    "CREATE FUNCTION {schema}.getdate() RETURNS timestamp LANGUAGE sql STABLE AS "
    "$$SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC')$$"
)
# Redshift's STRTOL(text, base) (https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html),
# for the base 16 verify uses, and FROM_VARBYTE(varbyte, format)
# (https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_VARBYTE.html); PostgreSQL has neither.
_STRTOL_SQL = (
    "CREATE FUNCTION {schema}.strtol(text, integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS "
    "$$SELECT CASE WHEN $2 = 16 THEN ('x' || lpad($1, 16, '0'))::bit(64)::bigint "
    "END$$"  # other bases: NULL (verify uses 16 only)
)
_FROM_VARBYTE_SQL = (
    "CREATE FUNCTION {schema}.from_varbyte(bytea, text) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$SELECT encode($1, $2)$$"
)
_FUNCTIONS = {"getdate": _GETDATE_SQL, "strtol": _STRTOL_SQL, "from_varbyte": _FROM_VARBYTE_SQL}


class RedshiftDoubleCursor:
    """A DB-API cursor over a real psycopg2 cursor, routing each statement through the double."""

    def __init__(self, connection: RedshiftDouble, raw: Any) -> None:
        self.connection = connection
        self._raw = raw
        self._no_result = False  # the last statement was handled by the double: no result set
        self._rowcount = -1

    @property
    def description(self) -> Any:
        return None if self._no_result else self._raw.description

    @property
    def rowcount(self) -> int:
        return self._rowcount if self._no_result else int(self._raw.rowcount)

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    @property
    def arraysize(self) -> int:
        return int(self._raw.arraysize)

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._raw.arraysize = value

    def execute(self, sql: Any, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        """Execute one SQL string (or several separated by ``;``) as Redshift would."""
        self.connection._execute(self, sql, params)

    def executemany(self, sql: Any, seq_of_params: Iterable[Any]) -> None:
        """Execute once per parameter set; ``rowcount`` is the total, as in psycopg2."""
        total = 0
        for params in seq_of_params:
            self.execute(sql, params)
            total += max(self.rowcount, 0)
        self._no_result, self._rowcount = True, total

    def mogrify(self, sql: Any, params: Any = None) -> bytes:
        return bytes(self._raw.mogrify(sql, params))

    def _check_result(self) -> None:
        if self._no_result:
            raise psycopg2.ProgrammingError("no results to fetch")

    def fetchone(self) -> Any:
        self._check_result()
        return self._raw.fetchone()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        self._check_result()
        return list(self._raw.fetchmany(size if size is not None else self.arraysize))

    def fetchall(self) -> list[Any]:
        self._check_result()
        return list(self._raw.fetchall())

    def __iter__(self) -> Iterator[Any]:
        self._check_result()
        return iter(self._raw)

    def copy_expert(self, *args: Any, **kwargs: Any) -> None:
        """Redshift has no COPY FROM STDIN / TO STDOUT."""
        raise RedshiftError("COPY FROM STDIN / TO STDOUT is not supported by Redshift")

    copy_from = copy_to = copy_expert

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> RedshiftDoubleCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedshiftDouble:
    """A psycopg2-like connection that runs Redshift SQL on PostgreSQL, Redshift's rules applied.

    ``statements`` lists every SQL string executed, as received (golden-SQL and secret-grep
    tests read it). Attributes not defined here (``encoding``, ``info``, ``notices`` …) come
    from the underlying psycopg2 connection.
    """

    def __init__(self, pg_conn: Any, s3_client: Any, *, schema: str) -> None:
        self._pg = pg_conn
        self._s3 = s3_client
        self.schema = schema
        self.statements: list[str] = []
        self.last_copy_count = 0
        # COPYs still to abort as a concurrent writer would (Redshift error 1023).
        self.conflicts_left = 0
        self._setup()

    def _setup(self) -> None:
        """Session defaults of a Redshift connection: UTC, search_path, Redshift functions."""
        with self._pg.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(f"SET search_path TO {quote_ident(self.schema)}")
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", (self.schema,)
            )
            (schema_exists,) = cur.fetchone()
            cur.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = %s",
                (self.schema,),
            )
            have = {row[0] for row in cur.fetchall()}
            for name, create in _FUNCTIONS.items():
                if not schema_exists or name in have:
                    continue
                try:
                    cur.execute("SAVEPOINT fn" if not self._pg.autocommit else "SELECT 1")
                    cur.execute(create.format(schema=quote_ident(self.schema)))
                except psycopg2.Error:  # created concurrently by another double
                    if not self._pg.autocommit:
                        cur.execute("ROLLBACK TO SAVEPOINT fn")
        if not self._pg.autocommit:
            self._pg.commit()

    # ------------------------------------------------------------------ connection API

    def cursor(self, *args: Any, **kwargs: Any) -> RedshiftDoubleCursor:
        return RedshiftDoubleCursor(self, self._pg.cursor(*args, **kwargs))

    def commit(self) -> None:
        self._pg.commit()

    def rollback(self) -> None:
        self._pg.rollback()

    def close(self) -> None:
        self._pg.close()

    @property
    def closed(self) -> int:
        return int(self._pg.closed)

    @property
    def autocommit(self) -> bool:
        return bool(self._pg.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._pg.autocommit = value

    def __enter__(self) -> RedshiftDouble:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Like psycopg2: commit on success, roll back on error, keep the connection open."""
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._pg, name)

    # ------------------------------------------------------------------ statement routing

    def _execute(self, cursor: RedshiftDoubleCursor, sql: Any, params: Any) -> None:
        if isinstance(sql, bytes):
            text = sql.decode("utf-8")
        elif isinstance(sql, str):
            text = sql
        else:  # psycopg2.sql.Composable
            text = sql.as_string(self._pg)
        self.statements.append(text)
        final = text if params is None else cursor.mogrify(text, params).decode("utf-8")
        pieces = split_statements(final) or [final]
        try:
            for piece in pieces:
                self._run_one(cursor, piece)
        except RedshiftError:
            self._abort_transaction()
            raise

    def _run_one(self, cursor: RedshiftDoubleCursor, sql: str) -> None:
        toks = tokenize(sql)
        words = [t.value if t.kind == "word" else "" for t in toks[:2]] + ["", ""]
        check_postgres_only(toks)
        cursor._no_result, cursor._rowcount = False, -1
        if words[0] == "copy":
            cursor._no_result = True
            self._copy(cursor._raw, sql)
        elif words[0] == "truncate":
            cursor._no_result = True
            self._truncate(cursor._raw, sql)
        elif words[0] == "create" and CREATE_TABLE.match(sql):
            self._run_plan(cursor, translate_create_table(sql, self.schema))
        elif words[:2] == ["alter", "table"]:
            self._run_plan(cursor, translate_alter_table(sql, self.schema))
        else:
            cursor._raw.execute(self._substitute_copy_count(sql, toks))

    def _substitute_copy_count(self, sql: str, toks: list[Any]) -> str:
        """Replace ``pg_last_copy_count()`` by this session's count (a BIGINT, same name).

        https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_COUNT.html
        """
        value = f"(SELECT CAST({self.last_copy_count} AS BIGINT) AS pg_last_copy_count)"
        for k in range(len(toks) - 3, -1, -1):
            call = toks[k : k + 3]
            if (
                call[0].is_word("pg_last_copy_count")
                and call[1].is_punct("(")
                and call[2].is_punct(")")
            ):
                sql = sql[: call[0].start] + value + sql[call[2].end :]
        return sql

    def _abort_transaction(self) -> None:
        """A failed statement aborts the open transaction on Redshift, as on PostgreSQL."""
        if self._pg.autocommit or self._pg.closed:
            return
        if self._pg.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            return
        with self._pg.cursor() as cur, contextlib.suppress(psycopg2.Error):
            cur.execute("DO $$BEGIN RAISE EXCEPTION 'statement rejected by Redshift'; END$$")

    # ------------------------------------------------------------------ TRUNCATE

    def _truncate(self, raw: Any, sql: str) -> None:
        """TRUNCATE commits the transaction it runs in, then itself.

        https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html
        """
        if any(t.is_punct(",") for t in tokenize(sql)):
            raise RedshiftError("TRUNCATE takes one table in Redshift")
        in_error = (
            self._pg.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        )
        if self._pg.autocommit or in_error:
            raw.execute(sql)  # in error: PostgreSQL answers "current transaction is aborted"
            return
        self._pg.commit()
        raw.execute(sql)
        self._pg.commit()

    # ------------------------------------------------------------------ DDL

    def _run_plan(self, cursor: RedshiftDoubleCursor, plan: DdlPlan) -> None:
        raw = cursor._raw
        for schema, length in sorted(plan.varbyte_domains):
            name = f"{quote_ident(schema)}.{quote_ident(varbyte_domain(length))}"
            raw.execute(
                f"DO $$BEGIN CREATE DOMAIN {name} AS bytea CHECK (octet_length(VALUE) <= {length});"
                " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"
            )
        table_sql = ".".join(quote_ident(p) for p in plan.table)
        if plan.alter_type is not None:
            self._check_alter_type(raw, table_sql, *plan.alter_type)
        if plan.pg_sql is None:  # a Redshift-only no-op: the table must still exist
            cursor._no_result = True
            raw.execute("SELECT %s::regclass", (table_sql,))
            return
        raw.execute(plan.pg_sql)

    def _check_alter_type(self, raw: Any, table_sql: str, column: str, length: int) -> None:
        """ALTER COLUMN … TYPE VARCHAR(n): only a VARCHAR, only wider, outside a transaction.

        https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html ("ALTER COLUMN
        column_name TYPE updated_varchar_data_type_size": no columns with a default or a
        UNIQUE/PRIMARY KEY/FOREIGN KEY constraint, not inside a transaction block).
        """
        if not self._pg.autocommit:
            raise RedshiftError("ALTER TABLE ALTER COLUMN cannot run inside a transaction block")
        raw.execute(_ALTER_COLUMN_SQL, (table_sql, column))
        row = raw.fetchone()
        if row is None:
            raise RedshiftError(f'column "{column}" of relation {table_sql} does not exist')
        current = rs_type_from_pg(row[0], None)
        if current is None or current.kind != "VARCHAR":
            raise RedshiftError(f'ALTER COLUMN TYPE: "{column}" is {row[0]}, not VARCHAR')
        if length < (current.length or 0):
            raise RedshiftError(f"ALTER COLUMN TYPE cannot shrink {current} to VARCHAR({length})")
        if row[1] or row[2]:
            raise RedshiftError(f'ALTER COLUMN TYPE: "{column}" has a DEFAULT or a key constraint')

    # ------------------------------------------------------------------ COPY

    def _target_columns(self, raw: Any, table_sql: str) -> list[TargetColumn]:
        raw.execute("SELECT to_regclass(%s)", (table_sql,))
        if raw.fetchone()[0] is None:
            raise RedshiftError(f"relation {table_sql} does not exist")
        raw.execute(_COLUMNS_SQL, (table_sql,))
        columns = []
        for name, pg_type, domain in raw.fetchall():
            rs_type = rs_type_from_pg(pg_type, domain) or RsType(pg_type.upper())
            columns.append(TargetColumn(name, rs_type))
        return columns

    def _copy(self, raw: Any, sql: str) -> None:
        """Execute a Parquet manifest COPY (atomic: any bad file or value fails it all).

        A COPY rejected at parse time leaves ``pg_last_copy_count()`` as it was; one that
        fails while loading sets it to 0 (PG_LAST_COPY_COUNT page).
        """
        cmd = parse_copy(sql)
        self.last_copy_count = 0
        if self.conflicts_left:
            # https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html
            self.conflicts_left -= 1
            raise RedshiftError(
                "1023\nDETAIL:  Serializable isolation violation on table - 100123, "
                "transactions forming the cycle are: 2001, 2002 (pid:4242)"
            )
        columns = self._target_columns(raw, cmd.table_sql)
        parsed = []
        for url, data in read_manifest(self._s3, cmd.source_url):
            pf = pq.ParquetFile(io.BytesIO(data))
            check_schema(url, pf, columns, "fillrecord" in cmd.options)
            parsed.append((url, pf))
        autocommit = self._pg.autocommit
        if autocommit:
            raw.execute("BEGIN")
        total = 0
        try:
            for url, pf in parsed:
                names = ", ".join(quote_ident(c.name) for c in columns[: len(pf.schema_arrow)])
                copy_sql = f"COPY {cmd.table_sql} ({names}) FROM STDIN WITH (FORMAT csv)"
                for batch in pf.iter_batches(batch_size=_BATCH_ROWS):
                    check_values(url, batch, columns)
                    raw.copy_expert(copy_sql, io.BytesIO(batch_to_csv(batch, columns)))
                    total += batch.num_rows
        except (RedshiftError, psycopg2.Error) as exc:
            if autocommit:
                raw.execute("ROLLBACK")
            if isinstance(exc, RedshiftError):
                raise
            detail = (exc.pgerror or str(exc)).strip()
            raise RedshiftError(f"Load into table {cmd.table_sql} failed: {detail}") from exc
        if autocommit:
            raw.execute("COMMIT")
        self.last_copy_count = total


def redshift_double_connect(
    pg_dsn_kwargs: dict[str, Any], s3_client: Any, schema: str
) -> RedshiftDouble:
    """Open a psycopg2 connection (not autocommit) and wrap it in a :class:`RedshiftDouble`."""
    return RedshiftDouble(psycopg2.connect(**pg_dsn_kwargs), s3_client, schema=schema)
