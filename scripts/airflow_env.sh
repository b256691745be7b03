#!/usr/bin/env bash
# Create or update .venv-airflow: Apache Airflow plus this project (pip install -e .[airflow]),
# apart from .venv so that the main environment's packages are untouched.
# Safe to run concurrently: the second caller waits for the first (flock).
# scripts/test.sh starts it in the background; tests/integration/test_airflow_dag.py
# runs it again, which then only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

exec 9>.venv-airflow.lock
flock 9
stamp=.venv-airflow/.installed
want="$(sha256sum pyproject.toml | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv-airflow/bin/python ] || python3 -m venv .venv-airflow
.venv-airflow/bin/pip install -q --disable-pip-version-check --upgrade pip
.venv-airflow/bin/pip install -q --disable-pip-version-check -e ".[airflow]"
echo "$want" >"$stamp"
