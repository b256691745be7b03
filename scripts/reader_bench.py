#!/usr/bin/env python
"""Benchmark the backup-stage readers against the mysql client (SPEC §10).

Builds the SPEC §10.1 ``parcels`` table with N rows in database ``bench_reader``
(one INSERT ... SELECT from MariaDB's Sequence engine), then times:

* ``mysql --quick -e "SELECT ..." > /dev/null`` (the reference);
* each reader (connectorx, pymysql) streaming the whole table into one snappy
  Parquet file, each in its own child process so its peak RSS is its own.

Usage: ``.venv/bin/python scripts/reader_bench.py [--rows 2000000] [--batch-size 100000]
[--chunk-rows 0]`` (``--chunk-rows N`` reads in keyset chunks ``WHERE id > %s ORDER BY
id LIMIT N`` like the backup strategies instead of one query)
(connection: ``--host/--port/--user`` and env ``MYSQL_PWD``). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq

from src.backup.mysql_reader import ConnectorxReader, MySQLEndpoint, PyMySQLReader
from src.backup.mysql_schema import TypePolicy, load_table_schema

DATABASE = "bench_reader"
TABLE = "parcels"
COLUMNS = (
    "id, tracking_number, order_id, status, is_active, weight, price, zone, note, "
    "created_at, updated_at, shipped_date"
)
CREATE = f"""
CREATE TABLE {TABLE} (
 id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
 tracking_number VARCHAR(64) NOT NULL, order_id BIGINT, status TINYINT,
 is_active TINYINT(1), weight DECIMAL(10,3), price DECIMAL(12,2),
 zone VARCHAR(16), note VARCHAR(255), created_at DATETIME,
 updated_at DATETIME(6) NOT NULL, shipped_date DATE,
 KEY idx_updated (updated_at, id)) CHARACTER SET utf8mb4
"""
# The Sequence engine's seq_1_to_N tables: https://mariadb.com/kb/en/sequence-storage-engine/
FILL = f"""
INSERT INTO {TABLE} ({COLUMNS})
SELECT seq, CONCAT('UNI', LPAD(seq, 12, '0')), seq * 7 % 100000007, seq % 9, seq % 2,
       (seq % 50000) / 1000, (seq % 100000) / 100,
       ELT(1 + seq % 5, 'north', 'south', 'east', 'west', 'central'),
       IF(seq % 10 = 0, NULL, CONCAT('note for parcel ', seq, ' — ünïcödé')),
       '2025-01-01' + INTERVAL (seq DIV 10) SECOND,
       '2025-01-01' + INTERVAL (seq DIV 3) SECOND + INTERVAL (seq % 1000) MICROSECOND,
       '2025-01-01' + INTERVAL (seq DIV 100000) DAY
FROM seq_1_to_{{rows}}
"""
READERS = {"connectorx": ConnectorxReader, "pymysql": PyMySQLReader}


def endpoint(args: argparse.Namespace, database: str | None = DATABASE) -> MySQLEndpoint:
    """The benchmark's connection settings."""
    return MySQLEndpoint(args.host, args.port, args.user, os.environ.get("MYSQL_PWD", ""), database)


