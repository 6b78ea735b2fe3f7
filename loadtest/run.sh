#!/usr/bin/env bash
# Side-by-side load test (issue #6): tollgate (config/bench.toml, blackhole sink) against the
# ceiling (examples/ceiling.rs: a bare hyper server that reads the body and answers 200), in
# one run on this machine, alternating which goes first. Servers are pinned to core 0, the
# load generator to core 1; traffic stays on loopback; every run is bounded by DURATION and
# killed 60 s after it should have ended, so the script stops by itself (~5 minutes).
#
# Generators: wrk (a C event loop) for logs-small and invalid-tokens, where k6's JavaScript
# costs more per request than either server and would be the bottleneck; k6 for logs-bulk and
# otlp-traces, where the server is. The CPU time each server used is read from /proc, so the
# table shows cost per request (µs of server CPU) as well as rate — the comparison that holds
# whichever side is saturated.
#
# Rows: logs-small with ack = "memory" and ack = "disk"; invalid-tokens with the file source
# and with the control_plane source (embedded control plane; its miss budget is checked);
# logs-bulk against the in-process criterion number for the same body
# (`cargo bench --bench ingest -- bulk_path/loadtest_body`, run here with --quick unless
# SKIP_CRITERION=1); otlp-traces.
#
#   loadtest/run.sh                 # DURATION=15s CONNS=64 VUS_BULK=8 VUS_OTLP=32
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
VUS_BULK=${VUS_BULK:-8}
VUS_OTLP=${VUS_OTLP:-32}
MISS_PER_SEC=50
. loadtest/lib.sh
require k6 wrk taskset curl python3
build
mkdir -p loadtest/data
if [ ! -f loadtest/data/bulk.ndjson.gz ]; then
  python3 - <<'PY'
import gzip, json
lines = []
for i in range(4000):
    lines.append(json.dumps({"@timestamp": "2026-11-24T00:00:%02d.%03dZ" % (i % 60, i % 1000),
        "level": ["info", "warn", "error"][i % 3], "service": "checkout-%d" % (i % 17),
        "host": "web-%02d" % (i % 40), "message": "GET /api/v1/cart/%d 200 %dms user=%06x request_id=%032x" % (i, i % 97, i * 7919, i * 104729),
        "latency_ms": i % 97, "bytes": 1000 + i}, separators=(",", ":")))
raw = ("\n".join(lines) + "\n").encode()
open("loadtest/data/bulk.ndjson.gz", "wb").write(gzip.compress(raw))
open("loadtest/data/bulk.ndjson.size", "w").write(str(len(raw)))
PY
fi
BULK_RAW=$(cat loadtest/data/bulk.ndjson.size)

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

criterion="-"
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
  echo "criterion: bulk_path/loadtest_body (--quick)" >&2
  cargo bench --quiet --bench ingest -- --quick bulk_path/loadtest_body >"$work/criterion.txt" 2>&1 || true
  est=target/criterion/bulk_path/loadtest_body/new/estimates.json
  [ -f "$est" ] && criterion=$(python3 -c "import json; print(json.load(open('$est'))['mean']['point_estimate'])")
fi

start() { # $1 = tollgate | ceiling, $2 = variant (memory | disk | control_plane)
  if [ "$1" = tollgate ]; then
    rm -rf "$work/state"; mkdir -p "$work/state"
    local -a env=(TOLLGATE_FORWARD__ACK=memory TOLLGATE_TOKENS__STATE_DIR="$work/state")
    case $2 in
      disk) env+=(TOLLGATE_FORWARD__ACK=disk TOLLGATE_FORWARD__SPOOL_DIR="$work/state/spool") ;;
      control_plane) env+=(TOLLGATE_CONTROL_PLANE__EMBEDDED=true TOLLGATE_CONTROL_PLANE__LISTEN=127.0.0.1:8091
        TOLLGATE_CONTROL_PLANE__DATABASE_URL="sqlite://$work/state/control.db"
        TOLLGATE_CONTROL_PLANE__ADMIN_SECRET=run-admin-secret-000000001
        TOLLGATE_CONTROL_PLANE__FEED_SECRET=run-feed-secret-0000000001
        TOLLGATE_TOKENS__SOURCE=control_plane TOLLGATE_TOKENS__URL=http://127.0.0.1:8091
        TOLLGATE_TOKENS__FEED_SECRET=run-feed-secret-0000000001
        TOLLGATE_TOKENS__MISS_LOOKUPS_PER_SEC=$MISS_PER_SEC) ;;
    esac
    env "${env[@]}" taskset -c 0 ./target/release/tollgate serve --config config/bench.toml >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8070
    wait_for tollgate 10 curl -fsS 127.0.0.1:9464/readyz && return
  else
    taskset -c 0 ./target/release/examples/ceiling 127.0.0.1:8080 >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8080
    wait_for ceiling 10 curl -fsS -X POST -d x "$url/" && return
  fi
  cat "$work/server.log" >&2; exit 1
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

