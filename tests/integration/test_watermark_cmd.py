"""``watermark get|set|reset|list`` through the real CLI on synced tables (SPEC §4, §8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_load_stage import HYBRID, create_orders
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import ROOT, SCOPE, Project, make_project


def cli_with_input(project: Project, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``Project.cli`` with ``stdin`` fed to the command (for confirmation prompts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "AWS_"))}
    env.update(project.env)
    return subprocess.run(
        [sys.executable, "-m", "src.cli.main", "--config-dir", str(project.config_dir), *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def hold_lock(project: Project, table: str, owner: str = "sync_test_holder") -> Any:
    """The table's TableLock, as a running sync would hold it (use as a context manager)."""
    from src.config.configuration_manager import ConfigurationManager
    from src.core.table_run import open_table_run

    app = ConfigurationManager(str(project.config_dir)).load().app
    return open_table_run(app, app.pipelines["p"], table, owner).lock


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error:`` line a failing command prints (and nothing else on stderr)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def make_tables(db: MySQLDatabase) -> dict[str, dict[str, Any]]:
    orders = create_orders(db, 1500)
    customers = create_orders(db, 300, table="customers")
    events = create_orders(db, 200, table="events")
    notes = create_orders(db, 5, table="notes")
    return {
        orders: HYBRID,
        customers: {"cdc_strategy": "id_only", "cdc_id_column": "id"},
        events: {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"},
        notes: HYBRID,
    }


def test_get_set_reset_list_on_synced_tables(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema
) -> None:
    tables = make_tables(mysql_db)
    orders, customers, events, notes = list(tables)
    project = make_project(tmp_path, mysql_db, tables, pg=pg, backup_batch_size=1000)
    project.cli("sync", "pipeline", "-p", "p", "-t", orders, "-t", customers, check=True)
    project.backup(events)

    # get: SPEC §4's layout, exactly; -p auto-detected from the table.
    got = project.cli("watermark", "get", "-t", orders, check=True)
    assert got.stdout.splitlines() == [
        f"📊 Watermark for {SCOPE}:{orders} (target pg)",
        "MySQL → S3 Backup Stage",
        "  Status: success",
        "  Rows Extracted This Session: 1,500",
        "  Total Rows Extracted (Cumulative): 1,500",
        "  S3 Files Created: 2",
        "  Last Data Timestamp: 2025-01-01 00:25:00.000000",
        "  Last Processed ID: 1,500",
        "S3 → Redshift Loading Stage",
        "  Status: success",
        "  Rows Loaded This Session: 1,500",
        "  Total Rows Loaded (Cumulative): 1,500",
        "📦 Backup S3 Files (awaiting Redshift load): 0",
        "✅ Processed S3 Files (loaded to Redshift): 2",
        "Next incremental backup starts after: 2025-01-01 00:25:00.000000 / id 1500",
    ]
    wm = project.watermark(orders)
    shown = project.cli("watermark", "get", "-t", orders, "--show-files", check=True).stdout
    assert all(f"    {uri}" in shown.splitlines() for uri in wm["processed_s3_files"])
    assert json.loads(project.cli("watermark", "get", "-t", orders, "--json").stdout) == wm

    staged = project.cli("watermark", "get", "-p", "p", "-t", events, "--show-files").stdout
    lines = staged.splitlines()
    awaiting = project.watermark(events)["backup_s3_files"]
    assert len(awaiting) == 1
    assert lines[lines.index("📦 Backup S3 Files (awaiting Redshift load): 1") + 1] == (
        f"    {awaiting[0]}"
    )
    assert lines[-1] == "Next incremental backup starts after: 2025-01-01 00:03:20.000000"
    assert "S3 → Redshift Loading Stage\n  Status: pending" in staged
    ids = project.cli("watermark", "get", "-t", customers).stdout.splitlines()
    assert ids[-1] == "Next incremental backup starts after: id 300"

    never = project.cli("watermark", "get", "-t", notes)
    assert never.returncode == 0
    assert "Never synced: no watermark is stored yet" in never.stdout
    assert never.stdout.count("  Status: pending") == 2
    assert never.stdout.splitlines()[-1] == (
        "Next incremental backup starts at the beginning of the table"
    )
    assert json.loads(project.cli("watermark", "get", "-t", notes, "--json").stdout)["mysql_state"][
        "status"
    ] == ("pending")

    # list: every table of the pipeline with both stages.
    listed = json.loads(project.cli("watermark", "list", "-p", "p", "--json", check=True).stdout)
    by_table = {row["table"]: row for row in listed}
    assert set(by_table) == set(tables)
    assert by_table[orders]["backup_status"] == by_table[orders]["load_status"] == "success"
    assert by_table[orders]["rows_extracted"] == by_table[orders]["rows_loaded"] == 1500
    assert by_table[events]["load_status"] == "pending"
    assert by_table[events]["files_awaiting"] == 1
    assert by_table[notes]["stored"] is False and by_table[notes]["last_updated"] is None
    text = project.cli("watermark", "list", check=True).stdout.splitlines()
    assert text[0].split() == [
        "PIPELINE", "TABLE", "BACKUP", "EXTRACTED", "LOAD", "LOADED", "AWAITING", "UPDATED", "(UTC)"
    ]  # fmt: skip
    assert any(line.split()[:7] == ["p", orders, "success", "1,500", "success", "1,500", "0"]
               for line in text)  # fmt: skip

    # set --id changes only last_id; manual override recorded.
    before = project.watermark(orders)
    out = project.cli("watermark", "set", "-t", orders, "--id", "42", check=True).stdout
    assert "Last Processed ID: 1500 → 42" in out
    after = project.watermark(orders)
    assert after["mysql_state"] == {**before["mysql_state"], "last_id": 42}
    assert after["metadata"]["manual_override"] is True
    assert after["metadata"]["manual_set_time"]
    assert {k: v for k, v in after.items() if k not in ("mysql_state", "metadata")} == {
        k: v for k, v in before.items() if k not in ("mysql_state", "metadata")
    }
    moved = project.cli("watermark", "set", "-t", orders, "--timestamp", "2025-01-01 00:10:00")
    assert moved.returncode == 0, moved.stderr
    assert "Last Data Timestamp: 2025-01-01 00:25:00.000000 → 2025-01-01 00:10:00.000000" in (
        moved.stdout
    )
    assert "Note: the id stays 42" in moved.stderr
    state = project.watermark(orders)["mysql_state"]
    assert (state["last_timestamp"], state["last_id"]) == ("2025-01-01T00:10:00.000000", 42)
    assert "⚠️  Manually changed at" in project.cli("watermark", "get", "-t", orders).stdout

    # Usage errors: exit 1, one Error line, nothing written.
    unchanged = project.watermark(orders)
    for bad in ("2025-13-01 00:00:00", "yesterday", "2025-01-01"):
        result = project.cli("watermark", "set", "-t", orders, "--timestamp", bad)
        assert result.returncode == 1
        assert error_line(result).startswith(f"Error: --timestamp '{bad}' is not a valid")
    neither = project.cli("watermark", "set", "-t", orders)
    assert neither.returncode == 1
    assert error_line(neither) == "Error: nothing to set: give --timestamp, --id or both"
    assert project.watermark(orders) == unchanged

    # reset: declined at the prompt → exit 1, nothing changed.
    declined = cli_with_input(project, "n\n", "watermark", "reset", "-t", orders)
    assert declined.returncode == 1, declined.stderr
    assert "Reset the watermark of" in declined.stderr and "[y/N]" in declined.stderr
    assert declined.stderr.strip().splitlines()[-1].startswith("Error: reset not confirmed")
    assert project.watermark(orders) == unchanged

    # reset --preserve-files keeps the lists, zeroes positions and counts.
    project.cli("watermark", "reset", "-t", events, "--preserve-files", "-y", check=True)
    kept = project.watermark(events)
    assert kept["backup_s3_files"] == awaiting
    assert kept["mysql_state"]["last_timestamp"] is None
    assert kept["mysql_state"]["total_rows"] == 0
    assert kept["mysql_state"]["status"] == kept["redshift_state"]["status"] == "pending"

    # reset -y: everything back to zero; the next sync reloads without duplicates.
    old_files = unchanged["processed_s3_files"]
    answer = cli_with_input(project, "yes\n", "watermark", "reset", "-t", orders)
    assert answer.returncode == 0, answer.stderr
    assert "Dropped 0 files awaiting load and 2 loaded files" in answer.stdout
    reset = project.watermark(orders)
    assert reset["backup_s3_files"] == reset["processed_s3_files"] == []
    assert reset["mysql_state"]["last_id"] is None
    assert reset["mysql_state"]["total_rows"] == reset["redshift_state"]["total_rows"] == 0
    assert reset["metadata"]["created_at"] == unchanged["metadata"]["created_at"]
    project.cli("sync", "pipeline", "-p", "p", "-t", orders, check=True)
    assert pg.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders") == [(1500, 1500)]
    again = project.watermark(orders)
    assert again["redshift_state"]["total_rows"] == 1500
    assert not set(again["processed_s3_files"]) & set(old_files)  # new keys after a reset


def test_pipeline_is_auto_detected_unless_ambiguous(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    orders = create_orders(mysql_db, 10)
    project = make_project(tmp_path, mysql_db, {orders: HYBRID})
    assert project.cli("watermark", "get", "-t", orders).returncode == 0
    unknown = project.cli("watermark", "get", "-t", f"{mysql_db.name}.nope")
    assert unknown.returncode == 1
    assert error_line(unknown) == f"Error: no pipeline lists table '{mysql_db.name}.nope'"

    # The same table into a second target: its own watermark document.
    connections = yaml.safe_load((project.config_dir / "connections.yml").read_text())
    targets = connections["connections"]["targets"]
    targets["pg2"] = {**targets["pg"], "schema": "other"}
    (project.config_dir / "connections.yml").write_text(yaml.safe_dump(connections))
    second = {
        "pipeline": {"name": "q", "source": SCOPE, "target": "pg2"},
        "tables": {orders: HYBRID},
    }
    (project.config_dir / "pipelines" / "q.yml").write_text(yaml.safe_dump(second))
    for args in (("watermark", "get"), ("watermark", "set", "--id", "1"), ("s3clean", "list")):
        ambiguous = project.cli(*args, "-t", orders)
        assert ambiguous.returncode == 1
        assert error_line(ambiguous) == (
            f"Error: table '{orders}' is in several pipelines (p, q): choose one with -p"
        )
    assert project.cli("watermark", "get", "-t", orders, "-p", "q").returncode == 0
    listed = json.loads(project.cli("watermark", "list", "--json").stdout)
    assert [(r["pipeline"], r["table"]) for r in listed] == [("p", orders), ("q", orders)]


def test_writes_wait_for_the_lock_and_reset_repairs_a_torn_watermark(
    tmp_path: Path, mysql_db: MySQLDatabase
) -> None:
    orders = create_orders(mysql_db, 10)
    project = make_project(tmp_path, mysql_db, {orders: HYBRID})
    project.backup(orders)
    before = project.watermark(orders)
    with hold_lock(project, orders):
        for args in (("set", "--id", "5"), ("reset", "-y")):
            held = project.cli("watermark", *args, "-t", orders)
            assert held.returncode == 7, held.stderr
            assert "sync_test_holder" in error_line(held)
        assert project.cli("watermark", "get", "-t", orders).returncode == 0  # reads need no lock
    assert project.watermark(orders) == before

    key = next(project.stage_dir.joinpath("watermarks", "v2").glob("*.json"))
    key.write_text('{"version": "2.1", "table_na')
    torn = project.cli("watermark", "get", "-t", orders)
    assert torn.returncode == 4
    assert "watermark reset" in error_line(torn)
    assert project.cli("watermark", "reset", "-t", orders, "--preserve-files", "-y").returncode == 4
    fixed = project.cli("watermark", "reset", "-t", orders, "-y")
    assert fixed.returncode == 0, fixed.stderr
    assert "could not be parsed; it was replaced" in fixed.stdout
    assert project.watermark(orders)["mysql_state"]["status"] == "pending"
