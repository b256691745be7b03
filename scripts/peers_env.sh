#!/usr/bin/env bash
# Create or update .venv-peers: the peer tools of scripts/bench.py --peers (dlt and Sling,
# listed in scripts/peers-requirements.txt), apart from .venv so that the product's
# packages are untouched. Safe to run concurrently: the second caller waits (flock).
# scripts/test.sh starts it in the background; scripts/bench.py --peers runs it again,
# which then only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

exec 9>.venv-peers.lock
flock 9
stamp=.venv-peers/.installed
want="$(sha256sum scripts/peers-requirements.txt | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv-peers/bin/python ] || python3 -m venv .venv-peers
.venv-peers/bin/pip install -q --disable-pip-version-check -r scripts/peers-requirements.txt
echo "$want" >"$stamp"
