"""``sync pipeline`` exit codes, `Error:` lines, run report, locks (SPEC §9, issue #5)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from src.core.stage import LocalStage
from src.core.table_lock import TableLock
from src.utils.stage_keys import lock_key
from tests.support.databases import MySQLDatabase, PgSchema, closed_port
from tests.support.pipelines import ROOT, SCOPE, Project, make_project
from tests.support.s3_server import S3Bucket

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
SCHEMA = json.loads((ROOT / "docs" / "run_report.schema.json").read_text())


def orders(db: MySQLDatabase, name: str = "orders", rows: int = 500) -> str:
    db.execute(
        f"CREATE TABLE {name} (id INT PRIMARY KEY, note VARCHAR(20), updated_at DATETIME(6) "
        "NOT NULL)"
    )
    db.execute(
        f"INSERT INTO {name} SELECT seq, CONCAT('n', seq), '2025-01-01' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{rows}"
    )
    return f"{db.name}.{name}"


def last_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def project(tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema) -> Project:
    table = orders(mysql_db)
    return make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg)


def report_of(result: subprocess.CompletedProcess[str]) -> dict:
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


def test_success_report_counts_this_run_only(project: Project, mysql_db: MySQLDatabase) -> None:
    table = f"{mysql_db.name}.orders"
    first = project.cli("sync", "pipeline", "-p", "p", "--json-output", "-")
    assert first.returncode == 0, first.stderr
    report = report_of(first)
    result = report["table_results"][table]
    assert (report["status"], report["exit_code"]) == ("success", 0)
    assert result["rows_processed"] == result["rows_extracted"] == result["rows_loaded"] == 500
    assert result["files_created"] == 1
    assert result["watermark_before"] == {"last_timestamp": None, "last_id": None}
    assert result["watermark_after"]["last_id"] == 500
    assert 0 < result["duration_seconds"] <= report["duration_seconds"] + 0.01
    mysql_db.execute("INSERT INTO orders VALUES (501, 'x', '2030-01-01')")
    second = report_of(project.cli("sync", "pipeline", "-p", "p", "--json-output", "-"))
    again = second["table_results"][table]
    assert again["rows_extracted"] == 1 and again["files_created"] == 1
    assert second["summary"]["total_rows_processed"] == 1


def test_report_file_is_written_for_a_failed_run(project: Project, tmp_path: Path) -> None:
    broken = make_project(
        tmp_path / "broken",
        project.db,
        {f"{project.db.name}.orders": HYBRID},
        source_extra={"port": closed_port()},
    )
    path = tmp_path / "out" / "report.json"
    result = broken.cli("sync", "pipeline", "-p", "p", "--json-output", str(path))
    assert result.returncode == 2
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert (report["status"], report["exit_code"]) == ("failed", 2)
    failed = report["table_results"][f"{project.db.name}.orders"]
    assert failed["error_type"] == "SourceConnectionError"
    assert "Can't connect" in failed["error_message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope"], "Error: unknown pipeline 'nope' (known: p)"),
        (["-p", "p", "-t", "x.y"], "Error: table 'x.y' is not in pipeline 'p'"),
        (
            ["-p", "p", "--backup-only", "--redshift-only"],
            "Error: --backup-only and --redshift-only are mutually exclusive",
        ),
        (["-p", "p", "--limit", "0"], "Error: Invalid value for '--limit'"),
    ],
)
def test_usage_and_config_errors_exit_1(project: Project, args: list[str], message: str) -> None:
    result = project.cli("sync", "pipeline", *args)
    assert result.returncode == 1
    assert last_error(result).startswith(message)


def test_mysql_unreachable_exits_2(project: Project, tmp_path: Path) -> None:
    broken = make_project(
        tmp_path / "b",
        project.db,
        {f"{project.db.name}.orders": HYBRID},
        source_extra={"port": closed_port()},
    )
    result = broken.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 2
    assert "✗" in result.stderr and "Can't connect to MySQL" in result.stderr


def test_s3_unreachable_exits_5(project: Project, tmp_path: Path) -> None:
    config = project.config_dir / "connections.yml"
    text = config.read_text().replace(
        f"local_path: {project.stage_dir}",
        f"bucket_name: nowhere\n    endpoint_url: http://127.0.0.1:{closed_port()}\n"
        "    access_key_id: x\n    secret_access_key: y\n    region: us-east-1",
    )
    config.write_text(text)
    result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 5, result.stderr
    assert "cannot connect" in result.stderr


def test_target_load_failure_exits_6(project: Project, pg: PgSchema) -> None:
    pg.execute("CREATE TABLE orders (id INT PRIMARY KEY, note INTEGER, updated_at TIMESTAMP)")
    result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 6
    assert "orders.note is INTEGER" in result.stderr
    wm = project.watermark(f"{project.db.name}.orders")
    assert wm["redshift_state"]["status"] == "failed"
    assert len(wm["backup_s3_files"]) == 1  # staged data is kept for the next load


def test_lock_held_exits_7_naming_the_holder(project: Project) -> None:
    table = f"{project.db.name}.orders"
    schema, name = table.split(".", 1)
    stage = LocalStage("local", str(project.stage_dir))
    with TableLock(stage, lock_key(SCOPE, schema, name, "pg"), owner="sync_holder", table=table):
        result = project.cli("sync", "pipeline", "-p", "p")
    assert result.returncode == 7
    assert "locked by another run: sync_holder" in result.stderr


def test_one_of_two_tables_failing_exits_3(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    good = orders(mysql_db)
    missing = f"{mysql_db.name}.not_there"
    proj = make_project(tmp_path, mysql_db, {good: HYBRID, missing: HYBRID}, pg=pg)
    result = proj.cli("sync", "pipeline", "-p", "p", "--json-output", "-", "--parallel", "2")
    assert result.returncode == 3
    report = report_of(result)
    assert report["status"] == "partial_success"
    assert report["table_results"][good]["status"] == "success"
    assert report["table_results"][missing]["status"] == "failed"
    assert "not_there" in report["table_results"][missing]["error_message"]
    assert pg.execute("SELECT COUNT(*) FROM orders") == [(500,)]


def test_two_concurrent_runs_exactly_one_proceeds(project: Project, pg: PgSchema) -> None:
    project.db.execute(
        "INSERT INTO orders SELECT 500 + seq, 'more', '2026-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_200000"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    cmd = [
        sys.executable,
        "-m",
        "src.cli.main",
        "--config-dir",
        str(project.config_dir),
        "sync",
        "pipeline",
        "-p",
        "p",
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errors = [p.stderr.read() if p.stderr else "" for p in procs]
    assert codes == [0, 7], errors
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(200500, 200500)]


def test_dry_run_changes_nothing(project: Project, pg: PgSchema) -> None:
    table = f"{project.db.name}.orders"
    result = project.cli("sync", "pipeline", "-p", "p", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "strategy: hybrid (first run, reading in primary-key order)" in out
    db = project.db.name
    assert (
        f"`{db}`.`orders`.`updated_at` <= '2025-01-01 00:08:20' ORDER BY `{db}`.`orders`.`id` "
        "LIMIT 100000" in out
    )
    # The pass walks the table's own primary key: on its index, never a filesort.
    assert f"FROM `{db}`.`orders` FORCE INDEX (PRIMARY) WHERE" in out
    assert "estimated rows:" in out
    assert "CREATE TABLE IF NOT EXISTS" in out
    assert not project.stage_dir.exists() or not any(project.stage_dir.rglob("*"))
    assert pg.execute(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (pg.name,)
    ) == [(0,)]
    # After a backup, the dry run lists the files it would load, and still changes nothing.
    project.cli("sync", "pipeline", "-p", "p", "--backup-only", check=True)
    before = project.watermark(table)
    planned = project.cli("sync", "pipeline", "-p", "p", "--dry-run", "--redshift-only").stdout
    assert before["backup_s3_files"][0] in planned
    assert project.watermark(table) == before


def test_completion_markers_in_a_bucket(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    good = orders(mysql_db)
    missing = f"{mysql_db.name}.not_there"
    proj = make_project(
        tmp_path, mysql_db, {good: HYBRID, missing: HYBRID}, pg=pg, bucket=s3_bucket
    )
    result = proj.cli("sync", "pipeline", "-p", "p", "--s3-completion-bucket", s3_bucket.name)
    assert result.returncode == 3
    keys = s3_bucket.keys("completion_markers/")
    day = keys[0].split("/")[1]
    assert sorted(k.split("/", 2)[2] for k in keys) == sorted(
        [
            f"sync_{mysql_db.name}_orders_SUCCESS",
            f"sync_{mysql_db.name}_not_there_FAILED",
            "pipeline_p_FAILED",
        ]
    )
    body = s3_bucket.client.get_object(
        Bucket=s3_bucket.name, Key=f"completion_markers/{day}/pipeline_p_FAILED"
    )["Body"].read()
    assert json.loads(body)["status"] == "partial_success"


def test_malformed_redshift_keys_exit_1(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, s3_bucket: S3Bucket
) -> None:
    table = orders(mysql_db)
    proj = make_project(tmp_path, mysql_db, {table: HYBRID}, pg=pg, bucket=s3_bucket)
    path = proj.config_dir / "connections.yml"
    path.write_text(path.read_text().replace("type: postgres", "type: redshift\n      iam_role: "
                                             "arn:aws:iam::123456789012:role/x"))  # fmt: skip
    (proj.root / "redshift_keys.json").write_text("{not json")
    result = proj.cli("sync", "pipeline", "-p", "p", "--redshift-only")
    assert result.returncode == 1
    assert "redshift_keys.json: not valid JSON" in result.stderr


def _sync_loading(project: Project, modules: tuple[str, ...]) -> tuple[str, list[str]]:
    """``sync pipeline -p p`` in a fresh interpreter: its stderr, and which of ``modules``
    it had imported when it exited."""
    code = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: print('loaded:', [m for m in {modules!r} if m in sys.modules], "
        "file=sys.stderr))\n"
        f"sys.argv = ['s3-backup', '--config-dir', {str(project.config_dir)!r}, "
        "'sync', 'pipeline', '-p', 'p']\n"
        "runpy.run_module('src.cli.main', run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env | project.env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = result.stderr.rsplit("loaded: ", 1)[1].strip()
    return result.stderr, ast.literal_eval(loaded)


def test_a_run_off_a_terminal_never_loads_rich(project: Project, pg: PgSchema) -> None:
    """Guards the lazy rich: logging_setup hides it from structlog while structlog loads,
    and the progress bar imports it only to draw (25-60 ms of every run's start)."""
    stderr, loaded = _sync_loading(project, ("rich", "pyarrow.compute"))
    assert "rows loaded" in stderr and loaded == ["pyarrow.compute"]  # rows were converted


def test_a_run_with_nothing_new_never_loads_the_converter(project: Project, pg: PgSchema) -> None:
    """Guards the lazy pyarrow.compute (~45 ms at import): only rows need converting
    (mysql_reader's BatchStream imports the converter on the first rows)."""
    project.cli("sync", "pipeline", "-p", "p", check=True)
    stderr, loaded = _sync_loading(project, ("pyarrow.compute", "src.backup.arrow_convert"))
    assert "0 rows extracted" in stderr and loaded == []
