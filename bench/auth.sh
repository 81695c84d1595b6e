#!/usr/bin/env bash
# Identity benchmark: token verification throughput and sign-in cost, each beside a baseline
# measured in the same run (OpenSSL's raw Ed25519 verify; catalogue reads without a sign-in
# flood). Loopback only; every load is bounded in time. Needs wrk (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p comptoir
cargo build --release --locked -p identity --example auth_bench
exec python3 bench/auth.py "$@"
