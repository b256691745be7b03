#!/usr/bin/env bash
# Create or update .venv-airflow: Apache Airflow plus this project (pip install -e .[airflow]),
# apart from .venv (scripts/side_venv.sh: rebuilt when pyproject.toml changes, concurrent
# callers wait). scripts/test.sh starts it in the background;
# tests/integration/test_airflow_dag.py runs it again, which then only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bash scripts/side_venv.sh .venv-airflow pyproject.toml -e ".[airflow]"
