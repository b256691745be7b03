"""Fault soak: sync under a concurrent writer while the network breaks at random (#12).

MariaDB and PostgreSQL are reached through fault proxies (tests/support/fault_proxy.py),
the stage is the S3 API server (tests/support/s3_faults.py; ``--stage local`` for a
directory). Each iteration starts ``sync pipeline`` and, after a random delay, injects
one fault of a random kind: every connection to MySQL or PostgreSQL reset, one reset
after a random number of bytes, a stall of up to 2 s, or the next 1–8 S3 requests of
one kind (PUT, GET, LIST) answered 503 SlowDown or 500. The first fault (and, at random,
later ones) is a staged file damaged before its load: a run stages without loading, 8
bytes in the middle of a page of the last file are flipped, and the next run must
quarantine it (exit 4, naming it) and load the rest. A run rides the fault out
(exit 0) or fails cleanly (exit 2, 5 or 6, one ``Error:`` line, no traceback); the
watermark never moves back and the target never holds a duplicate key. At the end the
writer stops, the sync runs without faults, ``verify --repair`` re-extracts what was
quarantined, and the target must equal the source by count and checksum.

    .venv/bin/python -m tests.soak.fault_harness --faults 100 --rows 200000

CI runs a bounded version through tests/integration/test_fault_harness.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.soak.kill_harness import (
    CONFIG,
    TABLE_DDL,
    Writer,
    checksum_source,
    checksum_target,
    position_of,
    start_sync,
    target_exists,
)
from tests.support.databases import mysql_database, pg_schema
from tests.support.fault_proxy import FaultProxy, fault_proxy
from tests.support.pipelines import Project, make_project
from tests.support.s3_faults import inject
from tests.support.s3_server import s3_bucket, s3_server

# A run that meets a fault rides it out, or ends with a connection (2), stage (5) or
# load (6) error.
CLEAN_FAILURES = {2, 5, 6}
RETRIES = {"attempts": 3, "initial_wait_seconds": 0.2, "max_wait_seconds": 1}
KINDS = ("mysql_reset", "pg_reset", "mysql_reset_after", "mysql_stall", "pg_stall", "flipped")
S3_KINDS = ("s3_put", "s3_get", "s3_list")


def _inject(
    kind: str, mysql: FaultProxy, pg: FaultProxy, s3: str | None, rng: random.Random
) -> None:
    if kind.startswith("s3_"):
        assert s3 is not None
        inject(s3, kind[3:].upper(), rng.randint(1, 8), rng.choice((503, 500)))
    elif kind == "mysql_reset":
        mysql.reset_all()
    elif kind == "pg_reset":
        pg.reset_all()
    elif kind == "mysql_reset_after":
        mysql.reset_after(rng.randint(10_000, 3_000_000))
    elif kind == "mysql_stall":
        mysql.stall(rng.uniform(0.2, 2.0))
    else:
        pg.stall(rng.uniform(0.2, 2.0))


def _flip_a_staged_file(project: Project, table: str) -> str | None:
    """Stage without loading; flip 8 bytes mid-page in the ``id`` column of the last file."""
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    staged = project.watermark(table)["backup_s3_files"]
    if not staged:
        return None  # nothing new to stage
    uri = staged[-1]
    bucket = project.bucket
    key = uri.split("/", 3)[3] if bucket else uri
    data = bytearray(
        bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
        if bucket
        else Path(uri).read_bytes()
    )
    chunk = pq.ParquetFile(pa.BufferReader(bytes(data))).metadata.row_group(0).column(0)
    at = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])
    if bucket:
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=bytes(data))
    else:
        Path(uri).write_bytes(bytes(data))
    return uri


def _disarm(s3: str | None) -> None:
    for kind in S3_KINDS if s3 else ():
        inject(s3, kind[3:].upper(), 0)


def soak(
    faults_wanted: int, rows: int, seed: int, root: Path, stage: str = "s3"
) -> dict[str, object]:
    """Inject ``faults_wanted`` faults into runs; raise AssertionError on any violation."""
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(mysql_database("fsoak"))
        target = stack.enter_context(pg_schema("fsoak"))
        mysql = stack.enter_context(fault_proxy(db.host, db.port))
        pg = stack.enter_context(fault_proxy(target.host, target.port))
        bucket = None
        if stage == "s3":
            bucket = stack.enter_context(s3_bucket(stack.enter_context(s3_server()), "fsoak"))
        s3 = bucket.server.endpoint_url if bucket else None
        kinds_of = KINDS + (S3_KINDS if bucket else ())
        db.execute(TABLE_DDL)
        db.execute(
            "INSERT INTO items (id, qty, note, updated_at) SELECT seq, seq % 97, "
            f"CONCAT('n', seq), '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}"
        )
        table = f"{db.name}.items"
        config = CONFIG | {"processing": {**CONFIG["processing"], "retries": RETRIES}}
        project = make_project(
            root,
            db,
            {table: config},
            pg=dataclasses.replace(target, port=pg.port),
            source_extra={"port": mysql.port},
            backup_batch_size=50_000,
            bucket=bucket,
        )
        writer = Writer(db, seed)
        writer.start()
        kinds: Counter[str] = Counter()
        exits: Counter[int] = Counter()
        last = None
        typical = 2.0
        try:
            while sum(kinds.values()) < faults_wanted:
                started = time.monotonic()
                kind = "flipped" if not kinds else rng.choice(kinds_of)
                flipped = _flip_a_staged_file(project, table) if kind == "flipped" else None
                if flipped:
                    kinds[kind] += 1
                proc = start_sync(project)
                time.sleep(rng.uniform(0.05, typical))
                if kind != "flipped" and proc.poll() is None:
                    _inject(kind, mysql, pg, s3, rng)
                    kinds[kind] += 1
                code = proc.wait(timeout=300)
                stderr = proc.stderr.read() if proc.stderr else ""
                _disarm(s3)  # what this run did not meet must not hit the checks below
                exits[code] += 1
                if flipped:  # quarantined, named; the other files load
                    assert code == 4 and flipped in stderr, f"exit {code}: {stderr}"
                elif code == 0:
                    typical = max(0.3, 0.9 * (time.monotonic() - started))
                elif code not in CLEAN_FAILURES:
                    raise AssertionError(f"sync exited {code}: {stderr}")
                errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
                assert "Traceback" not in stderr, stderr
                assert len(errors) == (0 if code == 0 else 1), stderr
                position = position_of(project, table)
                if last is not None and position is not None:
                    assert position[:2] >= last[:2], f"watermark moved back: {last} -> {position}"
                last = position or last
                if target_exists(target):
                    dupes = target.execute("SELECT COUNT(*) - COUNT(DISTINCT id) FROM items")
                    assert dupes == [(0,)], "duplicate keys in the target"
        finally:
            writer.stop_event.set()
            writer.join()
        time.sleep(2.5)  # past the lookback window: every writer commit is visible
        final = start_sync(project)
        assert final.wait(timeout=600) == 0, final.stderr.read() if final.stderr else ""
        mended = project.cli("verify", "-p", "p", "--repair")  # the quarantined files' rows
        assert mended.returncode == 0, mended.stdout + mended.stderr
        source, loaded = checksum_source(db), checksum_target(target)
        assert loaded == source, f"target {loaded} != source {source}"
        return {
            "faults": sum(kinds.values()),
            "kinds": dict(kinds),
            "exits": {str(k): v for k, v in exits.items()},
            "source_rows": source[0],
        }


def main() -> int:
    """Command line of the soak."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", type=int, default=50, help="faults to inject")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--stage", choices=("s3", "local"), default="s3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp:
        result = soak(args.faults, args.rows, args.seed, Path(tmp), args.stage)
    print(json.dumps({"seed": args.seed, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
