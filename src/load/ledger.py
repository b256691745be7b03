"""The load ledger: one row per loaded file, in the target, committed with the rows.

``s3_backup_load_ledger(file_key PRIMARY KEY, table_name, rows, loaded_at,
execution_id)`` in the target schema records what the target really holds.
A file it lists is never loaded again, whatever the watermark says; a
watermark that lags it (a crash after the commit) is repaired from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from src.errors import LoadError, first_line
from src.load.targets.base import LEDGER_TABLE
from src.utils.naming import quote_pg_table

_BATCH = 500  # keys per look-up, rows per INSERT


@dataclass(frozen=True)
class Ledger:
    """The ledger of one target schema; ``where`` names the target in errors."""

    schema: str
    where: str

    @property
    def table(self) -> str:
        """The ledger's quoted, schema-qualified name."""
        return quote_pg_table(self.schema, LEDGER_TABLE)

    def ensure(self, conn: Any) -> None:
        """Create the ledger when missing (committed); LoadError naming what to check.

        Tables of a first run with ``--parallel`` (or many Airflow tasks) create it
        at once, and ``CREATE TABLE IF NOT EXISTS`` is not atomic in PostgreSQL: the
        loser of the race fails on the catalog's unique index
        (``pg_type_typname_nsp_index``). A failed create after which the ledger
        exists is that race, lost to a run that created it: nothing to do.
        """
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    '"file_key" VARCHAR(1024) NOT NULL PRIMARY KEY, '
                    '"table_name" VARCHAR(512) NOT NULL, "rows" BIGINT NOT NULL, '
                    '"loaded_at" TIMESTAMP NOT NULL, "execution_id" VARCHAR(128))'
                )
            conn.commit()
        except Exception as exc:  # e.g. the schema does not exist, or no CREATE right
            conn.rollback()
            if self.exists(conn):
                conn.rollback()  # end the read: the load opens its own transaction
                return
            raise LoadError(
                f"creating the load ledger {self.schema}.{LEDGER_TABLE} on {self.where} "
                f"failed: {first_line(exc)}; check that the target schema exists and the "
                "user may create tables in it"
            ) from None

    def exists(self, conn: Any) -> bool:
        """Whether the ledger table exists (reads never create it)."""
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                (self.schema, LEDGER_TABLE),
            )
            return bool(cur.fetchone()[0])

    def files(self, conn: Any, table_name: str) -> list[tuple[str, int]]:
        """``(file_key, rows)`` of every file loaded for ``table_name``, oldest first."""
        if not self.exists(conn):
            return []
        with conn.cursor() as cur:
            cur.execute(
                f'SELECT "file_key", "rows" FROM {self.table} '
                'WHERE "table_name" = %s ORDER BY "loaded_at", "file_key"',
                (table_name,),
            )
            return [(str(key), int(rows)) for key, rows in cur.fetchall()]

    def loaded_among(self, conn: Any, uris: list[str]) -> set[str]:
        """Which of ``uris`` the ledger holds: a look-up of these keys only.

        The ledger keeps every file a table ever loaded; asking for the files at
        hand keeps a run's cost independent of that history.
        """
        found: set[str] = set()
        with conn.cursor() as cur:
            for start in range(0, len(uris), _BATCH):
                part = uris[start : start + _BATCH]
                marks = ", ".join(["%s"] * len(part))
                cur.execute(
                    f'SELECT "file_key" FROM {self.table} WHERE "file_key" IN ({marks})', part
                )
                found.update(row[0] for row in cur.fetchall())
        return found

    def insert(
        self, cur: Any, table_name: str, files: Iterable[tuple[str, int]], execution_id: str
    ) -> None:
        """One row per ``(file_key, rows)``, inside the caller's load transaction."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [(uri, table_name, count, now, execution_id) for uri, count in files]
        for start in range(0, len(rows), _BATCH):
            part = rows[start : start + _BATCH]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(part))
            cur.execute(
                f'INSERT INTO {self.table} ("file_key", "table_name", "rows", "loaded_at", '
                f'"execution_id") VALUES {values}',
                [v for row in part for v in row],
            )

    def forget(self, cur: Any, table_name: str) -> None:
        """Delete ``table_name``'s rows (``watermark reset --reinitialize``)."""
        cur.execute(f'DELETE FROM {self.table} WHERE "table_name" = %s', (table_name,))
