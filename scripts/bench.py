#!/usr/bin/env python
"""Benchmark the product against the tools that bound it (SPEC §10), in one run.

Builds the SPEC §10.1 ``parcels`` table with ``--rows`` rows in database
``<prefix>_src`` (default ``bench_src``; one INSERT … SELECT from MariaDB's
Sequence engine, reused when it already has exactly that many rows), then times,
side by side, each measure in a fresh child process, started by a minimal
wrapper whose ``os.wait4`` gives its wall time and peak RSS (``ru_maxrss``: that
child and its waited-for children only):

a. ``mysql --quick … -e "SELECT … FROM parcels" > /dev/null`` — backup reference, run
   just before each run of b and c, whose ratios are the median of the per-pair ratios;
b. ``sync pipeline --backup-only`` into a local stage directory (also with chunks of
   50,000 and 1,000,000 rows, issue #13's range, each in a fresh stage and target);
c. the same into the S3 API server of the test harness (moto; ``--skip-s3`` skips it),
   also with chunks of 50,000 and 1,000,000 rows;
d. ``psql -c "\\copy <prefix>_ref.parcels FROM 'parcels.csv' CSV"`` — load reference
   (the CSV is exported once from the Parquet staged by b, untimed, into a table
   created ``LIKE`` the product's target table);
e. ``sync pipeline --redshift-only`` of what b staged, into a fresh target schema;
f. the full ``sync pipeline`` (fresh stage, fresh target) against a + d;
g. the peak RSS of f (and, with ``--memory-rows N``, of a full sync of N rows);
h. a second full sync with nothing new, and a third after 100,000 loaded files were
   added to the table's history (watermark and ledger);
j. the everyday incremental run: 5 % of the rows updated and 0.5 % inserted (untimed),
   then ``sync pipeline`` (the inserted rows are deleted again at the end of the run);
k. a pipeline of 50 tables (``--many-tables``) of 1,000 rows (database ``<prefix>_many``):
   the first sync, then a run with nothing new at ``--parallel 4`` (per table);
p. with ``--peers``: dlt and Sling (scripts/bench_peers.py, their own ``.venv-peers``)
   copy the same table into schemas of their own, first sync after f and incremental
   run after j, each checked against the source; f and j against the faster peer;
i. ``--help``.

Prints a table (seconds, reference, ratio, SPEC goal, pass/fail, peak RSS) and
appends it, dated, with the machine and the exact command, to
``docs/benchmarks.md`` (``--no-record``: don't). With ``--repeat N`` every
timing is the median of N interleaved runs (single runs on a shared 2-core
machine vary by 10-20%); ``--pairs M`` runs b and c M times a repetition, each
after its own run of a, their ratios the median of all N × M pairs. Not a test;
``tests/integration/test_bench_script.py`` only checks that it runs.

This file runs the measures; the pieces live beside it: ``scripts/bench_env.py``
(the servers, a measured child process), ``scripts/bench_projects.py`` (the
throwaway configurations), ``scripts/bench_changes.py`` (the everyday change, its
hand-written floor, the peers' runs), ``scripts/bench_report.py`` (the result
table and docs/benchmarks.md), ``scripts/bench_peers.py`` and ``scripts/bench_verify.py``.

Usage: .venv/bin/python scripts/bench.py [--rows 2000000] [--repeat 3] [--pairs 1]
       [--memory-rows 10000000] [--skip-s3] [--no-record] [--prefix bench]
       [--strategy hybrid|id_only] [--reader auto|connectorx|pymysql] [--peers] [--cleanup]
(``--reader pymysql`` compares the fallback reader; this replaces the old
scripts/reader_bench.py.)
MySQL: --mysql-host/--mysql-port/--mysql-user (password: env MYSQL_PWD);
PostgreSQL: --pg-host/--pg-port/--pg-user/--pg-database (password: env PGPASSWORD).
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_changes import change_rows, forget_inserted, incremental_floor, peer_run  # noqa: E402
from bench_env import (  # noqa: E402
    TABLE,
    BenchError,
    Measured,
    Servers,
    child_env,
    ensure_table,
    run_measured,
)
from bench_peers import NAMES as PEER_NAMES  # noqa: E402
from bench_peers import Peers, prepare  # noqa: E402
from bench_projects import (  # noqa: E402
    CHUNK_ROWS,
    HISTORY_FILES,
    ROWS_PER_FILE,
    STRATEGIES,
    SWEEP_CHUNKS,
    Project,
    add_history,
    export_csv,
    local_project,
    many_tables,
    s3_project,
    s3_stage,
)
from bench_report import (  # noqa: E402
    RECORD_FILE,
    machine,
    record,
    render,
    result_rows,
    revision,
    server_versions,
)
from bench_verify import reference_pass, scatter_differences  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the table")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timing (median)")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="b and c runs a repetition, each after its own a (ratios: the median of all pairs)",
    )
    parser.add_argument(
        "--memory-rows",
        type=int,
        default=0,
        help="also the peak RSS of a full sync of this many rows (in <prefix>_mem)",
    )
    parser.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        default="hybrid",
        help="the table's cdc_strategy (hybrid: updated_at, id; id_only: id)",
    )
    parser.add_argument(
        "--reader",
        choices=["auto", "connectorx", "pymysql"],
        default="auto",
        help="sync pipeline --reader (compare the MySQL readers)",
    )
    parser.add_argument("--skip-s3", action="store_true", help="skip the S3 backup (c)")
    parser.add_argument(
        "--many-tables", type=int, default=50, help="tables of the many-table pipeline (k)"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also dlt and Sling, side by side (p; installs .venv-peers when missing)",
    )
    parser.add_argument("--no-record", action="store_true", help="don't append to the docs")
    parser.add_argument(
        "--prefix",
        default="bench",
        help="names: <prefix>_src, _mem, _many (MySQL), <prefix>_dst, _ref, _many_dst (PostgreSQL)",
    )
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-database", default="postgres")
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="drop the MySQL databases and PostgreSQL schemas afterwards",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1 or args.pairs < 1 or args.memory_rows < 0:
        parser.error("--rows, --repeat and --pairs must be at least 1, --memory-rows at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Build, measure, print, record; exit 0 even when goals fail (it is a benchmark)."""
    args = parse_args(argv)
    servers = Servers(
        args.mysql_host,
        args.mysql_port,
        args.mysql_user,
        os.environ.get("MYSQL_PWD", ""),
        args.pg_host,
        args.pg_port,
        args.pg_user,
        args.pg_database,
    )
    src_db, mem_db = f"{args.prefix}_src", f"{args.prefix}_mem"
    many_db, many_dst = f"{args.prefix}_many", f"{args.prefix}_many_dst"
    dst, ref = f"{args.prefix}_dst", f"{args.prefix}_ref"
    table = f"{src_db}.{TABLE}"
    started = dt.datetime.now(dt.UTC)
    measured_revision = revision()  # the tree the children run (others may commit meanwhile)
    print(ensure_table(servers, src_db, args.rows), flush=True)
    # Measure the tool as installed: pip compiles an installed package's bytecode,
    # an editable install does not, and with PYTHONDONTWRITEBYTECODE set every run
    # would compile src/ again (~0.1 s, measured).
    compileall.compile_dir(str(ROOT / "src"), quiet=1)

    sweeps = tuple(f"{kind}{c}" for kind in "bc" for c in SWEEP_CHUNKS)
    kinds: tuple[str, ...] = ("a", "b", "c", *sweeps, "d", "e", "f")
    kinds += ("h", "hh", "j", "jr", "k1", "k2")
    kinds += ("vr", "v", "vk", "v100")
    kinds += tuple(f"p{n}{name}" for n in "12" for name in PEER_NAMES)
    kinds += tuple(f"{k}/a" for k in ("b", "c", *sweeps))  # the a run just before each
    runs: dict[str, list[Measured]] = {k: [] for k in kinds}

    def reference_read(kind: str) -> None:
        """a, run just before each backup run of ``kind``: their ratio is taken per pair, so
        the machine's drift between runs (10-20 % within minutes here) cancels out."""
        measured = run_measured(servers.mysql_command(src_db), keep_output=False)
        runs["a"].append(measured)
        runs[f"{kind}/a"].append(measured)

    work = Path(tempfile.mkdtemp(prefix="s3backup-bench-"))
    csv_path = work / "parcels.csv"

    def backup_runs(server: Any) -> Project:
        """b and c once each (every run after its own a); returns b's project."""
        # b. backup into a fresh local stage (and a fresh target: a new stage
        # next to a ledger that lists the table's files is refused as a lost
        # watermark), each run after a run of a, the reference reader
        servers.fresh_schema(dst)
        backup = local_project(work, "backup", servers, src_db, dst, args)
        reference_read("b")
        runs["b"].append(backup.sync(table, "--backup-only"))
        # b at the chunk sizes operators use, each into a fresh stage and target
        for chunk in SWEEP_CHUNKS:
            servers.fresh_schema(dst)
            swept = local_project(work, "b", servers, src_db, dst, args, (TABLE,), chunk)
            reference_read(f"b{chunk}")
            runs[f"b{chunk}"].append(swept.sync(table, "--backup-only"))
            shutil.rmtree(swept.root, ignore_errors=True)
        if not csv_path.exists():
            exported = export_csv(backup.root / "stage", csv_path)
            if exported != args.rows:
                raise BenchError(f"staged {exported:,} rows, expected {args.rows:,}")
        # c. backup into a fresh bucket on the S3 API server, at the default
        # chunk size and at the ends of the range operators use
        s3_chunks = (("c", CHUNK_ROWS), *((f"c{c}", c) for c in SWEEP_CHUNKS))
        for kind, chunk in s3_chunks if server is not None else ():
            servers.fresh_schema(dst)
            s3, bucket_cm = s3_project(work, server, servers, src_db, dst, args, chunk)
            try:
                reference_read(kind)
                runs[kind].append(s3.sync(table, "--backup-only"))
            finally:
                bucket_cm.__exit__(None, None, None)
        return backup

    peers: Peers | None = None
    try:
        if args.peers:
            peers = prepare(work / "peers", servers.mysql_url(), servers.pg_url())
        with s3_stage(args.skip_s3) as server:
            for n in range(args.repeat):
                print(f"run {n + 1}/{args.repeat}", flush=True)
                for _ in range(args.pairs):
                    backup = backup_runs(server)
                # e. load what b staged into a fresh target schema
                servers.fresh_schema(dst)
                runs["e"].append(backup.sync(table, "--redshift-only"))
                loaded = servers.pg_execute(f'SELECT COUNT(*) FROM "{dst}".{TABLE}')[0][0]
                if loaded != args.rows:
                    raise BenchError(f"loaded {loaded:,} rows, expected {args.rows:,}")
                # d. the reference loader, into a table like the one e created
                servers.fresh_schema(ref)
                servers.pg_execute(
                    f'CREATE TABLE "{ref}".{TABLE} (LIKE "{dst}".{TABLE} INCLUDING ALL)'
                )
                copy = f"\\copy \"{ref}\".{TABLE} FROM '{csv_path.name}' CSV"
                runs["d"].append(run_measured(servers.psql_command(copy), cwd=work))
                # f. full sync, fresh stage and target; h. again, nothing new
                full = local_project(work, "full", servers, src_db, dst, args)
                servers.fresh_schema(dst)
                servers.settle()
                runs["f"].append(full.sync(table))
                runs["h"].append(full.sync(table))
                add_history(full, servers, dst, HISTORY_FILES)
                runs["hh"].append(full.sync(table))
                for name in PEER_NAMES if peers else ():
                    servers.settle()
                    peer = peer_run(peers, servers, name, src_db, args.prefix, first=True)
                    runs[f"p1{name}"].append(peer)
                # each incremental run starts with the servers settled (the change's
                # dirty pages flushed), as the ones after it would
                since = change_rows(servers, src_db, args.rows)
                servers.settle()
                runs["j"].append(full.sync(table))
                servers.settle()
                runs["jr"].append(incremental_floor(servers, work, src_db, ref, since))
                for name in PEER_NAMES if peers else ():
                    servers.settle()
                    peer = peer_run(peers, servers, name, src_db, args.prefix, first=False)
                    runs[f"p2{name}"].append(peer)
                # v. verify of the loaded table: the reference pass, equal, keys only,
                # then with 100 scattered differences (exit 4)
                runs["vr"].append(
                    Measured(
                        reference_pass(servers.mysql_for(src_db), servers.pg, src_db, dst), 0.0
                    )
                )
                runs["v"].append(full.verify(table))
                runs["vk"].append(full.verify(table, "--keys-only"))
                if scatter_differences(servers.pg_execute, dst, args.rows) != min(100, args.rows):
                    raise BenchError("could not make 100 differences")
                runs["v100"].append(full.verify(table, expect=4))
                forget_inserted(servers, src_db, args.rows)
                # k. many small tables: first sync, then nothing new at --parallel 4
                names = many_tables(servers, many_db, args.many_tables)
                servers.fresh_schema(many_dst)
                many = local_project(work, "many", servers, many_db, many_dst, args, names)
                runs["k1"].append(many.sync_all())
                runs["k2"].append(many.sync_all("--parallel", "4"))
                shutil.rmtree(many.root, ignore_errors=True)
                shutil.rmtree(backup.root, ignore_errors=True)
                shutil.rmtree(full.root, ignore_errors=True)
        # i. --help: a warm-up (bytecode cache), then the median of 3
        helper = Project(work / "help", child_env())
        run_measured(helper.command("--help"))
        helps = [run_measured(helper.command("--help")) for _ in range(3)]
        memory: Measured | None = None
        memory_again: list[Measured] = []
        if args.memory_rows:
            print(ensure_table(servers, mem_db, args.memory_rows), flush=True)
            big = local_project(work, "memory", servers, mem_db, dst, args)
            servers.fresh_schema(dst)
            memory = big.sync(f"{mem_db}.{TABLE}")
            memory_again.append(big.sync(f"{mem_db}.{TABLE}"))  # h at that size
    finally:
        shutil.rmtree(work, ignore_errors=True)
        servers.pg_execute(f'DROP SCHEMA IF EXISTS "{ref}" CASCADE')
        if args.cleanup:
            servers.pg_execute(f'DROP SCHEMA IF EXISTS "{dst}" CASCADE')
            servers.pg_execute(f'DROP SCHEMA IF EXISTS "{many_dst}" CASCADE')
            for name in PEER_NAMES if peers else ():
                for schema in peers.schemas(name, args.prefix):
                    servers.pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn = servers.mysql()
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{src_db}`")
                cur.execute(f"DROP DATABASE IF EXISTS `{mem_db}`")
                cur.execute(f"DROP DATABASE IF EXISTS `{many_db}`")
            conn.close()

    rows = result_rows(runs, args, helps, memory, memory_again, peers)
    table_text = render(rows)
    command = shlex.join([".venv/bin/python", "scripts/bench.py", *(argv or sys.argv[1:])])
    pairs = f" (b and c: of {args.repeat * args.pairs} pairs)" if args.pairs > 1 else ""
    header = (
        f"## {started:%Y-%m-%d %H:%M} UTC — {args.rows:,} rows, median of {args.repeat}"
        f"{pairs}\n\n"
        f"- machine: {machine()}\n"
        f"- servers: {server_versions(servers)} (loopback)\n"
        f"- revision: {measured_revision}\n"
        f"- command: `{command}`\n"
        f"- config: {args.strategy}, reader {args.reader}, chunks of {CHUNK_ROWS:,} rows, "
        f"{ROWS_PER_FILE:,} rows per file, snappy\n"
    )
    if peers is not None:
        header += f"- peers: {peers.versions()}\n"
    print()
    print(header)
    print(table_text)
    failed = [r.measure for r in rows if r.passed is False]
    print(f"\n{len(failed)} goal(s) missed" + (": " + "; ".join(failed) if failed else ""))
    if not args.no_record:
        record(header + "\n" + table_text + "\n")
        print(f"recorded in {RECORD_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
