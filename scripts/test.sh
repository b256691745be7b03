#!/usr/bin/env bash
# The one test command: bash scripts/test.sh [pytest args...]
#
# scripts/services.sh installs and starts the services and .venv (with the test tools);
# then ruff, ruff format --check, mypy, the import-layer contract and pytest run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV_EXTRAS="[dev]"
# shellcheck source=scripts/services.sh
source scripts/services.sh

# ---------------------------------------------------------------------------
section "ruff check"
.venv/bin/ruff check src tests scripts

section "ruff format --check"
.venv/bin/ruff format --check src tests scripts

section "mypy"
.venv/bin/mypy src

section "import layers (import-linter)"
.venv/bin/lint-imports

section "pytest $*"
exec .venv/bin/pytest "$@"
