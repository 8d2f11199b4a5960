#!/usr/bin/env bash
# Orrery's whole test suite: the one command README's quickstart names and CI runs.
#
# Every test of every crate (unit, actor, end-to-end against a real `orrery` server on 127.0.0.1:0, the RFC 6455
# conformance module, the fuzz-corpus replay) and a build of the benches. No test talks to PostgreSQL or Redis yet
# (the embedded SQLite store is the only backend), so this script provisions neither; the PostgreSQL backend's tests
# will make it install and start PostgreSQL when they land.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

# The example client in examples/python is exercised by the end-to-end tests.
if ! command -v python3 >/dev/null 2>&1; then
  say "installing python3 from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq python3 >/dev/null \
    || { printf 'FATAL: python3 is missing and could not be installed\n' >&2; exit 1; }
fi

say "running the test suite"
cargo test --workspace --all-targets --locked
