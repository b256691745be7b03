#!/usr/bin/env bash
# Installs and starts what the project needs, for scripts/test.sh and scripts/demo.sh alike
# (source it; VENV_EXTRAS="[dev]" adds the test tools to .venv).
#
# Works on a brand-new Debian 12 machine (as root, or with passwordless sudo):
# installs what is missing (MariaDB, PostgreSQL, OpenSSH server/client, python3-venv),
# starts MariaDB on 127.0.0.1:3306 (root, empty password over TCP) and PostgreSQL on
# 127.0.0.1:5432 (user postgres, trust from 127.0.0.1) if they are not answering,
# creates/updates .venv. On a machine where all of that is in place it only checks.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MYSQL_HOST=127.0.0.1
MYSQL_PORT=3306
PG_HOST=127.0.0.1
PG_PORT=5432
WAIT_SECONDS=60
LOG_DIR="${TMPDIR:-/tmp}/s3-redshift-backup-test"

section() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

if [ "$(id -u)" -eq 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
  as_root() { sudo -n "$@"; }
else
  as_root() { die "need root (or sudo) to run: $*"; }
fi

have() { command -v "$1" >/dev/null 2>&1; }
# wait_for CHECK NAME LOG: up to WAIT_SECONDS for CHECK to succeed, else die with LOG's tail.
wait_for() {
  local _
  for _ in $(seq "$WAIT_SECONDS"); do
    "$1" && return 0
    sleep 1
  done
  die "$2 did not answer within ${WAIT_SECONDS}s:
$(tail -n 30 "$3" 2>/dev/null)"
}
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
first_cmd() {
  local c
  for c in "$@"; do
    if have "$c"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------------------
section "System packages"
missing=()
[ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ] || missing+=(mariadb-server)
have mariadb || have mysql || missing+=(mariadb-client)
have psql || missing+=(postgresql-client)
if ! have pg_ctlcluster || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  missing+=(postgresql)
fi
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
have ssh-keygen || missing+=(openssh-client)
have python3 || missing+=(python3)
if [ ! -x .venv/bin/python ] && ! pkg_installed python3-venv; then
  missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  note "installing: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
else
  note "all present"
fi

MYSQL_CLI="$(first_cmd mariadb mysql)" || die "no mariadb/mysql client"
MYSQL_ADMIN="$(first_cmd mariadb-admin mysqladmin)" || die "no mariadb-admin/mysqladmin"
mkdir -p "$LOG_DIR"

# ---------------------------------------------------------------------------
section "MariaDB on ${MYSQL_HOST}:${MYSQL_PORT}"
mysql_answers() {
  # mysqladmin ping exits 0 whenever the server is up, even if access is denied.
  "$MYSQL_ADMIN" --no-defaults --connect-timeout=2 -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
    ping >/dev/null 2>&1
}
mysql_tcp_root_ok() {
  "$MYSQL_CLI" --no-defaults --connect-timeout=5 -h "$MYSQL_HOST" -P "$MYSQL_PORT" -uroot \
    -e 'SELECT 1' >/dev/null 2>&1
}
mysql_socket_root() { as_root "$MYSQL_CLI" --connect-timeout=5 -uroot "$@"; }

if ! mysql_answers; then
  MARIADBD=/usr/sbin/mariadbd
  [ -x "$MARIADBD" ] || MARIADBD=/usr/sbin/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    note "initialising the data directory"
    INSTALL_DB="$(first_cmd mariadb-install-db mysql_install_db)" || die "no mariadb-install-db"
    as_root "$INSTALL_DB" --user=mysql --datadir=/var/lib/mysql --skip-test-db \
      >"$LOG_DIR/mariadb-install-db.log" 2>&1 ||
      die "mariadb-install-db failed: $(cat "$LOG_DIR/mariadb-install-db.log")"
  fi
  note "starting $MARIADBD"
  # Debian's config does not set user=mysql (systemd does), and mariadbd refuses to
  # run as root without it; /run/mysqld is normally made by systemd's RuntimeDirectory.
  as_root install -d -o mysql -g mysql -m 0755 /run/mysqld
  as_root start-stop-daemon --start --oknodo --background \
    --output "$LOG_DIR/mariadbd.log" --exec "$MARIADBD" -- --user=mysql
  wait_for mysql_answers MariaDB "$LOG_DIR/mariadbd.log"
fi
if ! mysql_tcp_root_ok; then
  # Fresh Debian: root@localhost is unix_socket only. Keep socket auth, add an empty
  # password for TCP. A TCP login from 127.0.0.1 maps to root@localhost unless the
  # server skips name resolution, in which case it needs root@127.0.0.1.
  note "enabling TCP login for root with an empty password"
  mysql_socket_root -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR \
mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;"
  if ! mysql_tcp_root_ok; then
    mysql_socket_root -e "CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; \
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  fi
  mysql_tcp_root_ok || die "cannot log in to MariaDB as root over TCP with an empty password"
fi
note "ok"

# ---------------------------------------------------------------------------
section "PostgreSQL on ${PG_HOST}:${PG_PORT}"
pg_answers() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
pg_login_ok() {
  psql -w -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc 'SELECT 1' \
    >/dev/null 2>&1
}
# psql as the postgres OS user over the Unix socket of the cluster on $PG_PORT (peer auth).
pg_socket_psql() { (cd / && as_root runuser -u postgres -- psql -X -q -p "$PG_PORT" -tA "$@"); }

if ! pg_answers; then
  # Use the cluster configured for $PG_PORT; else the newest cluster, moved to $PG_PORT
  # (pg_createcluster picks the next free port, e.g. 5433 if 5432 was busy at install
  # time); else create one. pg_lsclusters -h: "version cluster port status ...".
  PG_VERSION="" PG_CLUSTER="" PG_STATUS=""
  read -r PG_VERSION PG_CLUSTER PG_STATUS < <(
    pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; exit }'
  ) || true
  if [ -z "$PG_VERSION" ]; then
    read -r PG_VERSION PG_CLUSTER PG_STATUS < <(
      pg_lsclusters -h 2>/dev/null | sort -V | tail -n 1 | awk '{ print $1, $2, $4 }'
    ) || true
    if [ -n "$PG_VERSION" ]; then
      note "moving cluster $PG_VERSION/$PG_CLUSTER to port $PG_PORT"
      as_root pg_conftool "$PG_VERSION" "$PG_CLUSTER" set port "$PG_PORT"
    else
      # shellcheck disable=SC2012  # version directory names are plain
      PG_VERSION="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
      [ -n "$PG_VERSION" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
      PG_CLUSTER=main
      note "creating cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
      as_root pg_createcluster -p "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" \
        >"$LOG_DIR/pg_createcluster.log" 2>&1 ||
        die "pg_createcluster failed: $(cat "$LOG_DIR/pg_createcluster.log")"
    fi
  fi
  action=start
  [ "${PG_STATUS%%,*}" != online ] || action=restart
  note "${action} cluster $PG_VERSION/$PG_CLUSTER"
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" "$action" ||
    note "pg_ctlcluster $action returned $? (waiting anyway)"
  wait_for pg_answers PostgreSQL "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
fi
if ! pg_login_ok; then
  # Fresh Debian: TCP connections use scram-sha-256. Trust loopback for the tests.
  HBA="$(pg_socket_psql -c 'SHOW hba_file')" || die "cannot reach PostgreSQL as postgres over \
its Unix socket to find pg_hba.conf"
  note "adding 'host all all 127.0.0.1/32 trust' at the top of $HBA"
  tmp_hba="$(mktemp)"
  { echo "host all all 127.0.0.1/32 trust"; as_root cat "$HBA"; } >"$tmp_hba"
  # shellcheck disable=SC2016  # $1/$2 expand in the inner shell
  as_root sh -c 'cat "$1" > "$2"' sh "$tmp_hba" "$HBA" # keeps owner and mode
  rm -f "$tmp_hba"
  pg_socket_psql -c 'SELECT pg_reload_conf()' >/dev/null
  for _ in $(seq 10); do
    pg_login_ok && break
    sleep 1
  done
  pg_login_ok || die "cannot log in to PostgreSQL as postgres from ${PG_HOST} without a password"
fi
note "ok"

# ---------------------------------------------------------------------------
section "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  note "creating .venv"
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/pip install -q --disable-pip-version-check -e ".${VENV_EXTRAS:-}"
note "$(.venv/bin/python --version)"

