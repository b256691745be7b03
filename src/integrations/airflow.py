"""An Airflow DAG factory: one task per table, each running the tool as a subprocess.

Import this only where Apache Airflow 3 is installed (``pip install -e .[airflow]``);
nothing else in ``src`` imports it. Each task runs ``sync pipeline -p P -t T`` (and,
when asked, ``verify``) with the project's own interpreter, so Airflow's packages and
the tool's never have to agree; the table's lock and watermark in the shared stage
make any number of workers safe. docs/airflow.md describes the deployment and the
exit-code mapping (:func:`src.integrations.outcomes.task_outcome`) implemented here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import subprocess
import tempfile
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from src.config.configuration_manager import ConfigurationManager
from src.errors import ConfigError
from src.integrations.outcomes import task_outcome
from src.utils.naming import task_id

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)

# Retried faults (exit 2, 5, 6 once, 130) wait 5, 10, 20 minutes; a dag's own
# default_args override any of these.
DEFAULT_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
}
# How long a task that Airflow stops (timeout, "mark failed") gives the tool after
# SIGINT to release its lock and exit 130, before it is killed.
STOP_GRACE_SECONDS = 60


def default_python() -> str:
    """The project's own interpreter: ``.venv/bin/python`` of this checkout."""
    return str(REPO / ".venv" / "bin" / "python")


def build_dag(
    pipeline: str,
    *,
    config_dir: str | Path,
    dag_id: str | None = None,
    schedule: str | None = "@hourly",
    pool: str | None = None,
    tables: Sequence[str] | None = None,
    verify: bool | None = None,
    python: str | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Return a DAG with one ``sync_<schema>.<table>`` task per table of ``pipeline``.

    The pipeline's YAML is read once, here, through the ConfigurationManager (so a
    configuration error is the DAG file's import error). ``tables`` picks some of the
    pipeline's tables (default: all); ``pool`` caps how many tasks run at once against
    the source; ``verify=True`` adds a ``verify_<schema>.<table>`` task after each
    sync. ``python`` is the interpreter that runs the tool (default: this checkout's
    ``.venv``). Other keyword arguments go to ``DAG`` (``default_args`` merged over
    :data:`DEFAULT_ARGS`).
    """
    config = Path(config_dir).resolve()
    env_file = REPO / ".env"
    manager = ConfigurationManager(config, env_file=env_file if env_file.is_file() else None)
    known = manager.load().app.pipelines.get(pipeline)
    if known is None:
        raise ConfigError(f"pipeline {pipeline!r} not found in {config}/pipelines")
    chosen = list(known.tables) if tables is None else list(tables)
    unknown = [name for name in chosen if name not in known.tables]
    if unknown:
        raise ConfigError(f"pipeline {pipeline}: no table {', '.join(unknown)} in its file")
    dag_kwargs["default_args"] = {**DEFAULT_ARGS, **dag_kwargs.get("default_args", {})}
    dag_kwargs.setdefault("start_date", dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    dag_kwargs.setdefault("catchup", False)
    # A second run of the same table would only meet the lock (exit 7, skipped).
    dag_kwargs.setdefault("max_active_runs", 1)
    dag_kwargs.setdefault("tags", ["s3-redshift-backup"])
    tool = [python or default_python(), "-m", "src.cli.main", "--json-logs"]
    tool += ["--config-dir", str(config)]
    task_args: dict[str, Any] = {"pool": pool} if pool else {}
    with DAG(dag_id or f"s3_backup_{pipeline}", schedule=schedule, **dag_kwargs) as dag:
        for table in chosen:
            sync = PythonOperator(
                task_id=task_id("sync", table),
                python_callable=run_tool,
                op_kwargs={"argv": [*tool, "sync", "pipeline", "-p", pipeline, "-t", table]},
                **task_args,
            )
            if verify:
                sync >> PythonOperator(
                    task_id=task_id("verify", table),
                    python_callable=run_tool,
                    op_kwargs={"argv": [*tool, "verify", "-p", pipeline, "-t", table]},
                    **task_args,
                )
    return dag


def run_tool(argv: list[str], **context: Any) -> None:
    """Run one command of the tool; push its JSON report to XCom; end as its exit code says.

    The command's log lines (JSON, one per line) go to the task log as they come. The
    report is pushed under the key ``report`` whatever the exit code, when the
    command wrote one.
    """
    ti = context["ti"]
    with tempfile.TemporaryDirectory(prefix="s3backup-airflow-") as scratch:
        report_path = Path(scratch) / "report.json"
        code, error = _run([*argv, "--json-output", str(report_path)])
        if report_path.is_file():
            ti.xcom_push(key="report", value=json.loads(report_path.read_text()))
    outcome = task_outcome(code, ti.try_number)
    if outcome == "success":
        return
    message = f"exit {code}: {error}"
    if outcome == "skip":
        raise AirflowSkipException(message)
    if outcome == "fail":
        raise AirflowFailException(message)
    raise RuntimeError(f"{message} (a retry may succeed)")


def _run(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` in the checkout, relaying its output; return (exit code, last error)."""
    tail: deque[str] = deque(maxlen=1)
    with subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.info("%s", line.rstrip("\n"))
                event = _event(line)
                if event.startswith("Error:"):
                    tail.append(event)
        except BaseException:
            # Airflow stopping the task: let the tool release its lock (SIGINT → exit 130).
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return proc.returncode, tail[0] if tail else "no Error: line; see the task log"


def _event(line: str) -> str:
    """The ``event`` of one ``--json-logs`` line, or the line itself when it is not JSON."""
    try:
        record = json.loads(line)
    except ValueError:
        return line.strip()
    return str(record.get("event", "")) if isinstance(record, dict) else line.strip()
