#!/usr/bin/env bash
# Side-by-side load test: tollgate (config/bench.toml, blackhole sink)
# against same-run peers on this machine: nginx (`return 200`, one worker, the same
# client_max_body_size), the ceiling (examples/ceiling.rs: a bare hyper server that reads
# the body and answers 200) and, for OTLP, Rotel (the Rust OpenTelemetry collector, PyPI
# `rotel`, blackhole exporter; installed into loadtest/data/rotel-venv on first use).
# Every server is pinned to core 0 from birth (all its threads), the load generator to
# core 1; traffic stays on loopback; every run is bounded by DURATION and killed 60 s after
# it should have ended (the whole script takes about 8 minutes).
#
# Generators: wrk (a C event loop) for logs-small, invalid-tokens and OTLP protobuf, where
# k6's JavaScript costs more per request than the servers; k6 for logs-bulk and OTLP JSON,
# where the server is the bottleneck. The CPU time each server used is read from /proc, so
# the table shows cost per request (µs of server CPU) as well as rate.
#
# Rows: logs-small at 32 and 256 connections (nginx, ceiling, tollgate ack memory and ack
# disk); invalid-tokens with the file source and the control_plane source (its miss
# budget is checked); logs-bulk against the in-process criterion number for the same body
# (`cargo bench --bench ingest -- bulk_path/loadtest_body`, run here with --quick unless
# SKIP_CRITERION=1); OTLP traces protobuf of 20 spans (Rotel, ceiling, tollgate) and OTLP
# JSON of 50 spans (ceiling, tollgate). The fdatasync latency of a 4 KiB append on the
# spool's file system is measured in the same run, for the ack = "disk" bound.
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
require k6 wrk taskset curl python3 nginx
build
mkdir -p loadtest/data
[ -f loadtest/data/traces-20.pb ] || python3 loadtest/traces-pb.py loadtest/data/traces-20.pb 20
if [ ! -x loadtest/data/rotel-venv/bin/python ] || ! loadtest/data/rotel-venv/bin/python -c 'import rotel' 2>/dev/null; then
  echo "installing rotel (PyPI) into loadtest/data/rotel-venv" >&2
  python3 -m venv loadtest/data/rotel-venv
  loadtest/data/rotel-venv/bin/pip install --quiet 'rotel==0.0.1a15'
fi
ROTEL="$(loadtest/data/rotel-venv/bin/python -c 'import os, rotel; print(os.path.dirname(rotel.__file__))')/rotel-agent"
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

start() { # $1 = tollgate | ceiling | nginx | rotel, $2 = variant (memory | disk | control_plane)
  case $1 in
  tollgate)
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
    wait_for tollgate 10 curl -fsS 127.0.0.1:9464/readyz && return ;;
  ceiling)
    taskset -c 0 ./target/release/examples/ceiling 127.0.0.1:8080 >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8080
    wait_for ceiling 10 curl -fsS -X POST -d x "$url/" && return ;;
  nginx)
    # One process (no master), one worker's event loop; bodies are read and discarded.
    mkdir -p "$work/nginx"
    cat >"$work/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_max_body_size 10m;
  client_body_temp_path $work/nginx/body;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:8081 backlog=4096; location / { return 200; } }
}
NGINX
    taskset -c 0 nginx -c "$work/nginx.conf" >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8081
    wait_for nginx 10 curl -fsS -X POST -d x "$url/" && return ;;
  rotel)
    taskset -c 0 "$ROTEL" start --otlp-http-endpoint 127.0.0.1:4318 --otlp-grpc-endpoint 127.0.0.1:4317 \
      --exporter blackhole >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:4318
    wait_for rotel 10 curl -fsS -X POST -H 'Content-Type: application/x-protobuf' \
      --data-binary @loadtest/data/traces-20.pb "$url/v1/traces" && return ;;
  esac
  cat "$work/server.log" >&2; exit 1
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

