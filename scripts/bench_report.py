"""The benchmark's result table, its header facts and docs/benchmarks.md (scripts/bench.py)."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from bench_env import ROOT, Measured, Servers
from bench_peers import NAMES as PEER_NAMES
from bench_peers import Peers
from bench_projects import HISTORY_FILES, MANY_ROWS, SWEEP_CHUNKS
from bench_verify import DIFFERENCES

MEMORY_LIMIT_MB = 300.0
FLAT_TOLERANCE = 0.10  # "the same for 2M and 10M": within 10 %
RECORD_FILE = ROOT / "docs" / "benchmarks.md"


@dataclass
class Row:
    """One line of the result table."""

    measure: str
    value: float | None  # seconds (or MB for memory rows)
    reference: float | None = None
    ratio: float | None = None
    goal: str = ""
    passed: bool | None = None
    peak_mb: float | None = None
    unit: str = "s"


def timed_row(
    measure: str,
    runs: list[Measured],
    reference: float | None,
    limit: float | None,
    goal: str,
    *,
    absolute: float | None = None,
) -> Row:
    """A row of median seconds against a reference (ratio limit) or an absolute limit."""
    seconds = statistics.median(r.seconds for r in runs)
    peak = max(r.peak_mb for r in runs)
    ratio = seconds / reference if reference else None
    passed: bool | None = None
    if limit is not None and ratio is not None:
        passed = ratio <= limit
    if absolute is not None:
        passed = seconds <= absolute
    return Row(measure, seconds, reference, ratio, goal, passed, peak)


def paired_row(
    measure: str, runs: list[Measured], references: list[Measured], limit: float, goal: str
) -> Row:
    """A row whose ratio is the median of each run over the reference run just before it
    (reference: the median of those), so that the machine's drift between runs cancels."""
    reference = statistics.median(r.seconds for r in references)
    row = timed_row(measure, runs, reference, None, goal)
    pairs = zip(runs, references, strict=True)
    row.ratio = statistics.median(run.seconds / ref.seconds for run, ref in pairs)
    row.passed = row.ratio <= limit
    return row


def per_table_row(measure: str, runs: list[Measured], tables: int) -> Row:
    """Median seconds of a many-table run as milliseconds a table, against 40 ms."""
    per_table = statistics.median(r.seconds for r in runs) / tables * 1000
    peak = max(r.peak_mb for r in runs)
    return Row(measure, per_table, goal="≤ 40 ms", passed=per_table <= 40, peak_mb=peak, unit="ms")


def peer_rows(runs: dict[str, list[Measured]], peers: Peers | None) -> list[Row]:
    """p: each peer's two runs, then f and j against the faster peer (issue #13's goals)."""
    if peers is None:
        return [Row("p. dlt and Sling side by side", None, goal="skipped (without --peers)")]
    rows: list[Row] = []
    for name in PEER_NAMES:
        rows.append(timed_row(f"p. {name}: first full sync", runs[f"p1{name}"], None, None, ""))
        rows.append(
            timed_row(f"p. {name}: the j incremental run", runs[f"p2{name}"], None, None, "")
        )
    for run, ours, what, faster in (
        ("1", "f", "full sync", 3.0),
        ("2", "j", "incremental run", 1.6),
    ):
        best = min(
            PEER_NAMES, key=lambda n: statistics.median(r.seconds for r in runs[f"p{run}{n}"])
        )
        reference = statistics.median(r.seconds for r in runs[f"p{run}{best}"])
        measure = f"p. {ours}. {what} against the faster peer ({best})"
        goal = f"≥ {faster}× faster (≤ {1 / faster:.2f}×)"
        rows.append(timed_row(measure, runs[ours], reference, 1 / faster, goal))
    return rows


def render(rows: list[Row]) -> str:
    """The result table as Markdown."""
    lines = [
        "| measure | value | reference | ratio | goal | result | peak RSS |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        value = "—" if r.value is None else f"{r.value:.2f} {r.unit}"
        ref = "" if r.reference is None else f"{r.reference:.2f} s"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}×"
        result = {True: "pass", False: "**FAIL**", None: "—"}[r.passed]
        peak = "" if r.peak_mb is None else f"{r.peak_mb:.0f} MB"
        lines.append(f"| {r.measure} | {value} | {ref} | {ratio} | {r.goal} | {result} | {peak} |")
    return "\n".join(lines)


def machine() -> str:
    """nproc, RAM, CPU model, server and library versions."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "? GiB"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    import connectorx
    import pyarrow

    return (
        f"{os.cpu_count()} × {cpu}, {ram} RAM, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, pyarrow {pyarrow.__version__}, "
        f"connectorx {connectorx.__version__}, psycopg2 {psycopg2.__version__.split()[0]}"
    )


def server_versions(servers: Servers) -> str:
    conn = servers.mysql()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            mysql_version = cur.fetchone()[0]
    finally:
        conn.close()
    pg_version = servers.pg_execute("SHOW server_version")[0][0]
    return f"MariaDB {mysql_version}, PostgreSQL {pg_version}"


def revision() -> str:
    """The checked-out commit (read-only git), with ``+dirty`` for local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def record(text: str) -> None:
    """Append a block to docs/benchmarks.md (created with a heading if absent)."""
    RECORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not RECORD_FILE.exists():
        RECORD_FILE.write_text(
            "# Benchmarks\n\nAppended by `scripts/bench.py` (SPEC §10); newest last. "
            "Single machine, loopback servers: read the ratios, not the seconds.\n"
        )
    with RECORD_FILE.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text.rstrip() + "\n")


