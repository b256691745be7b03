#!/usr/bin/env bash
# The main job on the embedded default: local MariaDB -> local stage directory -> local PostgreSQL.
# Seeds demo_shop.parcels in MariaDB, syncs it into PostgreSQL (schema demo_shop) with
# config/pipelines/demo_pipeline.yml, changes rows in MariaDB, syncs again (merge by primary key)
# and shows both sides' row counts. Each run starts from scratch (stage dir and target schema).
# Usage: scripts/demo.sh [ROWS]   (default 100000). On a bare Debian machine it installs and
# starts MariaDB, PostgreSQL and .venv first (scripts/services.sh, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-100000}"

# shellcheck source=scripts/services.sh
source scripts/services.sh
CLI=(.venv/bin/python -m src.cli.main)
PSQL=(psql -h 127.0.0.1 -U postgres -d postgres -q -v ON_ERROR_STOP=1)
MYSQL=(mysql -h 127.0.0.1 -u root demo_shop)

echo "== seeding demo_shop.parcels in MariaDB ($ROWS rows)" >&2
.venv/bin/python scripts/seed_demo.py --rows "$ROWS"

echo "== fresh target schema demo_shop in PostgreSQL and an empty stage" >&2
"${PSQL[@]}" -c 'DROP SCHEMA IF EXISTS demo_shop CASCADE' -c 'CREATE SCHEMA demo_shop'
rm -rf .stage

echo "== config validate and status" >&2
"${CLI[@]}" config validate -p demo_pipeline
"${CLI[@]}" status -p demo_pipeline

echo "== first sync" >&2
"${CLI[@]}" sync pipeline -p demo_pipeline -t demo_shop.parcels

echo "== update 1,000 rows and insert 500 in MariaDB" >&2
"${MYSQL[@]}" -e "UPDATE parcels SET status = 99, updated_at = NOW(6) ORDER BY id LIMIT 1000;
  INSERT INTO parcels (tracking_number, order_id, status, updated_at)
  SELECT CONCAT('NEW', seq), seq, 1, NOW(6) FROM seq_1_to_500;"

echo "== second sync (merge)" >&2
"${CLI[@]}" sync pipeline -p demo_pipeline -t demo_shop.parcels

mysql_rows=$("${MYSQL[@]}" -N -e 'SELECT COUNT(*) FROM parcels')
pg_rows=$("${PSQL[@]}" -At -c 'SELECT COUNT(*) FROM demo_shop.parcels')
pg_changed=$("${PSQL[@]}" -At -c 'SELECT COUNT(*) FROM demo_shop.parcels WHERE status = 99')
echo "MariaDB demo_shop.parcels: $mysql_rows rows"
echo "PostgreSQL demo_shop.parcels: $pg_rows rows ($pg_changed updated)"
[ "$mysql_rows" = "$pg_rows" ] || { echo "row counts differ" >&2; exit 1; }
