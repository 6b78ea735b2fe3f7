#!/usr/bin/env bash
# logs-small against a release build pinned to core 0, wrk on core 1, for 8 s after a 2 s
# warm-up: requests a second, the server's CPU time per request (from /proc), and how
# often it called the volume bank's acquire. TOKENS_FILE config/tokens-volume.json counts
# account 1001's day; REDIS_URL makes the bank Redis.
#   loadtest/volume-rate.sh BINARY TOKENS_FILE [REDIS_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1; tok=$2; redis=${3:-}
rm -rf /tmp/rb; mkdir -p /tmp/rb
env ${redis:+TOLLGATE_VOLUME__REDIS_URL=$redis} TOLLGATE_TOKENS__PATH=$tok TOLLGATE_TOKENS__STATE_DIR=/tmp/rb taskset -c 0 "$bin" serve --config config/bench.toml >/tmp/rb/log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fsS -o /dev/null -X POST -d '{}' "http://127.0.0.1:8070/?token=sampleLogsToken0000000000000001" 2>/dev/null && break; sleep 0.1; done
taskset -c 1 wrk -t1 -c32 -d2s -s loadtest/wrk/logs-small.lua http://127.0.0.1:8070 >/dev/null
calls() { curl -s 127.0.0.1:9464/metrics | awk '/^tollgate_volume_bank_calls_total\{op="acquire",outcome="ok"\}/ {print $2}'; }
c0=$(calls); t0=$(awk '{print $14+$15}' /proc/$pid/stat)
out=$(taskset -c 1 wrk -t1 -c32 -d8s -s loadtest/wrk/logs-small.lua http://127.0.0.1:8070)
t1=$(awk '{print $14+$15}' /proc/$pid/stat); c1=$(calls)
req=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
echo "$tok ${redis:+redis} rps=$rps cpu_us_per_req=$(python3 -c "print(round(($t1-$t0)*10000/$req,2))") acquires_per_s=$(python3 -c "print(round((${c1:-0}-${c0:-0})/8,2))")"
kill $pid; wait $pid 2>/dev/null || true
