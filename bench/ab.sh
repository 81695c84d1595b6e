#!/usr/bin/env bash
# A/B of this build against another one on the checkout scenario, one process on PostgreSQL,
# the two alternating (bench/ab.py): the way to tell a few per cent on a shared, noisy machine.
# BENCH_AB_BIN names the other build's binary, e.g. a worktree of an older commit built with
# `cargo build --release --locked --bin comptoir`. Loopback only; ~1 minute per pair of points.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_AB_BIN:?set BENCH_AB_BIN to the other build's target/release/comptoir}"
if ! command -v pgbench >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "installing postgresql-client"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
fi
cargo build --release --locked -p comptoir
cargo build --release --locked -p comptoir --example loadgen
exec python3 bench/ab.py "$@"
