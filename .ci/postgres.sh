#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for the tests.
#
#   .ci/postgres.sh run go test ./...  # runs the command with a cluster, then removes it
#   eval "$(.ci/postgres.sh start)"   # prints export TOOLGATE_TEST_POSTGRES=... and TOOLGATE_TEST_POSTGRES_DIR=...
#   .ci/postgres.sh stop "$TOOLGATE_TEST_POSTGRES_DIR"
#
# run without PostgreSQL installed runs the command alone (the PostgreSQL
# tests then skip, or fail when $CI is set).
# The cluster lives in a new temporary directory and listens only on a unix
# socket there (no TCP port to collide with). It trusts local connections:
# it is for tests, never for data. PostgreSQL refuses to run as root, so as
# root initdb and the server run as the postgres user (runuser), and the
# directory is handed to that user. Debian's binaries live under
# /usr/lib/postgresql/VERSION/bin; the newest is used unless PG_BIN is set.
set -euo pipefail

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$d" ] && command -v pg_ctl >/dev/null; then d=$(dirname "$(command -v pg_ctl)"); fi
  if [ -z "$d" ]; then echo "postgres.sh: no PostgreSQL binaries (apt-get install postgresql)" >&2; exit 1; fi
  echo "$d"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  bin=$(pg_bin)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/toolgate-pg.XXXXXX")
  chmod 0755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U toolgate -A trust --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  # Enough connections for three replicas and the parallel test packages.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -k $dir -c max_connections=300" start >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bin/createdb" -h "$dir" -U toolgate toolgate
  echo "export TOOLGATE_TEST_POSTGRES='postgres://toolgate@/toolgate?host=$dir'"
  echo "export TOOLGATE_TEST_POSTGRES_DIR='$dir'"
  ;;
run)
  shift
  [ $# -gt 0 ] || { echo "usage: $0 run COMMAND..." >&2; exit 2; }
  if ! env_lines=$("$0" start); then
    echo "postgres.sh: no PostgreSQL cluster; running without one" >&2
    exec "$@"
  fi
  eval "$env_lines"
  trap '"$0" stop "$TOOLGATE_TEST_POSTGRES_DIR"' EXIT
  "$@"
  ;;
stop)
  dir=${2:?usage: postgres.sh stop DIR}
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 run COMMAND... | start | stop DIR" >&2
  exit 2
  ;;
esac