measure() { # $1 = scenario, $2 = tollgate | ceiling, $3 = variant
  local name=$2 variant=${3:-memory} ticks extra=- budget_secs
  [ "$2" = tollgate ] && name="tollgate-$variant"
  start "$2" "$variant"
  ticks=$(cpu_ticks "$pid")
  budget_secs=$(date +%s.%N)
  local limit=$(( ${DURATION%s} + 60 ))
  case $1 in
    logs-small|invalid-tokens)
      SUMMARY="$work/$1-$name.json" timeout -k 5 "$limit" \
        taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -s "loadtest/wrk/$1.lua" "$url" >/dev/null 2>&1 || true ;;
    *)
      local vus=$VUS_BULK; [ "$1" = otlp-traces ] && vus=$VUS_OTLP
      timeout -k 5 "$limit" taskset -c 1 k6 run --quiet -e TARGET="$url" -e VUS="$vus" \
        -e DURATION="$DURATION" -e BULK="$PWD/loadtest/data/bulk.ndjson.gz" \
        -e SUMMARY="$work/$1-$name.json" "loadtest/$1.js" >/dev/null 2>&1 || true ;;
  esac
  ticks=$(( $(cpu_ticks "$pid") - ticks ))
  local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  if [ "$variant" = disk ]; then
    # The mean group commit, in ms.
    extra=$(awk -v s="$(metric 127.0.0.1:9464 tollgate_spool_fsync_seconds_sum)" \
      -v c="$(metric 127.0.0.1:9464 tollgate_spool_fsync_seconds_count)" \
      'BEGIN {if (c > 0) printf "%.3f", 1000 * s / c; else print "-"}')
  elif [ "$variant" = control_plane ]; then
    # Lookups the gateway sent (all results but "limited", which were refused without
    # asking), the control plane's own count, and the budget for the time
    # since the gateway started (rate × seconds + a one-second burst).
    local secs; secs=$(python3 -c "import time; print(time.time() - $budget_secs + 2)")
    extra="$(( $(metric 127.0.0.1:9464 tollgate_token_miss_lookups_total) - $(metric 127.0.0.1:9464 'tollgate_token_miss_lookups_total{result="limited"}') )),$(metric 127.0.0.1:8091 tollgate_control_feed_lookups_total),$(python3 -c "print(int($MISS_PER_SEC * ($secs + 1)))")"
  fi
  stop
  echo "$1 $name $rss $ticks $extra" >>"$work/rows"
}

echo "tollgate vs ceiling, $DURATION per run, servers on core 0, wrk/k6 on core 1" >&2
measure logs-small ceiling
measure logs-small tollgate memory
measure logs-small tollgate disk
measure invalid-tokens tollgate memory
measure invalid-tokens ceiling
measure invalid-tokens tollgate control_plane
measure logs-bulk tollgate memory
measure logs-bulk ceiling
measure otlp-traces ceiling
measure otlp-traces tollgate memory

python3 - "$work" "$BULK_RAW" "$(getconf CLK_TCK)" "$criterion" "${DURATION%s}" "$MISS_PER_SEC" <<'PY'
import json, sys
work, bulk_raw, tck, criterion = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
duration, miss_per_sec = float(sys.argv[5]), sys.argv[6]
rows = {}
for line in open(f"{work}/rows"):
    sc, srv, kib, ticks, extra = line.split()
    rows[(sc, srv)] = (int(kib) / 1024, int(ticks) / tck, extra)

