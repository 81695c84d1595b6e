#!/usr/bin/env bash
# G12 (PERFORMANCE.md): a flash sale on PostgreSQL with the test provider answering at once, then
# after 200 ms per call (authorise and capture), like a PSP across the internet. If the checkout
# held a database lock across a provider call, the sale rate would fall to a few per second;
# without one it is bounded by users ÷ checkout time. Needs a release build (bench/checkout.sh
# builds it) and PostgreSQL on 127.0.0.1:5432 (scratch database comptoir_g12). ~2 minutes.
set -u
cd "$(dirname "$0")/.."
B=target/release/comptoir; L=target/release/examples/loadgen
run() {
  lat=$1; dir=${TMPDIR:-/tmp}/comptoir-g12-$lat; rm -rf $dir; mkdir -p $dir
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS comptoir_g12" -c "CREATE DATABASE comptoir_g12" 2>/dev/null
  export COMPTOIR_LOG__LEVEL=warn COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE=0 COMPTOIR_RATE_LIMIT__PER_ACCOUNT_PER_MINUTE=0 COMPTOIR_PAYMENTS__TEST_LATENCY_MS=$lat
  for s in INVENTORY ORDERS PAYMENTS CART; do export COMPTOIR_${s}__DATABASE_URL=postgres://postgres@127.0.0.1:5432/comptoir_g12; done
  $B --data-dir $dir/data migrate --target commerce >/dev/null
  $B --data-dir $dir/data serve --bind 127.0.0.1:18700 > $dir/out.txt 2> $dir/err.txt &
  pid=$!
  for i in $(seq 1 200); do curl -sf 127.0.0.1:18700/readyz >/dev/null && break; sleep 0.2; done
  pw=$(grep direction@ $dir/out.txt | awk '{print $NF}')
  for c in 32 64 128; do
    $L --base http://127.0.0.1:18700 --scenario flash --concurrency $c --duration 8 --email direction@breizhsport.example --password "$pw" --setup --stock 1500 --server-pid $pid \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print('latency', $lat, 'ms  c$c  sale rate', d['sale_rate_per_s'], '/s  orders', d['orders_total'], ' checkout p50/p99', d['checkout_ms']['p50'], d['checkout_ms']['p99'], ' statuses', d['by_status_all'], ' invariants ok', d['invariants']['ok'])"
  done
  kill $pid; wait $pid 2>/dev/null
}
uptime
run 0
run 200
uptime
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS comptoir_g12"
