#!/usr/bin/env bash
# Instructions per request: runs a release build under callgrind, drives it
# with wrk for a while once it is up, and prints the instructions counted while the load
# ran divided by the requests wrk completed. Deterministic enough (±1 %) to compare two
# builds on a busy machine, where timings are not.
#   loadtest/instructions.sh [BINARY] [SCENARIO] [CONNS] [SECONDS]
#   e.g. loadtest/instructions.sh target/release/tollgate logs-small 32 10
# SCENARIO: logs-small | logs-bulk | otlp-traces-pb | ceiling (examples/ceiling.rs with logs-small).
# ACK=disk measures ack = "disk". The profile stays in $OUT (default /tmp/cg) for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/tollgate}
scenario=${2:-logs-small}
conns=${3:-32}
secs=${4:-10}
out=${OUT:-/tmp/cg}
rm -rf "$out"; mkdir -p "$out/state"
mkdir -p loadtest/data
[ -f loadtest/data/traces-20.pb ] || python3 loadtest/traces-pb.py loadtest/data/traces-20.pb 20
if [ "$scenario" = ceiling ]; then
  cmd=("$bin" 127.0.0.1:8080); url=http://127.0.0.1:8080; scenario=logs-small
else
  export TOLLGATE_FORWARD__ACK="${ACK:-memory}" TOLLGATE_FORWARD__SPOOL_DIR="$out/state/spool" \
    TOLLGATE_TOKENS__STATE_DIR="$out/state"
  cmd=("$bin" serve --config config/bench.toml)
  url=http://127.0.0.1:8070
fi
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out" \
  "${cmd[@]}" >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -fsS -o /dev/null -X POST -d '{}' "$url/?token=sampleLogsToken0000000000000001" 2>/dev/null && break; sleep 0.2; done
# Warm up (connections, caches, lazy statics), then count.
wrk -t1 -c"$conns" -d3s -s "loadtest/wrk/$scenario.lua" "$url" >/dev/null 2>&1
callgrind_control -i on "$pid" >/dev/null 2>&1
callgrind_control -z "$pid" >/dev/null 2>&1
BODY=loadtest/data/traces-20.pb SUMMARY="$out/wrk.json" wrk -t1 -c"$conns" -d"${secs}s" \
  -s "loadtest/wrk/$scenario.lua" "$url" >/dev/null 2>&1
callgrind_control -i off "$pid" >/dev/null 2>&1
callgrind_control -d "$pid" >/dev/null 2>&1
sleep 1
kill -TERM $pid; wait $pid 2>/dev/null || true
python3 - "$out" <<'PY'
import glob, json, sys
out = sys.argv[1]
requests = json.load(open(f"{out}/wrk.json"))["requests"]
total = 0
for f in glob.glob(f"{out}/callgrind.out*"):  # the explicit dump's file, not the exit's
    text = open(f).read()
    if "Trigger: dump" in text:
        total += next(int(l.split()[1]) for l in text.splitlines() if l.startswith("totals:"))
print(f"{requests} requests, {total:,} instructions, {total / max(requests, 1):,.0f} per request")
PY
