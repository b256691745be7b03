"""The example DAG (docs/examples/airflow_dag.py) run in Airflow 3 with ``dag.test()``.

Airflow lives in .venv-airflow (scripts/airflow_env.sh, started in the background by
scripts/test.sh); its tasks run the tool with this checkout's .venv against the real
MariaDB and PostgreSQL. Issue #14.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_sync_cli import orders
from tests.integration.test_watermark_cmd import hold_lock
from tests.support.databases import MySQLDatabase, PgSchema
from tests.support.pipelines import ROOT, Project, make_project

AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
DAG_FILE = ROOT / "docs" / "examples" / "airflow_dag.py"
RUNNER = ROOT / "tests" / "support" / "airflow_runner.py"
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
POOL = "s3_backup_mysql"
DO = ("sync", "verify")


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """.venv-airflow, created (or, when scripts/test.sh started it, waited for) here."""
    subprocess.run(["bash", str(ROOT / "scripts" / "airflow_env.sh")], check=True, timeout=900)
    return AIRFLOW_PY


class AirflowHome:
    """An AIRFLOW_HOME with a migrated SQLite database, the pool, and the example's settings."""

    def __init__(self, python: Path, home: Path, project: Project, pipeline: str) -> None:
        self.python = python
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BACKUP_"))}
        self.env.update(project.env)
        self.env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(DAG_FILE.parent),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            S3_BACKUP_REPO=str(ROOT),
            S3_BACKUP_CONFIG_DIR=str(project.config_dir),
            S3_BACKUP_PIPELINE=pipeline,
            S3_BACKUP_POOL=POOL,
            S3_BACKUP_VERIFY="1",
        )
        airflow = str(python.parent / "airflow")
        for argv in ([airflow, "db", "migrate"], [airflow, "pools", "set", POOL, "2", "MySQL"]):
            done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr

    def run_dag(self) -> dict[str, dict[str, Any]]:
        """One ``dag.test()`` run; each task's state, try number and XCom report."""
        done = subprocess.run(
            [str(self.python), str(RUNNER), str(DAG_FILE)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _target_state(pg: PgSchema, table: str) -> tuple[int, int]:
    """(rows, distinct ids) of the target table of ``schema.table``."""
    name = table.split(".", 1)[1]
    rows = pg.execute(f'SELECT count(*), count(DISTINCT id) FROM "{pg.name}"."{name}"')
    return int(rows[0][0]), int(rows[0][1])


@pytest.mark.airflow
def test_dag_lands_tables_fails_config_errors_skips_locked_and_never_loads_twice(
    tmp_path: Path, mysql_db: MySQLDatabase, pg: PgSchema, airflow_python: Path
) -> None:
    sizes = {"orders": 300, "customers": 200, "items": 100}
    tables = {orders(mysql_db, name, rows): HYBRID for name, rows in sizes.items()}
    broken = orders(mysql_db, "broken", 10)
    tables[broken] = {**HYBRID, "cdc_timestamp_column": "no_such_column"}
    project = make_project(tmp_path, mysql_db, tables, pg=pg)
    home = AirflowHome(airflow_python, tmp_path / "airflow", project, "p")
    db = mysql_db.name
    locked = f"{db}.items"

    with hold_lock(project, locked):
        first = home.run_dag()
    names = ("orders", "customers", "items", "broken")
    assert sorted(first) == sorted(f"{do}_{db}.{name}" for name in names for do in DO)
    for name, rows in (("orders", 300), ("customers", 200)):
        outcome = first[f"sync_{db}.{name}"]
        assert outcome["state"] == "success", outcome
        assert outcome["report"]["table_results"][f"{db}.{name}"]["rows_loaded"] == rows
        assert _target_state(pg, f"{db}.{name}") == (rows, rows)
        proved = first[f"verify_{db}.{name}"]
        assert proved["state"] == "success", proved
        assert proved["report"]["tables"][f"{db}.{name}"]["status"] == "equal", proved
    # Exit 7: the other run does the work; Airflow's retries (3 by default) are not used.
    assert first[f"sync_{locked}"]["state"] == "skipped", first[f"sync_{locked}"]
    # Exit 1: failed on the first try, not retried (try_number stays 1).
    assert first[f"sync_{broken}"]["state"] == "failed", first[f"sync_{broken}"]
    assert first[f"sync_{broken}"]["try_number"] == 1
    assert first[f"sync_{broken}"]["report"]["exit_code"] == 1
    # A verify runs only after its sync succeeded.
    assert first[f"verify_{locked}"]["state"] == "skipped"
    assert first[f"verify_{broken}"]["state"] == "upstream_failed"

    second = home.run_dag()
    assert second[f"sync_{locked}"]["state"] == "success", second[f"sync_{locked}"]
    for name, rows in sizes.items():
        table = f"{db}.{name}"
        assert _target_state(pg, table) == (rows, rows)
        expected = rows if table == locked else 0  # nothing loaded twice
        result = second[f"sync_{table}"]["report"]["table_results"][table]
        assert result["rows_loaded"] == expected, result
        assert second[f"verify_{table}"]["state"] == "success", second[f"verify_{table}"]
    assert second[f"sync_{broken}"]["state"] == "failed"