measure() { # $1 = scenario, $2 = server, $3 = variant (tollgate), $4 = connections (wrk)
  local name=$2 variant=${3:-memory} conns=${4:-$CONNS} ticks extra=- budget_secs
  [ "$2" = tollgate ] && name="tollgate-$variant"
  start "$2" "$variant"
  ticks=$(cpu_ticks "$pid")
  budget_secs=$(date +%s.%N)
  local limit=$(( ${DURATION%s} + 60 ))
  case $1 in
    logs-small|invalid-tokens|otlp-traces-pb)
      BODY=loadtest/data/traces-20.pb SUMMARY="$work/$1-$conns-$name.json" timeout -k 5 "$limit" \
        taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" -s "loadtest/wrk/$1.lua" "$url" >/dev/null 2>&1 || true ;;
    *)
      local vus=$VUS_BULK; [ "$1" = otlp-traces ] && vus=$VUS_OTLP
      conns=$vus
      timeout -k 5 "$limit" taskset -c 1 k6 run --quiet -e TARGET="$url" -e VUS="$vus" \
        -e DURATION="$DURATION" -e BULK="$PWD/loadtest/data/bulk.ndjson.gz" \
        -e SUMMARY="$work/$1-$conns-$name.json" "loadtest/$1.js" >/dev/null 2>&1 || true ;;
  esac
  ticks=$(( $(cpu_ticks "$pid") - ticks ))
  local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  if [ "$variant" = disk ] && [ "$2" = tollgate ]; then
    # The mean group commit, in ms, and the mean requests per group.
    extra=$(awk -v s="$(metric 127.0.0.1:9464 tollgate_spool_fsync_seconds_sum)" \
      -v c="$(metric 127.0.0.1:9464 tollgate_spool_fsync_seconds_count)" \
      'BEGIN {if (c > 0) printf "%.3f,%d", 1000 * s / c, c; else print "-,0"}')
  elif [ "$variant" = control_plane ]; then
    # Lookups the gateway sent (all results but "limited", which were refused without
    # asking), the control plane's own count, and the budget for the time
    # since the gateway started (rate × seconds + a one-second burst).
    local secs; secs=$(python3 -c "import time; print(time.time() - $budget_secs + 2)")
    extra="$(( $(metric 127.0.0.1:9464 tollgate_token_miss_lookups_total) - $(metric 127.0.0.1:9464 'tollgate_token_miss_lookups_total{result="limited"}') )),$(metric 127.0.0.1:8091 tollgate_control_feed_lookups_total),$(python3 -c "print(int($MISS_PER_SEC * ($secs + 1)))")"
  fi
  stop
  echo "$1 $conns $name $rss $ticks $extra" >>"$work/rows"
}

