#!/usr/bin/env bash
# The main job on the embedded default: local MariaDB -> local stage directory -> local PostgreSQL.
# Seeds demo_shop.parcels in MariaDB, then runs the tool against config/pipelines/demo_pipeline.yml.
# Usage: scripts/demo.sh [ROWS]   (default 10000). Needs the services scripts/test.sh sets up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e .
fi
CLI=(.venv/bin/python -m src.cli.main)

echo "== seeding demo_shop.parcels in MariaDB ($ROWS rows)" >&2
.venv/bin/python scripts/seed_demo.py --rows "$ROWS"

echo "== target schema demo_shop in PostgreSQL" >&2
psql -h 127.0.0.1 -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c 'CREATE SCHEMA IF NOT EXISTS demo_shop'

echo "== config validate" >&2
"${CLI[@]}" config validate -p demo_pipeline

echo "== status" >&2
"${CLI[@]}" status -p demo_pipeline
