#!/usr/bin/env bash
# Gateway benchmark (issue 13): a catalogue read straight from the catalog process, through the
# gateway and through nginx as a plain reverse proxy, back to back (wrk); then the bytes on the
# wire with each encoding. Loopback only; every load is bounded in time (~2 minutes).
# Needs wrk and nginx (installed when missing).
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
exec python3 bench/gateway.py "$@"