def result_rows(
    runs: dict[str, list[Measured]],
    args: Any,
    helps: list[Measured],
    memory: Measured | None,
    memory_again: list[Measured],
    peers: Peers | None,
) -> list[Row]:
    """The result table's rows from every run, with each measure's goal."""
    a = statistics.median(r.seconds for r in runs["a"])
    d = statistics.median(r.seconds for r in runs["d"])
    goal = "≤ 1.3× a (per pair)"
    rows = [timed_row("a. `mysql --quick` > /dev/null (reference)", runs["a"], None, None, "")]
    for kind, what in (("b", "local stage"), ("c", "S3 API (moto)")):
        sizes = [(kind, "")] + [(f"{kind}{c}", f", chunks of {c:,}") for c in SWEEP_CHUNKS]
        for key, chunks in sizes:
            if runs[key]:
                measure = f"{kind}. backup stage → {what}{chunks}"
                rows.append(paired_row(measure, runs[key], runs[f"{key}/a"], 1.3, goal))
    if not runs["c"]:
        rows.append(Row("c. backup stage → S3 API (moto)", None, goal="skipped (--skip-s3)"))
    rows += [
        timed_row("d. `psql \\copy` of the CSV (reference)", runs["d"], None, None, ""),
        timed_row("e. load stage (`--redshift-only`)", runs["e"], d, 1.2, "≤ 1.2× d"),
        timed_row("f. full `sync pipeline`", runs["f"], a + d, 1.15, "≤ 1.15× (a + d)"),
    ]
    full_peak = max(r.peak_mb for r in runs["f"])
    rows.append(
        Row(
            f"g. peak RSS of f ({args.rows:,} rows)",
            full_peak,
            goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB",
            passed=full_peak <= MEMORY_LIMIT_MB,
            unit="MB",
        )
    )
    if memory is not None:
        flat = abs(memory.peak_mb - full_peak) <= FLAT_TOLERANCE * full_peak
        rows.append(
            Row(
                f"g. peak RSS, full sync of {args.memory_rows:,} rows ({memory.seconds:.1f} s)",
                memory.peak_mb,
                goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB, within {FLAT_TOLERANCE:.0%} of g",
                passed=memory.peak_mb <= MEMORY_LIMIT_MB and flat,
                unit="MB",
            )
        )
    rows.append(
        timed_row("h. incremental run, nothing new", runs["h"], None, None, "≤ 1 s", absolute=1.0)
    )
    rows.append(
        timed_row(
            f"h. nothing new, {HISTORY_FILES:,} files of history",
            runs["hh"],
            None,
            None,
            "≤ 1 s",
            absolute=1.0,
        )
    )
    if memory_again:
        rows.append(
            timed_row(
                f"h. incremental run, nothing new, {args.memory_rows:,} rows",
                memory_again,
                None,
                None,
                "≤ 1 s",
                absolute=1.0,
            )
        )
    rows += [
        timed_row("i. `--help`", helps, None, None, "≤ 0.5 s", absolute=0.5),
        timed_row(
            "j. by hand: `mysql` reads the changed rows, `psql` \\copy + DELETE … USING + INSERT "
            "(reference)",
            runs["jr"],
            None,
            None,
            "",
        ),
        timed_row(
            "j. incremental run: 5 % updated + 0.5 % inserted",
            runs["j"],
            statistics.median(r.seconds for r in runs["jr"]),
            1.0,
            "≤ 1.0× the hand floor",
        ),
        timed_row(
            f"k. first sync, {args.many_tables} tables of {MANY_ROWS:,} rows",
            runs["k1"],
            None,
            None,
            "≤ 5 s",
            absolute=5.0,
        ),
        per_table_row(
            f"k. nothing new, {args.many_tables} tables, `--parallel 4`, per table",
            runs["k2"],
            args.many_tables,
        ),
    ]
    rows += peer_rows(runs, peers)
    vr = statistics.median(r.seconds for r in runs["vr"])
    v = statistics.median(r.seconds for r in runs["v"])
    verify_peak = max(r.peak_mb for r in runs["v"] + runs["vk"] + runs["v100"])
    rows += [
        timed_row(
            "v. COUNT(*), SUM(row hash), both sides at once (reference)",
            runs["vr"],
            None,
            None,
            "",
        ),
        timed_row("v. `verify`, equal table", runs["v"], vr, 1.5, "≤ 1.5× reference"),
        timed_row("v. `verify --keys-only` (--detect-deletes)", runs["vk"], vr, None, ""),
        timed_row(
            f"v. `verify`, {DIFFERENCES} scattered differences",
            runs["v100"],
            v,
            2.0,
            "≤ 2× equal",
        ),
        Row(
            "v. peak RSS of verify",
            verify_peak,
            goal=f"≤ {MEMORY_LIMIT_MB:.0f} MB",
            passed=verify_peak <= MEMORY_LIMIT_MB,
            unit="MB",
        ),
    ]
    return rows