def stats(sc, srv):
    """rate, MB/s (logs-bulk only), p50 ms, p99 ms, failed (fraction of answers that are not what is expected)."""
    s = json.load(open(f"{work}/{sc}-{srv}.json"))
    if "metrics" not in s:  # wrk (loadtest/wrk/summary.lua)
        failed = (s["non_2xx"] + s["read_errors"] + s["write_errors"] + s["timeouts"]) / max(s["requests"], 1)
        if sc == "invalid-tokens" and srv.startswith("tollgate"):
            failed = 1 - s["non_2xx"] / max(s["requests"], 1)  # every answer must be a 401
        return s["rate"], None, s["p50_ms"], s["p99_ms"], failed, s["requests"]
    m = s["metrics"]
    v = lambda k: m[k].get("values", m[k])
    rate = v("http_reqs")["rate"]
    dur = v("http_req_duration")
    failed = v("http_req_failed").get("rate", 0) if "http_req_failed" in m else 0
    mbs = rate * bulk_raw / 1e6 if sc == "logs-bulk" else None
    return rate, mbs, dur["med"], dur["p(99)"], failed, v("http_reqs")["count"]

print(f"{'scenario':<30}{'req/s t/c':>17}{'ratio':>7}{'CPU µs/req t/c':>17}{'cores t/c':>11}"
      f"{'p50 ms t/c':>14}{'p99 ms t/c':>14}{'RSS MiB t/c':>14}{'bad':>7}")
order = [("logs-small", "memory"), ("logs-small", "disk"), ("invalid-tokens", "memory"),
         ("invalid-tokens", "control_plane"), ("logs-bulk", "memory"), ("otlp-traces", "memory")]
for sc, variant in order:
    t, c = stats(sc, f"tollgate-{variant}"), stats(sc, "ceiling")
    (trss, tcpu, _), (crss, ccpu, _) = rows[(sc, f"tollgate-{variant}")], rows[(sc, "ceiling")]
    label = f"{sc} ({'ack ' + variant if sc == 'logs-small' else variant if sc == 'invalid-tokens' else 'ack memory'})"
    print(f"{label:<30}{t[0]:>9.0f}/{c[0]:<7.0f}{t[0]/c[0]:>7.2f}"
          f"{1e6*tcpu/max(t[5],1):>9.1f}/{1e6*ccpu/max(c[5],1):<7.1f}{tcpu/duration:>5.2f}/{ccpu/duration:<5.2f}"
          f"{t[2]:>7.2f}/{c[2]:<6.2f}{t[3]:>7.2f}/{c[3]:<6.2f}{trss:>7.1f}/{crss:<6.1f}{t[4]:>7.4f}")
mem, disk = stats("logs-small", "tollgate-memory"), stats("logs-small", "tollgate-disk")
print(f"\nlogs-small: tollgate/ceiling req/s {mem[0] / stats('logs-small', 'ceiling')[0]:.2f} (goal >= 0.85), "
      f"p99 {mem[3] / stats('logs-small', 'ceiling')[3]:.2f} x the ceiling's (goal <= 1.5)")
print(f"ack disk / memory = {disk[0] / mem[0]:.2f} (goal >= 0.8); "
      f"mean group commit {rows[('logs-small', 'tollgate-disk')][2]} ms")
inv, cp = stats("invalid-tokens", "tollgate-memory"), stats("invalid-tokens", "tollgate-control_plane")
lookups, cp_count, budget = rows[("invalid-tokens", "tollgate-control_plane")][2].split(",")
print(f"invalid-tokens: {inv[0]:.0f} 401/s (file source), {cp[0]:.0f} 401/s (control_plane source) vs "
      f"logs-small {mem[0]:.0f} req/s (goal >=); control-plane lookups {lookups} "
      f"(control plane counted {cp_count}), budget {budget} ({miss_per_sec}/s)")
bulk = stats("logs-bulk", "tollgate-memory")
bulk_cores = rows[("logs-bulk", "tollgate-memory")][1] / duration
per_core = bulk[1] / bulk_cores
if criterion != "-":
    crit = bulk_raw / (float(criterion) / 1e9) / 1e6
    print(f"logs-bulk: {bulk[1]:.0f} MB/s uncompressed on {bulk_cores:.2f} cores = {per_core:.0f} MB/s per core; "
          f"criterion bulk_path/loadtest_body {crit:.0f} MB/s -> {per_core / crit:.2f} (goal >= 0.75)")
else:
    print(f"logs-bulk: {bulk[1]:.0f} MB/s uncompressed on {bulk_cores:.2f} cores = {per_core:.0f} MB/s per core")
print("bad: the fraction of tollgate's answers that were not the expected status (200; 401 for invalid-tokens).")
PY
