#!/usr/bin/env bash
# Orrery's whole test suite: the one command README's quickstart names and CI runs.
#
# Every test of every crate (unit, actor, end-to-end against a real `orrery` server on 127.0.0.1:0, the RFC 6455
# conformance module, the fuzz-corpus replay) and a build of the benches; then the end-to-end tests again with every
# server on PostgreSQL (ORRERY_TEST_BACKEND=postgres: one database per test server's data directory). The store's
# and the migrator's tests, tests/postgres.rs, tests/ledger.rs, tests/crash_recovery.rs and the `orrery migrate`
# test in tests/cli.rs run against a real PostgreSQL (never a mock) in both passes, each in a scratch database of its
# own; tests/db_faults.rs starts and stops a throwaway PostgreSQL of its own (initdb and pg_ctl from the same
# packages). This script installs PostgreSQL from Debian's packages if it is missing, starts it if it is down, and
# fails loudly if it still cannot be reached. No test uses Redis yet, so it is not provisioned. After the Rust tests:
# the doctests of docs/extending.md (examples/tag), the TypeScript SDK's tests, the check that web/dist is what web/
# builds, and the browser tests in headless Chromium (node, npm and chromium installed from Debian if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=${ORRERY_TEST_PG_HOST:-127.0.0.1}
PG_PORT=${ORRERY_TEST_PG_PORT:-5432}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available to install it"
  say "installing $* from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq "$@" >/dev/null || die "could not install $*"
}

ensure_postgres() {
  if ! command -v pg_isready >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break; sleep 1; done
  fi
  pg_isready -h "$PG_HOST" -p "$PG_PORT" -q || die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT"
  psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 \
    || die "PostgreSQL at $PG_HOST:$PG_PORT refuses user postgres (trust auth expected)"
}

ensure_postgres
# Where the tests create (and drop) their scratch databases.
export ORRERY_TEST_POSTGRES=${ORRERY_TEST_POSTGRES:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}

# The example client in examples/python is exercised by the end-to-end tests.
command -v python3 >/dev/null 2>&1 || apt_install python3

psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA "$@"; }

# The end-to-end tests' PostgreSQL databases (one per test server's data directory) live until the run ends. Each
# run names them with a prefix of its own and drops only its own, so concurrent runs on one PostgreSQL coexist.
export ORRERY_TEST_E2E_PREFIX="orrery_e2e_$(date +%s)_$$"
drop_e2e_databases() {
  local db
  for db in $(psql_admin -c "select datname from pg_database where datname like '${ORRERY_TEST_E2E_PREFIX}\_%'" 2>/dev/null || true); do
    psql_admin -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  done
}
trap drop_e2e_databases EXIT

say "running the test suite"
cargo test --workspace --all-targets --locked

# The end-to-end tests that start servers without naming a store, again with every server on PostgreSQL. (The
# tests that name their stores, cli.rs, postgres.rs, ledger.rs, crash_recovery.rs and db_faults.rs, ran on both
# backends above.)
say "running the end-to-end tests again on PostgreSQL"
ORRERY_TEST_BACKEND=postgres cargo test --locked \
  --test backpressure --test bad_input --test conformance --test dilation --test durability --test fuzz_corpus \
  --test hostile --test python_client --test state_loss --test stream --test world \
  --test audit --test http_errors --test admin_cli --test accounts --test admin_control

# --- Your own game: the guide's snippets ---
# `--all-targets` above builds and runs examples/tag (its test plays the game over a real WebSocket) but not
# doctests: docs/extending.md is that crate's documentation, and every Rust snippet in it is a doctest.
say "running the doctests of docs/extending.md (examples/tag)"
cargo test --locked -p orrery-tag --doc

# ---- TypeScript SDK (sdk/typescript) ----
# Its codec tests read test/fixtures/protocol-v1.json, which protocol/tests/sdk_fixtures.rs (run above by
# `cargo test --workspace`) holds to the Rust encoders; its end-to-end tests start the `orrery` binary built here.
# Needs node >= 20 (node's test runner with --test-concurrency, global fetch) and npm; installed from Debian's
# packages when node is missing.
say "testing the TypeScript SDK"
command -v node >/dev/null 2>&1 || apt_install nodejs npm
command -v npm >/dev/null 2>&1 || apt_install npm
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "the TypeScript SDK needs node >= 20, found $(node --version)"
cargo build -p orrery --locked
ORRERY_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/orrery"
[ -x "$ORRERY_BIN" ] || die "no orrery binary at $ORRERY_BIN after cargo build"
(cd sdk/typescript && npm ci --no-audit --no-fund && ORRERY_BIN="$ORRERY_BIN" npm test)

# ---- Web pages and browser tests (web/, tests/browser/) ----------------------------------------------------------
# The pages in web/dist are committed and embedded in the binary (api/build.rs), so the Rust build never needs node;
# here they are rebuilt and must match what is committed. Then the browser tests drive headless Chromium (Debian's
# package, through playwright-core) against a real `orrery serve`; screenshots go to tests/browser/artifacts/.
say "web pages: checking that web/dist is up to date"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed for the web pages"
[ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromium ] || die "chromium is needed for the browser tests"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm run --silent typecheck) \
  || die "building web/ failed"
git diff --exit-code --stat -- web/dist || die "web/dist is not what web/ builds: run \`npm run build\` in web/ and commit"
[ -z "$(git status --porcelain --untracked-files=all -- web/dist)" ] || die "web/dist has files not committed: run \`npm run build\` in web/ and commit"
say "browser tests"
cargo build -p orrery --locked
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test) || die "browser tests failed (screenshots and server logs in tests/browser/artifacts/)"
