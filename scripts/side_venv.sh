#!/usr/bin/env bash
# Create or update a virtualenv beside .venv, so that .venv's packages are untouched:
#   bash scripts/side_venv.sh DIR STAMP_FILE PIP_INSTALL_ARGS...
# It is rebuilt when STAMP_FILE (what lists its packages) changed since the last
# install, else only checked. Safe to run concurrently: the second caller waits for
# the first (flock on DIR.lock). scripts/airflow_env.sh and scripts/peers_env.sh use it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir="$1" source_file="$2"
shift 2

exec 9>"$dir.lock"
flock 9
stamp="$dir/.installed"
want="$(sha256sum "$source_file" | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$dir/bin/python" ] || python3 -m venv "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check --upgrade pip
"$dir/bin/pip" install -q --disable-pip-version-check "$@"
echo "$want" >"$stamp"
