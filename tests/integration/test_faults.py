"""Faults of the services (#12): each ends with the right exit code and one Error: line,
and a plain re-run makes the target equal the source."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest

from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.fault_proxy import fault_proxy
from tests.support.pipelines import ROOT, Project, make_project
from tests.support.sshd import SshdServer

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def parcels(db: MySQLDatabase, rows: int) -> str:
    db.execute(
        "CREATE TABLE parcels (id INT PRIMARY KEY, note VARCHAR(200), updated_at DATETIME(6) "
        "NOT NULL)"
    )
    db.execute(
        f"INSERT INTO parcels SELECT seq, REPEAT('n', 150), '2025-01-01' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{rows}"
    )
    return f"{db.name}.parcels"


def start(project: Project, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    env.update(project.env)
    command = [sys.executable, "-m", "src.cli.main", "--config-dir", str(project.config_dir)]
    return subprocess.Popen(
        [*command, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def when_running(
    pg: PgSchema,
    pattern: str,
    select: str = "pid",
    then: Callable[[], object] | None = None,
    timeout: float = 60,
) -> threading.Thread:
    """A thread that waits until the tool runs a statement like ``pattern``, then acts.

    ``select`` is evaluated on the tool's backend rows (``pg_terminate_backend(pid)``
    kills them); ``then`` is called once they were seen.
    """

    def watch() -> None:
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database)
        conn.autocommit = True
        deadline = time.monotonic() + timeout
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    f"SELECT {select} FROM pg_stat_activity "
                    "WHERE application_name = 's3-redshift-backup' AND query ILIKE %s",
                    (pattern,),
                )
                if cur.fetchall():
                    if then is not None:
                        then()
                    break
                time.sleep(0.01)
        conn.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def terminate_when(pg: PgSchema, pattern: str) -> threading.Thread:
    """A thread killing the tool's PostgreSQL backend once it runs a statement like ``pattern``."""
    return when_running(pg, pattern, select="pg_terminate_backend(pid)")


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_target_connection_cut_during_copy_is_retried_on_a_new_connection(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 300_000)
    cfg = HYBRID | {"processing": {"retries": FAST_RETRIES}}
    project = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    watcher = terminate_when(pg, "COPY%")
    run = start(project, "sync", "pipeline", "-p", "p", "--redshift-only", "--json-output", "-")
    out, err = run.communicate(timeout=300)
    watcher.join()
    assert run.returncode == 0, err
    assert "load retried" in err and "Traceback" not in err, err
    # psycopg2 prints the terminated COPY's error itself (PyErr_Print): kept off stderr.
    assert "SystemError" not in err and "AdminShutdown" not in err, err
    assert json.loads(out)["table_results"][table]["retries"] == 1
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 300_000
    ledger = pg.execute("SELECT COUNT(*), SUM(rows) FROM s3_backup_load_ledger")
    assert ledger == [(len(project.watermark(table)["processed_s3_files"]), 300_000)]


def test_target_gone_for_good_during_a_load_exits_2_naming_the_server(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 300_000)
    cfg = HYBRID | {"processing": {"retries": FAST_RETRIES}}
    with fault_proxy(pg.host, pg.port) as proxy:
        project = make_project(
            tmp_path, mysql_db, {table: cfg}, pg=dataclasses.replace(pg, port=proxy.port)
        )
        project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
        proxy.refuse_after_reset = True  # the server stays unreachable after the cut
        cut = when_running(pg, "COPY%", then=proxy.reset_all)
        result = project.cli("sync", "pipeline", "-p", "p", "--redshift-only", "--json-output", "-")
        cut.join()
    # The cut load is retried; the server then refuses every new connection: exit 2.
    assert result.returncode == 2, result.stderr
    (line,) = errors(result.stderr)
    assert f"127.0.0.1:{proxy.port}" in line and "gave up after 3 retries" in line, line
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["table_results"][table]["retries"] == 3
    assert pg.execute("SELECT COUNT(*) FROM parcels") == [(0,)]  # nothing committed
    again = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)  # the server is back
    assert again.cli("sync", "pipeline", "-p", "p").returncode == 0
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 300_000


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs (root): {mounted.stderr.decode().strip()}")


