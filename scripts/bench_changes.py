"""The everyday change, its hand-written floor and the peers' runs (scripts/bench.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench_env import TABLE, BenchError, Measured, Servers, child_env, run_measured
from bench_peers import Peers
from seed_demo import FILL


def change_rows(servers: Servers, database: str, rows: int) -> str:
    """The everyday change: 5 % of the rows updated now, 0.5 % new rows (ids past ``rows``).

    Returns the greatest ``updated_at`` before the change (the hand floor reads past it).
    """
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT MAX(updated_at) FROM {TABLE}")
            since = str(cur.fetchone()[0])
            cur.execute(
                f"UPDATE {TABLE} SET note = CONCAT('changed ', id), updated_at = "
                "NOW(6) - INTERVAL 10 SECOND WHERE id % 20 = 7"
            )
            extra = max(1, rows // 200)
            fill = FILL.format(lo=rows + 1, hi=rows + extra).replace(
                "'2025-01-01' + INTERVAL (seq DIV 3) SECOND", "NOW(6) - INTERVAL 10 SECOND"
            )
            cur.execute(fill)
        conn.commit()
    finally:
        conn.close()
    return since


def incremental_floor(
    servers: Servers, work: Path, database: str, target_schema: str, since: str
) -> Measured:
    r"""The incremental run by hand: ``mysql`` reads the changed rows, ``psql`` merges them.

    The rows past ``since`` (the ``(updated_at, id)`` index), as the client's tab
    format, into a file; then one transaction: a temporary table, ``\copy`` of the
    file, ``DELETE … USING`` and ``INSERT`` into ``target_schema.parcels``.
    """
    changed = work / "changed.tsv"
    read = [*servers.mysql_command(database, f"updated_at > '{since}'"), "--skip-column-names"]
    reading = run_measured(["sh", "-c", f"{shlex.join(read)} > {shlex.quote(str(changed))}"])
    target = f'"{target_schema}".{TABLE}'
    psql = servers.psql_command("")[:-2]  # without its -c
    merge = [
        "CREATE TEMP TABLE changed (LIKE " + target + ") ON COMMIT DROP",
        f"\\copy changed FROM '{changed}' WITH (FORMAT text, NULL 'NULL')",
        f"DELETE FROM {target} t USING changed s WHERE t.id = s.id",
        f"INSERT INTO {target} SELECT * FROM changed",
    ]
    merging = run_measured([*psql, "-1", *(a for sql in merge for a in ("-c", sql))])
    changed.unlink()
    return Measured(reading.seconds + merging.seconds, max(reading.peak_mb, merging.peak_mb))


def peer_run(
    peers: Peers, servers: Servers, name: str, database: str, prefix: str, *, first: bool
) -> Measured:
    """One run of peer ``name`` (into fresh schemas when ``first``), checked against the source.

    The check: as many rows as the source, and as many changed by :func:`change_rows`.
    """
    schemas = peers.schemas(name, prefix)
    if first:
        servers.pg_execute(*(f'DROP SCHEMA IF EXISTS "{s}" CASCADE' for s in schemas))
    command, env = peers.command(name, database, TABLE, schemas[0], first=first)
    measured = run_measured(command, env=child_env() | env, cwd=peers.home)
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), COALESCE(SUM(note LIKE 'changed %%'), 0) FROM {TABLE}")
            expected = tuple(int(v) for v in cur.fetchone())
    finally:
        conn.close()
    copied = servers.pg_execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE note LIKE 'changed %') "
        f'FROM "{schemas[0]}".{TABLE}'
    )[0]
    if tuple(copied) != expected:
        raise BenchError(
            f"{name} copied (rows, changed) {tuple(copied)}, the source has {expected}"
        )
    return measured


def forget_inserted(servers: Servers, database: str, rows: int) -> None:
    """Delete the rows :func:`change_rows` inserted, so the table is reused next time."""
    conn = servers.mysql(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE id > %s", (rows,))
        conn.commit()
    finally:
        conn.close()
