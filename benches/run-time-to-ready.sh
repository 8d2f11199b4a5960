#!/usr/bin/env bash
# Time to ready: `orrery serve` on PostgreSQL with a snapshot of every sector (10,000 sectors x 100 ships by default),
# from process start until GET /readyz answers 200 with every sector's actor running (benches/time-to-ready).
#
# Usage: benches/run-time-to-ready.sh [extra time-to-ready flags, e.g. --ships 50]
#        BASELINE=/path/to/an/older/orrery benches/run-time-to-ready.sh   (compare: each round starts the baseline,
#                                                                        then this tree's server)
#
# It creates a scratch database on BENCH_POSTGRES (migrated by the store), fills it the way the server writes
# snapshots, starts the server RUNS times on it (waiting for an idle machine before each run, SIGKILL after each: a
# graceful stop would overwrite the snapshots), prints one line per run and a summary, and drops the database.
# Results: $RESULTS_DIR/time-to-ready.json; the servers' logs: $RESULTS_DIR/time-to-ready-<run>.log.
#
# Environment (all optional):
#   BENCH_POSTGRES   admin URL of the PostgreSQL server   (default postgres://postgres@127.0.0.1:5432/postgres)
#   RUNS             rounds (server starts per binary)    (default 5)
#   BASELINE         an older server binary to compare with (run first in every round; ratios are to it)
#   PORT             server port                          (default 7890)
#   RESULTS_DIR      where the JSON report and logs go    (default benches/results)
#   IDLE_TIMEOUT     seconds to wait for an idle machine  (default 60; then the run goes ahead, flagged)
#   SKIP_BUILD=1     do not run cargo build
#   CARGO_TARGET_DIR honoured (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/benches/results}
mkdir -p "$RESULTS_DIR"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "cargo build --release -p orrery -p time-to-ready" >&2
    cargo build --release -p orrery -p time-to-ready
fi

# The server raises its descriptor limit to the hard limit; every sector holds a poller descriptor.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no -- . ":!benches" ":!docs" 2>/dev/null)" ]; then GIT_REV="$GIT_REV+uncommitted"; fi
echo "commit $GIT_REV; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores);" \
    "$(psql "${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" -qtAc 'SHOW server_version' 2>/dev/null | sed 's/^/PostgreSQL /')" >&2

BINARIES=()
if [ -n "${BASELINE:-}" ]; then BINARIES+=(--orrery "$BASELINE"); fi
BINARIES+=(--orrery "$TARGET/release/orrery")

exec "$TARGET/release/time-to-ready" \
    --admin-url "${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" \
    "${BINARIES[@]}" \
    --runs "${RUNS:-5}" \
    --port "${PORT:-7890}" \
    --idle-timeout "${IDLE_TIMEOUT:-60}" \
    --log-dir "$RESULTS_DIR" \
    --json "$RESULTS_DIR/time-to-ready.json" \
    "$@"
