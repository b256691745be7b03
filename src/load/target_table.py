"""The target table of one load: its columns, and the DDL that creates or evolves it."""

from __future__ import annotations

from typing import Any

from src.core.table_schema import TableSchema
from src.errors import ConfigError, DataError, LoadError, first_line
from src.load.deletions import Deletions
from src.load.merge import TableWriter
from src.load.schema_drift import drift_changes
from src.load.targets.base import TargetColumn, TargetDialect
from src.utils.logging_setup import get_logger
from src.utils.naming import quote_pg, quote_pg_table

log = get_logger("load")


class TargetTable:
    """``schema.table`` in the target, as one table's load sees it."""

    def __init__(
        self, dialect: TargetDialect, writer: TableWriter, schema: str, table: str, label: str
    ) -> None:
        self.dialect = dialect
        self.writer = writer
        self.schema = schema
        self.table = table
        self.label = label  # the source table, for log lines

    def delete_rows(self, conn: Any) -> int:
        """Delete every row, in the caller's transaction; the rows deleted (0: no table)."""
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                (self.schema, self.table),
            )
            if not cur.fetchone()[0]:
                return 0
            # DELETE, never TRUNCATE: TRUNCATE commits implicitly on Redshift.
            # https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html
            cur.execute(f"DELETE FROM {quote_pg_table(self.schema, self.table)}")
            return max(int(cur.rowcount), 0)

    @property
    def qualified(self) -> str:
        """``schema.table``, as the watermark records where a table's rows went."""
        return f"{self.schema}.{self.table}"

    def check_identity(self, recorded: str | None, pipeline: str) -> None:
        """ConfigError when the table's rows went to another target table than configured now.

        A changed ``target_name`` (or target schema) on a table with history would load
        only the rows changed from now on into the new table, silently.
        """
        if recorded is None or recorded == self.qualified:
            return
        raise ConfigError(
            f"table {self.label}: its rows were loaded into {recorded}, and the configuration "
            f"now loads it into {self.qualified} (target_name or the target's schema changed), "
            f"which would get only the rows changed from now on; set it back, or start over "
            f"into {self.qualified} with 'watermark reset -t {self.label} -p {pipeline} "
            "--reinitialize'"
        )

    def rows_from(
        self, conn: Any, column: str | None = None, bound: Any = None, inclusive: bool = False
    ) -> int:
        """The target rows whose ``column`` lies past ``bound`` (or at it, ``inclusive``);
        every row without a column; 0 when the table is missing."""
        with conn.cursor() as cur:
            if not self.columns(cur):
                return 0
            sql = f"SELECT COUNT(*) FROM {quote_pg_table(self.schema, self.table)}"
            if column is None:
                cur.execute(sql)
            else:
                op = ">=" if inclusive else ">"
                cur.execute(f"{sql} WHERE {quote_pg(column)} {op} %s", (bound,))
            return int(cur.fetchone()[0])

    def columns(self, cur: Any) -> dict[str, TargetColumn]:
        """The table's columns in order (empty when it does not exist)."""
        cur.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
            "numeric_scale, is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, self.table),
        )
        return {
            row[0]: TargetColumn(
                row[0], str(row[1]).lower(), row[2], row[3], row[4], row[5] == "YES"
            )
            for row in cur.fetchall()
        }

    def ddl_changes(self, cur: Any, schema: TableSchema) -> list[str]:
        """CREATE TABLE, or the ADD COLUMN / widening statements the staged schema needs."""
        existing = self.columns(cur)
        if not existing:
            pk = self.writer.primary_key(schema)
            merges = self.writer.write_mode(pk) == "merge"
            return [
                self.dialect.create_table_sql(self.schema, self.table, schema, pk, merges=merges)
            ]
        self._check_key(cur, schema)
        target = quote_pg_table(self.schema, self.table)

        def has_rows() -> bool:
            cur.execute(f"SELECT 1 FROM {target} LIMIT 1")
            return cur.fetchone() is not None

        drift = drift_changes(self.dialect, self.schema, self.table, schema, existing, has_rows)
        for message in drift.messages:
            log.warning(message, table=self.label, target=self.table)
        return drift.statements

    def primary_key(self, cur: Any) -> list[str]:
        """The table's primary-key columns, in key order (empty: none declared)."""
        cur.execute(
            "SELECT kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu "
            "ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema "
            "AND kcu.table_name = tc.table_name "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %s "
            "AND tc.table_name = %s ORDER BY kcu.ordinal_position",
            (self.schema, self.table),
        )
        return [str(row[0]) for row in cur.fetchall()]

    def _check_key(self, cur: Any, schema: TableSchema) -> None:
        """DataError when the staged rows' key is not the one the target table was made with.

        A primary key changed at the source (``(id)`` → ``(id, b)``) would merge rows
        by a key the table does not enforce, or fail on the one it does.
        """
        have, wanted = self.primary_key(cur), self.writer.primary_key(schema)
        if not have or have == wanted:
            return
        qualified = f"{self.schema}.{self.table}"
        raise DataError(
            f"the primary key of {self.label} changed at the source: the target table "
            f"{qualified} has ({', '.join(have)}), the staged rows have "
            f"({', '.join(wanted)}); nothing was loaded. Rebuild the target: drop {qualified}, "
            f"then 'watermark reset -t {self.label} --reinitialize' and sync (or set "
            f"primary_key: [{', '.join(have)}] for the table to keep the old key)"
        )

    def apply_ddl(self, conn: Any, schemas: list[TableSchema], deletions: Deletions | None) -> None:
        """Create or evolve the table, outside the load transaction.

        Redshift refuses ``ALTER COLUMN … TYPE`` inside a transaction block
        (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html), so
        DDL runs in autocommit before the load; every statement is computed
        from the table's current state, so running it again is harmless.
        """
        conn.commit()  # end the read-only transaction of the ledger queries
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                # Each schema's changes are computed after the previous ones ran.
                for schema in schemas:
                    self._execute(cur, self.ddl_changes(cur, schema))
                if deletions is not None:
                    have = set(self.columns(cur))
                    self._execute(cur, deletions.ddl(self.schema, self.table, have))
        except (LoadError, DataError):
            raise
        except Exception as exc:
            raise LoadError(
                f"changing target table {self.table} failed: {first_line(exc)}"
            ) from None
        finally:
            conn.autocommit = False

    def _execute(self, cur: Any, statements: list[str]) -> None:
        for statement in statements:
            log.info("target DDL", table=self.table, sql=statement)
            cur.execute(statement)