def test_stage_disk_full_is_a_stage_error_and_leaves_no_partial_file(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    mysql_db.execute("CREATE TABLE noise (id INT PRIMARY KEY, v VARCHAR(100), updated_at DATETIME)")
    mysql_db.execute(
        "INSERT INTO noise SELECT seq, CONCAT(MD5(seq), MD5(-seq), MD5(seq * 7)), "
        "'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_40000"
    )
    table = f"{mysql_db.name}.noise"
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    _mount_tmpfs(project.stage_dir, "1m")
    try:
        result = project.cli("sync", "pipeline", "-p", "p")
        assert result.returncode == 5, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = errors(result.stderr)
        assert str(project.stage_dir) in line and "No space left on device" in line, line
        leftovers = [p.name for p in project.stage_dir.rglob(".tmp-*")]
        assert leftovers == []
        watermark = project.stage_dir / "watermarks"
        documents = list(watermark.rglob("*.json")) if watermark.exists() else []
        for document in documents:  # no file the stage could not hold is recorded
            for uri in __import__("json").loads(document.read_text())["backup_s3_files"]:
                assert Path(uri).exists(), uri
        subprocess.run(["mount", "-o", "remount,size=64m", str(project.stage_dir)], check=True)
        again = project.cli("sync", "pipeline", "-p", "p")
        assert again.returncode == 0, again.stderr
        count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM noise")[0]
        assert count == distinct == 40000
    finally:
        subprocess.run(["umount", "-l", str(project.stage_dir)], capture_output=True)


FAST_RETRIES = {"attempts": 3, "initial_wait_seconds": 0.2, "max_wait_seconds": 1}


def retrying() -> dict[str, object]:
    """The table config of the read-cut tests: 50,000-row chunks, quick retries."""
    return HYBRID | {"processing": {"batch_size": 50_000, "retries": FAST_RETRIES}}


def proxied(
    root: Path, db: MySQLDatabase, pg: PgSchema, tables: dict[str, dict[str, object]], port: int
) -> Project:
    """A project whose MySQL source is reached through the fault proxy on ``port``."""
    return make_project(root, db, tables, pg=pg, source_extra={"port": port})


@pytest.mark.parametrize("reader", ["connectorx", "pymysql"])
def test_mysql_read_cut_mid_chunk_resumes_without_gap_or_repeat(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, reader: str
) -> None:
    table, cfg = parcels(mysql_db, 200_000), retrying()
    with fault_proxy(mysql_db.host, mysql_db.port) as proxy:
        project = proxied(tmp_path, mysql_db, pg, {table: cfg}, proxy.port)
        proxy.reset_after(12_000_000)  # inside the second 50,000-row chunk (~8.5 MB each)
        result = project.cli(
            "sync", "pipeline", "-p", "p", "--backup-only", "--reader", reader,
            "--json-output", "-",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert proxy.resets == 1
    report = json.loads(result.stdout)
    assert report["table_results"][table]["retries"] == 1
    staged = project.staged_table(table)
    ids = staged.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 200_000  # nothing skipped, nothing staged twice
    project.cli("sync", "pipeline", "-p", "p", "--redshift-only", check=True)
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 200_000


def test_mysql_gone_for_good_exits_2_after_the_retries(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table, cfg = parcels(mysql_db, 200_000), retrying()
    with fault_proxy(mysql_db.host, mysql_db.port) as proxy:
        project = proxied(tmp_path, mysql_db, pg, {table: cfg}, proxy.port)
        proxy.reset_after(12_000_000)
        proxy.refuse_after_reset = True  # the server stays unreachable
        result = project.cli("sync", "pipeline", "-p", "p", "--json-output", "-")
    assert result.returncode == 2, result.stderr
    (line,) = errors(result.stderr)
    assert f"127.0.0.1:{proxy.port}" in line and "after 3 retries" in line, line
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["table_results"][table]["retries"] == 3
    assert report["table_results"][table]["rows_extracted"] >= 50_000  # what was recorded
    again = make_project(tmp_path, mysql_db, {table: cfg}, pg=pg)  # the server is back
    assert again.cli("sync", "pipeline", "-p", "p").returncode == 0
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 200_000


def test_scratch_files_of_a_killed_run_are_removed_by_the_next(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    import tempfile

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = Path(tempfile.gettempdir()) / f"s3backup-{int(gone.stdout)}-leftover"
    live = Path(tempfile.gettempdir()) / f"s3backup-{os.getpid()}-in-use"
    for path in (dead, live):
        path.mkdir(exist_ok=True)
        (path / "000001.parquet").write_bytes(b"PAR1 half a file")
    try:
        table = parcels(mysql_db, 100)
        project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
        project.cli("sync", "pipeline", "-p", "p", check=True)
        assert not dead.exists()  # its process is gone
        assert (live / "000001.parquet").exists()  # a live process's scratch is left alone
    finally:
        import shutil

        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def test_temp_files_of_killed_stage_writes_are_removed(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    table = parcels(mysql_db, 100)
    project = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)
    project.cli("sync", "pipeline", "-p", "p", check=True)
    data_dir = next(p.parent for p in project.stage_dir.rglob("*.parquet"))
    mine = data_dir / ".tmp-killed-upload"  # the table's own: its lock is held
    old = project.stage_dir / "watermarks" / "v2" / ".tmp-killed-watermark"
    fresh = project.stage_dir / "watermarks" / "v2" / ".tmp-another-tables-write"
    for path in (mine, old, fresh):
        path.write_bytes(b"half")
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    project.cli("sync", "pipeline", "-p", "p", check=True)
    assert not mine.exists() and not old.exists()
    assert fresh.exists()  # another table's write may be going on now


@pytest.mark.parametrize("reader", ["connectorx", "pymysql"])
def test_ssh_tunnel_dropped_mid_read_is_reopened_and_the_read_resumes(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, sshd: SshdServer, reader: str
) -> None:
    table, cfg = parcels(mysql_db, 200_000), retrying()
    with fault_proxy(sshd.host, sshd.port) as proxy:
        known = tmp_path / "known_hosts"
        line = sshd.known_hosts_path.read_text().split(maxsplit=1)[1]
        known.write_text(f"[127.0.0.1]:{proxy.port} {line}")
        tunnel = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": proxy.port,
            "username": sshd.user,
            "private_key_path": str(sshd.private_key_path),
            "known_hosts": str(known),
        }
        project = make_project(
            tmp_path, mysql_db, {table: cfg}, pg=pg, source_extra={"ssh_tunnel": tunnel}
        )
        proxy.reset_after(12_000_000)  # the SSH session carrying the second chunk
        result = project.cli(
            "sync", "pipeline", "-p", "p", "--reader", reader, "--json-output", "-"
        )
        assert result.returncode == 0, result.stderr
        assert proxy.resets == 1 and proxy.connections >= 2  # the tunnel was opened again
    assert json.loads(result.stdout)["table_results"][table]["retries"] >= 1
    count, distinct = pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM parcels")[0]
    assert count == distinct == 200_000
