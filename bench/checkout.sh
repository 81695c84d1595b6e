#!/usr/bin/env bash
# Checkout and flash-sale benchmark (issue 4; PERFORMANCE.md G1, G2, G13): release build of
# Comptoir and of its load generator (crates/comptoir/examples/loadgen.rs), then
# bench/checkout.py: baselines measured in the same run (pgbench checkout transaction on the same
# PostgreSQL, python3 sqlite3 with the same three statements), then Comptoir on SQLite (FULL,
# NORMAL) and on PostgreSQL. Loopback only; every load is bounded in time (~5 minutes).
# Needs PostgreSQL reachable at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres,
# a role allowed to create databases; uses the scratch databases comptoir_bench and
# comptoir_bench_calib, dropped and recreated) and pgbench/psql (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pgbench >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "installing postgresql-client"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
fi
cargo build --release --locked -p comptoir
cargo build --release --locked -p comptoir --example loadgen
exec python3 bench/checkout.py "$@"
