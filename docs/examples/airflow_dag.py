"""s3-redshift-backup in Airflow: one task per table of one pipeline, hourly.

Drop this file into Airflow's ``dags/`` folder on every scheduler and worker, and set
the settings below (or the environment variables named) for your machines. Each
task runs ``sync pipeline -p PIPELINE -t TABLE`` with the checkout's own ``.venv``; see
docs/airflow.md for what each exit code does to the task.
"""

import os
import sys

# The checkout of s3-redshift-backup, with its .venv (python3 -m venv .venv &&
# .venv/bin/pip install -e .); Airflow itself runs from any environment that has
# the tool's configuration packages (pip install -e .[airflow] in a second venv).
REPO = os.environ.get("S3_BACKUP_REPO", "/opt/s3-redshift-backup")
CONFIG_DIR = os.environ.get("S3_BACKUP_CONFIG_DIR", f"{REPO}/config")
PIPELINE = os.environ.get("S3_BACKUP_PIPELINE", "us_dw_unidw_2_public")
# An Airflow pool with as many slots as the MySQL source should serve at once.
POOL = os.environ.get("S3_BACKUP_POOL") or None
# "1": a verify task after each table's sync (docs/verify.md).
VERIFY = os.environ.get("S3_BACKUP_VERIFY") == "1"

sys.path.insert(0, REPO)

from src.integrations.airflow import build_dag  # noqa: E402

dag = build_dag(PIPELINE, config_dir=CONFIG_DIR, pool=POOL, verify=VERIFY, schedule="@hourly")
