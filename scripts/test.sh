#!/usr/bin/env bash
# The one test command: bash scripts/test.sh [pytest args...]
#
# scripts/services.sh installs and starts the services and .venv (with the test tools);
# then ruff, ruff format --check, mypy, the import-layer contract and pytest run, while
# scripts/airflow_env.sh and scripts/peers_env.sh build .venv-airflow and .venv-peers in
# the background.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV_EXTRAS="[dev]"
# shellcheck source=scripts/services.sh
source scripts/services.sh

# Airflow's own virtualenv for tests/integration/test_airflow_dag.py, built while the
# checks and the other tests run (the test waits for it; its log: .venv-airflow.log).
bash scripts/airflow_env.sh >.venv-airflow.log 2>&1 &
# The benchmark's peers (dlt, Sling) for tests/integration/test_bench_script.py, the same way.
bash scripts/peers_env.sh >.venv-peers.log 2>&1 &

# ---------------------------------------------------------------------------
section "ruff check"
.venv/bin/ruff check src tests scripts docs/examples

section "ruff format --check"
.venv/bin/ruff format --check src tests scripts docs/examples

section "mypy"
.venv/bin/mypy src

section "import layers (import-linter)"
.venv/bin/lint-imports

section "pytest $*"
exec .venv/bin/pytest "$@"