# fdatasync of a 4 KiB append where the spool lives, for the ack = "disk" bound.
fsync_ms=$(python3 - "$work" <<'PY'
import os, statistics, sys, time
fd = os.open(f"{sys.argv[1]}/fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
lat = []
for _ in range(400):
    t = time.perf_counter(); os.write(fd, b"x" * 4096); os.fdatasync(fd); lat.append(time.perf_counter() - t)
print(f"{1000 * statistics.median(lat):.3f}")
PY
)

echo "$DURATION per run, servers on core 0, wrk/k6 on core 1; fdatasync p50 $fsync_ms ms" >&2
for c in 32 256; do
  measure logs-small nginx - "$c"
  measure logs-small tollgate memory "$c"
  measure logs-small ceiling - "$c"
  measure logs-small tollgate disk "$c"
done
measure invalid-tokens tollgate memory
measure invalid-tokens ceiling
measure invalid-tokens tollgate control_plane
measure logs-bulk tollgate memory
measure logs-bulk ceiling
measure otlp-traces-pb rotel
measure otlp-traces-pb tollgate memory
measure otlp-traces-pb ceiling
measure otlp-traces tollgate memory
measure otlp-traces ceiling

python3 - "$work" "$BULK_RAW" "$(getconf CLK_TCK)" "$criterion" "${DURATION%s}" "$MISS_PER_SEC" "$fsync_ms" <<'PY'
import json, sys
work, bulk_raw, tck, criterion = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
duration, miss_per_sec, fsync_ms = float(sys.argv[5]), sys.argv[6], float(sys.argv[7])
rows, order = {}, []
for line in open(f"{work}/rows"):
    sc, conns, srv, kib, ticks, extra = line.split()
    rows[(sc, conns, srv)] = (int(kib) / 1024, int(ticks) / tck, extra)
    order.append((sc, conns, srv))

def stats(sc, conns, srv):
    """rate, MB/s (logs-bulk only), p50 ms, p99 ms, bad (fraction of unexpected answers), requests."""
    s = json.load(open(f"{work}/{sc}-{conns}-{srv}.json"))
    if "metrics" not in s:  # wrk (loadtest/wrk/summary.lua)
        bad = (s["non_2xx"] + s["read_errors"] + s["write_errors"] + s["timeouts"]) / max(s["requests"], 1)
        if sc == "invalid-tokens" and srv.startswith("tollgate"):
            bad = 1 - s["non_2xx"] / max(s["requests"], 1)  # every answer must be a 401
        return s["rate"], None, s["p50_ms"], s["p99_ms"], bad, s["requests"]
    m = s["metrics"]
    v = lambda k: m[k].get("values", m[k])
    rate = v("http_reqs")["rate"]
    dur = v("http_req_duration")
    bad = v("http_req_failed").get("rate", 0) if "http_req_failed" in m else 0
    mbs = rate * bulk_raw / 1e6 if sc == "logs-bulk" else None
    return rate, mbs, dur["med"], dur["p(99)"], bad, v("http_reqs")["count"]

def cpu_us(key):
    return 1e6 * rows[key][1] / max(stats(*key)[5], 1)

PEER = {"logs-small": "nginx", "otlp-traces-pb": "rotel"}
print(f"{'scenario':<22}{'conns':>6} {'server':<24}{'req/s':>10}{'x peer':>8}{'CPU µs/req':>11}{'cores':>7}"
      f"{'p50 ms':>8}{'p99 ms':>8}{'RSS MiB':>9}{'bad':>8}")
for sc, conns, srv in order:
    r = stats(sc, conns, srv)
    kib, cpu, _ = rows[(sc, conns, srv)]
    peer = (sc, conns, PEER.get(sc, "ceiling"))
    ratio = f"{r[0] / stats(*peer)[0]:.2f}" if peer in rows and peer != (sc, conns, srv) else "-"
    print(f"{sc:<22}{conns:>6} {srv:<24}{r[0]:>10.0f}{ratio:>8}{cpu_us((sc, conns, srv)):>11.1f}{cpu / duration:>7.2f}"
          f"{r[2]:>8.2f}{r[3]:>8.2f}{kib:>9.1f}{r[4]:>8.4f}")

print("\nTargets:")
for c in ("32", "256"):
    mem, ng, ce = (stats("logs-small", c, s) for s in ("tollgate-memory", "nginx", "ceiling"))
    print(f"  logs-small c{c}, ack memory: {mem[0] / ng[0]:.2f} x nginx (goal >= 0.85; ceiling {ce[0] / ng[0]:.2f}), "
          f"p99 {mem[3] / ng[3]:.2f} x nginx's (goal <= 1.5)")
d256, m256 = stats("logs-small", "256", "tollgate-disk"), stats("logs-small", "256", "tollgate-memory")
print(f"  logs-small c256, ack disk: {d256[0] / m256[0]:.2f} x ack memory (goal >= 0.8)")
d32 = stats("logs-small", "32", "tollgate-disk")
group_ms, groups = rows[("logs-small", "32", "tollgate-disk")][2].split(",")
cpu32 = cpu_us(("logs-small", "32", "tollgate-disk")) / 1000
bound = 32 / (fsync_ms + 32 * cpu32) * 1000
print(f"  logs-small c32, ack disk: {d32[0]:.0f} req/s = {d32[0] / bound:.2f} x the closed-loop bound "
      f"32 / (fdatasync {fsync_ms:.3f} ms + 32 x {cpu32 * 1000:.1f} µs) = {bound:.0f} req/s (goal >= 0.8); "
      f"mean group commit {group_ms} ms, {int(d32[5]) / max(int(groups), 1):.1f} requests a group")
pb = stats("otlp-traces-pb", "64", "tollgate-memory")
print(f"  otlp-traces protobuf (20 spans): {pb[0] / stats('otlp-traces-pb', '64', 'rotel')[0]:.2f} x Rotel (goal >= 2)")
bulk = stats("logs-bulk", "8", "tollgate-memory")
bulk_cores = rows[("logs-bulk", "8", "tollgate-memory")][1] / duration
per_core = bulk[1] / bulk_cores
if criterion != "-":
    crit = bulk_raw / (float(criterion) / 1e9) / 1e6
    print(f"  logs-bulk: {bulk[1]:.0f} MB/s uncompressed on {bulk_cores:.2f} cores = {per_core:.0f} MB/s per core; "
          f"criterion bulk_path/loadtest_body {crit:.0f} MB/s -> {per_core / crit:.2f} (goal >= 0.75)")
else:
    print(f"  logs-bulk: {bulk[1]:.0f} MB/s uncompressed on {bulk_cores:.2f} cores = {per_core:.0f} MB/s per core")
inv, cp = stats("invalid-tokens", "64", "tollgate-memory"), stats("invalid-tokens", "64", "tollgate-control_plane")
lookups, cp_count, budget = rows[("invalid-tokens", "64", "tollgate-control_plane")][2].split(",")
print(f"  invalid-tokens: {inv[0]:.0f} 401/s (file source), {cp[0]:.0f} 401/s (control_plane source); "
      f"control-plane lookups {lookups} (control plane counted {cp_count}), budget {budget} ({miss_per_sec}/s)")
print("x peer: nginx for logs-small, Rotel for otlp-traces-pb, the ceiling otherwise. "
      "bad: the fraction of answers that were not the expected status (2xx; 401 for tollgate's invalid-tokens).")
PY
