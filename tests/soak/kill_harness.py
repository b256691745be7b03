"""kill -9 soak: sync under a concurrent writer, SIGKILLed at random moments (SPEC §11).

Each iteration starts ``sync pipeline`` as a subprocess, kills it with SIGKILL
after a random delay (or lets it finish), then checks that the watermark
parses and never moved backwards and that the target has no duplicate keys.
At the end the writer stops, the sync is rerun until it exits 0, and the
target must equal the source by count and checksum.

    .venv/bin/python -m tests.soak.kill_harness --kills 50 --rows 200000

CI runs a bounded version through tests/integration/test_kill_harness.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from src.core.simple_watermark_manager import Watermark
from tests.support.databases import MySQLDatabase, PgSchema, mysql_database, pg_schema
from tests.support.pipelines import ROOT, Project, make_project

TABLE_DDL = (
    "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, qty INT NOT NULL, "
    "note VARCHAR(40), updated_at DATETIME(6) NOT NULL, KEY ix (updated_at, id))"
)
CONFIG = {
    "cdc_strategy": "hybrid",
    "cdc_timestamp_column": "updated_at",
    "cdc_id_column": "id",
    "write_mode": "merge",
    # Writer transactions commit a moment after NOW(6) is taken: re-read a short window.
    "lookback_seconds": 2,
    "processing": {"batch_size": 20_000},
}


@dataclass
class SoakResult:
    """What the soak did."""

    iterations: int
    kills: int
    completed_runs: int
    source_rows: int


class Writer(threading.Thread):
    """Inserts and updates rows (updated_at = NOW(6)) until stopped."""

    def __init__(self, db: MySQLDatabase, seed: int) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.statements = 0

    def run(self) -> None:
        with self.db.connect() as conn, conn.cursor() as cur:
            while not self.stop_event.is_set():
                if self.rng.random() < 0.5:
                    cur.execute(
                        "INSERT INTO items (qty, note, updated_at) VALUES (%s, 'w', NOW(6))",
                        (self.rng.randint(1, 100),),
                    )
                else:
                    cur.execute("SELECT MAX(id) FROM items")
                    (top,) = cur.fetchone()
                    cur.execute(
                        "UPDATE items SET qty = qty + 1, updated_at = NOW(6) WHERE id = %s",
                        (self.rng.randint(1, top),),
                    )
                self.statements += 1
                time.sleep(0.002)


def checksum_source(db: MySQLDatabase) -> tuple[int, int]:
    """Row count and an order-independent checksum of the source."""
    rows = db.execute("SELECT id, qty, note FROM items")
    return len(rows), sum(zlib.crc32(f"{i}|{q}|{n}".encode()) for i, q, n in rows)


def checksum_target(pg: PgSchema) -> tuple[int, int]:
    """The same over the target."""
    rows = pg.execute("SELECT id, qty, note FROM items")
    return len(rows), sum(zlib.crc32(f"{i}|{q}|{n}".encode()) for i, q, n in rows)


def position_of(project: Project, table: str) -> tuple[str, int, int] | None:
    try:
        raw = project.watermark(table)
    except FileNotFoundError:
        return None
    wm = Watermark.model_validate(raw)  # must parse, whatever moment the kill hit
    state = wm.mysql_state
    return (state.last_timestamp or "", state.last_id or 0, state.total_rows)


def start_sync(project: Project) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    env.update(project.env)
    return subprocess.Popen(
        [sys.executable, "-m", "src.cli.main", "-q", "--config-dir", str(project.config_dir),
         "sync", "pipeline", "-p", "p"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def soak(
    kills_wanted: int, rows: int, seed: int, root: Path, max_iterations: int = 0
) -> SoakResult:
    """Kill ``kills_wanted`` runs at random moments; raise AssertionError on any violation.

    A kill lands anywhere in a run: its delay is drawn up to the duration of the
    runs that finished so far. At most ``max_iterations`` runs (default 4 × kills).
    """
    max_iterations = max_iterations or 4 * kills_wanted
    rng = random.Random(seed)
    with mysql_database("soak") as db, pg_schema("soak") as pg:
        db.execute(TABLE_DDL)
        db.execute(
            "INSERT INTO items (id, qty, note, updated_at) SELECT seq, seq % 97, "
            f"CONCAT('n', seq), '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}"
        )
        table = f"{db.name}.items"
        project = make_project(root, db, {table: CONFIG}, pg=pg, backup_batch_size=50_000)
        writer = Writer(db, seed)
        writer.start()
        kills = completed = iterations = 0
        typical = 2.0  # seconds a run takes; refined from the runs that complete
        last = None
        try:
            while kills < kills_wanted and iterations < max_iterations:
                iterations += 1
                started = time.monotonic()
                proc = start_sync(project)
                try:
                    code = proc.wait(timeout=rng.uniform(0.1, typical))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    code = proc.wait()
                if code == -signal.SIGKILL:
                    kills += 1
                elif code == 0:
                    completed += 1
                    typical = max(0.3, 0.9 * (time.monotonic() - started))
                else:
                    stderr = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"sync exited {code}: {stderr}")
                position = position_of(project, table)
                if last is not None and position is not None:
                    assert position[:2] >= last[:2], f"watermark moved back: {last} -> {position}"
                    assert position[2] >= last[2], f"total_rows went down: {last} -> {position}"
                last = position or last
                dupes = (
                    pg.execute("SELECT COUNT(*) - COUNT(DISTINCT id) FROM items")
                    if target_exists(pg)
                    else [(0,)]
                )
                assert dupes == [(0,)], "duplicate keys in the target"
        finally:
            writer.stop_event.set()
            writer.join()
        time.sleep(2.5)  # past the lookback window: every writer commit is visible
        for _ in range(3):
            proc = start_sync(project)
            if proc.wait(timeout=600) == 0:
                break
        else:
            raise AssertionError("the final sync did not succeed")
        source, target = checksum_source(db), checksum_target(pg)
        assert target == source, f"target {target} != source {source}"
        assert kills >= kills_wanted, f"only {kills} kills in {iterations} runs"
        return SoakResult(iterations, kills, completed, source[0])


def target_exists(pg: PgSchema) -> bool:
    found = pg.execute(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name = 'items'",
        (pg.name,),
    )
    return bool(found[0][0])


def main() -> int:
    """Command line of the soak."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs to land")
    parser.add_argument("--iterations", type=int, default=0, help="max runs (4 x kills)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = soak(args.kills, args.rows, args.seed, Path(tmp), args.iterations)
    print(json.dumps({"seed": args.seed, **result.__dict__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
