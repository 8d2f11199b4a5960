#!/bin/bash
# Scenario E (or the one named) on each store, alternating (SQLite, PostgreSQL, SQLite, PostgreSQL): the server's tick overruns, those
# that happened while a store write was in flight (orrery_tick_overruns_during_write_total), and the time writes
# were in flight (orrery_snapshot_write_seconds_sum), scraped before and after each load run. Server on CPU 0, load
# generator and (for PostgreSQL) every PostgreSQL process on CPU 1. Needs a release build and the local PostgreSQL
# (postgres://postgres@127.0.0.1:5432, trust); each PostgreSQL run gets a database of its own, dropped after.
# Usage: benches/overrun-attribution.sh [SCENARIO]   (default E; prints the scrapes; docs/benchmarks.md shows how to
# read them). STORES="sqlite pg off ..." sets the runs and their order (default: sqlite pg sqlite pg; off is SQLite
# with no periodic snapshot during the run, the baseline without storage writes).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${CARGO_TARGET_DIR:-$ROOT/target}/release/orrery
SC=$ROOT/benches/scenarios/sector-sync-${1:-E}.toml
scrape() { curl -s http://127.0.0.1:7870/metrics | grep -E '^orrery_(tick_overruns_total|tick_overruns_during_write_total|snapshot_write_seconds_sum|snapshot_write_seconds_count|ticks_total) ' ; date +%s.%N; }
for store in ${STORES:-sqlite pg sqlite pg}; do
  extra=()
  # "off": SQLite with no periodic snapshot in the run (the baseline without storage writes).
  if [ $store = off ]; then extra=(--snapshot-interval 100000); fi
  if [ $store = pg ]; then
    db=orrery_attr_$RANDOM; psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $db"
    extra=(--database-url postgres://postgres@127.0.0.1:5432/$db)
    for p in $(pgrep -u postgres); do taskset -acp 1 $p >/dev/null 2>&1; done
  fi
  dir=$(mktemp -d)
  env RUST_LOG=warn taskset -c 0 $B serve --bind 127.0.0.1:7870 --data-dir $dir --allow-spawn-choice --guest-logins-per-minute 0 --max-msgs-per-sec 100 --msg-burst 200 --regions 2 --sectors-per-region 30 "${extra[@]}" > /dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:7870/readyz && break; sleep 0.1; done
  sleep 3
  echo "== $store start"; scrape
  taskset -c 1 $B loadtest --scenario $SC --server 127.0.0.1:7870 --server-pid $pid --no-progress > /dev/null 2>&1
  echo "== $store end"; scrape
  kill -TERM $pid; wait $pid
  if [ $store = pg ]; then
    for p in $(pgrep -u postgres); do taskset -acp 0-1 $p >/dev/null 2>&1; done
    psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $db with (force)"
  fi
  rm -rf $dir
  sleep 5
done
echo ALLDONE
