#!/usr/bin/env bash
# A/B of gateway builds on logs-small: starts each binary in turn with
# config/bench.toml, pinned to core 0 from birth, warms it up with wrk for 2 s, drives it
# with wrk -t1 on core 1 for SECS, and prints its rate and its CPU per request (user +
# system, from /proc). Three rounds, alternating builds, so drift of the VM shows as
# spread rather than as a difference. Loopback only.
#   loadtest/ab.sh CONNS SECS BINARY...      e.g. ACK=disk loadtest/ab.sh 256 8 old/tollgate new/tollgate
# ACK=disk (or downstream) sets forward.ack; the spool goes to a fresh temporary directory.
# A BINARY named `ceiling` (target/release/examples/ceiling, the bare hyper server) is
# started on the same address, so tollgate's latency is read against hyper's in one run.
# Each line gives the rate, the CPU a request and wrk's p50 and p99; the last lines give
# each build's median over the rounds and, with a ceiling in the run, its p99 median
# against the ceiling's: on a shared VM one round's p99 moves by 2x for the bare server
# itself, so the run's figure is the median round, not the worst or the best.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
require wrk taskset curl python3
conns=$1 secs=$2
shift 2
url=http://127.0.0.1:8070
pid=""
results=$(mktemp)
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -f "$results"' EXIT
for round in 1 2 3; do
  for bin in "$@"; do
    dir=$(mktemp -d)
    if [ "$(basename "$bin")" = ceiling ]; then
      taskset -c 0 "$bin" 127.0.0.1:8070 >"$dir/server.log" 2>&1 &
    else
      TOLLGATE_FORWARD__ACK=${ACK:-memory} TOLLGATE_FORWARD__SPOOL_DIR="$dir/spool" \
        TOLLGATE_TOKENS__STATE_DIR="$dir" taskset -c 0 "$bin" serve --config config/bench.toml \
        >"$dir/server.log" 2>&1 &
    fi
    pid=$!
    wait_for "$bin" 10 curl -fsS -o /dev/null -X POST -d '{}' "$url/?token=sampleLogsToken0000000000000001"
    taskset -c 1 wrk -t1 -c"$conns" -d2s -s loadtest/wrk/logs-small.lua "$url" >/dev/null 2>&1
    before=$(cpu_ticks "$pid")
    summary=$(SUMMARY=/dev/stdout taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" \
      -s loadtest/wrk/logs-small.lua "$url" 2>/dev/null | grep '^{')
    after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 -c "import json, sys; t, s, hz = map(float, sys.argv[1:4]); w = json.loads(sys.argv[4]); r = w['rate']; print(f'round $round  {\"$bin\"}  {r:,.0f} req/s  {t / hz * 1e6 / (r * s):.1f} µs CPU a request  p50 {w[\"p50_ms\"]:.3f} ms  p99 {w[\"p99_ms\"]:.3f} ms')" \
      "$((after - before))" "$secs" "$(getconf CLK_TCK)" "$summary" | tee -a "$results"
    rm -rf "$dir"
  done
done
python3 - "$results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"round \d+\s+(\S+)\s+([\d,]+) req/s\s+([\d.]+) µs.*p99 ([\d.]+) ms", line)
    if m:
        runs.setdefault(m[1], []).append((float(m[2].replace(",", "")), float(m[3]), float(m[4])))
ceiling = next((b for b in runs if b.endswith("/ceiling")), None)
for b, rounds in runs.items():
    rate, cpu, p99 = (statistics.median(r[i] for r in rounds) for i in range(3))
    vs = ""
    if ceiling and b != ceiling:
        vs = f"  p99 {p99 / statistics.median(r[2] for r in runs[ceiling]):.2f} x the ceiling's"
    print(f"median  {b}  {rate:,.0f} req/s  {cpu:.1f} µs CPU a request  p99 {p99:.3f} ms{vs}")
PY
