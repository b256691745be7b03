#!/usr/bin/env bash
# Create or update .venv-peers: the peer tools of scripts/bench.py --peers (dlt and Sling,
# listed in scripts/peers-requirements.txt), apart from .venv (scripts/side_venv.sh:
# rebuilt when that list changes, concurrent callers wait). scripts/test.sh starts it
# in the background; scripts/bench.py --peers runs it again, which then only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bash scripts/side_venv.sh .venv-peers scripts/peers-requirements.txt \
  -r scripts/peers-requirements.txt
