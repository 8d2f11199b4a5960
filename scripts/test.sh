#!/usr/bin/env bash
# Orrery's whole test suite: the one command README's quickstart names and CI runs.
#
# Integration tests use real PostgreSQL and Redis (never mocks): this script installs them from Debian's packages
# if missing, starts them if down, and fails loudly if they still cannot be reached. Then it runs every test of
# every crate (unit, actor, end-to-end against a real server on 127.0.0.1:0) and checks that the benches build.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST_ADDR=${ORRERY_TEST_PG_HOST:-127.0.0.1}
REDIS_PORT=${ORRERY_TEST_REDIS_PORT:-6379}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    die "$1 is missing and apt-get is not available to install it"
  fi
  say "installing $* from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq "$@" >/dev/null || die "could not install $*"
}

ensure_postgres() {
  if ! command -v pg_isready >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -h "$PGHOST_ADDR" -p 5432 -q; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h "$PGHOST_ADDR" -p 5432 -q && break; sleep 1; done
  fi
  pg_isready -h "$PGHOST_ADDR" -p 5432 -q || die "PostgreSQL is not reachable at $PGHOST_ADDR:5432"
  psql -h "$PGHOST_ADDR" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 \
    || die "PostgreSQL at $PGHOST_ADDR:5432 refuses user postgres (trust auth expected)"
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
  fi
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.5; done
  fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "Redis is not reachable at 127.0.0.1:$REDIS_PORT"
}

ensure_postgres
ensure_redis
# The example client in examples/python is exercised by the end-to-end tests.
command -v python3 >/dev/null 2>&1 || apt_install python3
export ORRERY_TEST_PG_URL=${ORRERY_TEST_PG_URL:-postgres://postgres@$PGHOST_ADDR:5432/postgres}
export ORRERY_TEST_REDIS_URL=${ORRERY_TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}

say "running the test suite"
cargo test --workspace --all-targets --locked