def build_table(args: argparse.Namespace) -> None:
    """Create ``bench_reader.parcels`` with ``args.rows`` rows unless it already has them."""
    conn = endpoint(args, None).connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        cur.execute(f"USE {DATABASE}")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s",
            (DATABASE, TABLE),
        )
        if cur.fetchone()[0]:
            cur.execute(f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {TABLE}")
            if cur.fetchone() == (args.rows, args.rows):
                print(f"{DATABASE}.{TABLE}: {args.rows:,} rows already there")
                return
        started = time.perf_counter()
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(CREATE)
        cur.execute(FILL.format(rows=args.rows))
        cur.execute(f"ANALYZE TABLE {TABLE}")
        cur.fetchall()
        print(
            f"built {DATABASE}.{TABLE}: {args.rows:,} rows in {time.perf_counter() - started:.1f} s"
        )
    conn.close()


def time_mysql_client(args: argparse.Namespace) -> float:
    """Seconds for the mysql command-line client to stream the table to /dev/null."""
    command = ["mysql", "--quick", "-h", args.host, "-P", str(args.port), "-u", args.user]
    command += [DATABASE, "-e", f"SELECT {COLUMNS} FROM {TABLE}"]
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(command, stdout=sink, check=True)
    return time.perf_counter() - started


def run_reader(args: argparse.Namespace) -> None:
    """Child process: one reader, whole table -> Parquet; prints a JSON result line."""
    started = time.perf_counter()
    ep = endpoint(args)
    conn = ep.connect()
    schema = load_table_schema(conn, DATABASE, TABLE, TypePolicy())
    conn.close()
    select = f"SELECT {schema.select_list()} FROM {schema.sql_table()}"
    path = Path(args.out_dir) / f"{args.run_reader}.parquet"
    rows = batches = 0
    with (
        READERS[args.run_reader](ep, schema, args.batch_size) as reader,
        pq.ParquetWriter(
            path,
            schema.arrow_schema,
            compression="snappy",
            coerce_timestamps="us",
            use_dictionary=not args.no_dictionary,
        ) as writer,
    ):
        last_id, more = 0, True
        while more:
            if args.chunk_rows:  # keyset chunks, as the id_only strategy reads
                sql = f"{select} WHERE `id` > %s ORDER BY `id` LIMIT %s"
                stream = reader.read(sql, (last_id, args.chunk_rows))
            else:
                stream = reader.read(select)
            for batch in stream:
                writer.write_batch(batch)
                last_id = int(batch.column("id")[-1].as_py())
            rows, batches = rows + stream.rows, batches + stream.batches
            more = bool(args.chunk_rows) and stream.rows == args.chunk_rows
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result = {"rows": rows, "batches": batches, "seconds": seconds, "peak_rss_mb": peak_mb}
    result["file_mb"] = path.stat().st_size / 2**20
    print(json.dumps(result))


def main() -> None:
    """Build the table, run the reference and each reader, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--readers", default="connectorx,pymysql")
    parser.add_argument(
        "--chunk-rows", type=int, default=0, help="read in keyset chunks of N rows (0: one query)"
    )
    parser.add_argument(
        "--no-dictionary",
        action="store_true",
        help="write Parquet without dictionary encoding (pyarrow's default is on)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is shown")
    parser.add_argument("--run-reader", choices=sorted(READERS), help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_reader:
        run_reader(args)
        return

    build_table(args)
    # Median of --repeat runs, reference and readers interleaved: single runs on a
    # shared 2-core machine vary by 20%.
    references: list[float] = []
    results: dict[str, list[dict[str, float]]] = {name: [] for name in args.readers.split(",")}
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(args.repeat):
            references.append(time_mysql_client(args))
            for name, runs in results.items():
                command = [sys.executable, __file__, "--run-reader", name, "--out-dir", out_dir]
                command += ["--batch-size", str(args.batch_size), "--host", args.host]
                command += ["--port", str(args.port), "--user", args.user]
                command += ["--chunk-rows", str(args.chunk_rows)]
                command += ["--no-dictionary"] if args.no_dictionary else []
                output = subprocess.run(command, capture_output=True, text=True, check=True)
                runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
    reference = statistics.median(references)
    chunks = f"keyset chunks of {args.chunk_rows:,}" if args.chunk_rows else "one query"
    encoding = "no dictionary" if args.no_dictionary else "dictionary"
    print(
        f"{args.rows:,} rows, batch {args.batch_size:,}, {chunks}, Parquet snappy + {encoding}, "
        f"median of {args.repeat}"
    )
    print(f"{'mysql --quick > /dev/null':<30} {reference:7.2f} s   1.00x")
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        last = runs[-1]
        print(
            f"{name + ' -> parquet (snappy)':<30} {seconds:7.2f} s {seconds / reference:6.2f}x"
            f"   peak RSS {peak:.0f} MB   {last['rows']:,.0f} rows in {last['batches']:.0f} "
            f"batches, {last['file_mb']:.1f} MB file"
        )


if __name__ == "__main__":
    main()
