#!/usr/bin/env bash
# Web pages benchmark (issue 5): server-rendered catalogue and product pages beside nginx serving
# the same HTML as static files, in the same run; page weight (HTML + CSS + JS) of each page.
# Loopback only; every load is bounded in time. Needs wrk and nginx (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --locked -p comptoir
exec python3 bench/web.py "$@"
