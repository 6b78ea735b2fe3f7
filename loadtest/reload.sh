#!/usr/bin/env bash
# Token-table reloads under load: logs-small (wrk) against a gateway whose
# control_plane source serves a 1,000,000-token table, once with the table left alone and
# once while a token changes every second — each change is a feed delta that the gateway
# applies to a copy of the shard it touches, swaps in, and persists (at most every 10 s).
# Prints p99 with and without reloads, alternating, ROUNDS times.
#
# The control plane runs as its own process (as in production), with a SQLite store seeded by
# loadtest/seed-control-db.py. Gateway on core 0; wrk, the control plane and the curl loop
# that makes the changes on core 1. Loopback only; stops by itself (~3 minutes at defaults).
#
#   loadtest/reload.sh            # TOKENS=1000000 ROUNDS=2 DURATION=20s CONNS=64
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS=${TOKENS:-1000000}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-20s}
CONNS=${CONNS:-64}
CP=127.0.0.1:8091
ADMIN=reload-admin-secret-0000001
FEED=reload-feed-secret-00000001
. loadtest/lib.sh
require wrk taskset curl python3
build

work=$(mktemp -d)
cp_pid="" gw_pid="" toggler=""
cleanup() {
  for p in $toggler $gw_pid $cp_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for (lib.sh), showing the servers' logs if it gives up.
ready_or_exit() { wait_for "$@" || { tail -20 "$work"/*.log >&2; exit 1; }; }

start_cp() {
  TOLLGATE_CONTROL_PLANE__LISTEN=$CP TOLLGATE_CONTROL_PLANE__DATABASE_URL="sqlite://$work/control.db" \
  TOLLGATE_CONTROL_PLANE__ADMIN_SECRET=$ADMIN TOLLGATE_CONTROL_PLANE__FEED_SECRET=$FEED \
    taskset -c 1 ./target/release/tollgate control-plane --config config/bench.toml >>"$work/cp.log" 2>&1 &
  cp_pid=$!
  ready_or_exit "control plane" 120 curl -fsS "http://$CP/healthz"
}

api() { # $1 = method, $2 = path, $3 = body, $4 = auth header
  curl -fsS -X "$1" "http://$CP$2" -H "$4" -H 'Content-Type: application/json' -d "$3"
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# 1. The store: one account whose token the load uses, a second token to toggle, then TOKENS
#    more from the seeder (written while the control plane is stopped).
start_cp
account=$(api POST /v1/admin/accounts '{"accountName":"reload","plan":"pro"}' "Authorization: Bearer $ADMIN")
token=$(json accountToken <<<"$account")
apikey=$(json apiToken <<<"$account")
toggle=$(api POST /v1/log-shipping/tokens '{"name":"toggle"}' "X-API-TOKEN: $apikey" | json id)
kill -TERM "$cp_pid"; wait "$cp_pid" || true
python3 loadtest/seed-control-db.py "$work/control.db" "$TOKENS"
start_cp

# 2. The gateway: bench config (blackhole sink, ack memory), tokens from the control plane.
gateway_metric() { metric 127.0.0.1:9464 "$1"; }
started=$(date +%s)
TOLLGATE_TOKENS__SOURCE=control_plane TOLLGATE_TOKENS__URL="http://$CP" \
TOLLGATE_TOKENS__FEED_SECRET=$FEED TOLLGATE_TOKENS__STATE_DIR="$work/state" \
  taskset -c 0 ./target/release/tollgate serve --config config/bench.toml >"$work/gateway.log" 2>&1 &
gw_pid=$!
table_full() { [ "$(gateway_metric tollgate_token_table_size)" -ge "$TOKENS" ]; }
ready_or_exit "gateway with the full table" 120 table_full
echo "gateway serving $(gateway_metric tollgate_token_table_size) tokens after $(( $(date +%s) - started )) s;" \
  "RSS $(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status") KiB" >&2

toggle_every_second() {
  local state=false
  while true; do
    api PUT "/v1/log-shipping/tokens/$toggle" "{\"enabled\":$state}" "X-API-TOKEN: $apikey" >/dev/null
    [ "$state" = false ] && state=true || state=false
    sleep 1
  done
}

run() { # $1 = quiet | reloading, $2 = round
  local reloads_before cpu_before
  reloads_before=$(gateway_metric 'tollgate_token_reloads_total{result="ok"}')
  cpu_before=$(cpu_ticks "$gw_pid")
  if [ "$1" = reloading ]; then
    taskset -c 1 bash -c "$(declare -f api toggle_every_second); CP=$CP toggle=$toggle apikey=$apikey toggle_every_second" &
    toggler=$!
  fi
  TOKEN=$token SUMMARY="$work/$1-$2.json" timeout -k 5 "$(( ${DURATION%s} + 30 ))" \
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -s loadtest/wrk/logs-small.lua "http://127.0.0.1:8070" >/dev/null
  if [ -n "$toggler" ]; then kill "$toggler"; wait "$toggler" 2>/dev/null || true; toggler=""; fi
  echo "$1 $2 $(( $(gateway_metric 'tollgate_token_reloads_total{result="ok"}') - reloads_before ))" \
    "$(( $(cpu_ticks "$gw_pid") - cpu_before ))" >>"$work/rows"
}

for round in $(seq "$ROUNDS"); do
  run quiet "$round"
  run reloading "$round"
done

python3 - "$work" "$(getconf CLK_TCK)" "$(gateway_metric tollgate_token_table_size)" <<'PY'
import json, statistics, sys
work, tck, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(f"logs-small (wrk) against a {int(size):,}-token table; reloads = feed deltas applied")
print(f"{'run':<14}{'reloads':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'non-2xx':>9}{'CPU/req µs':>12}")
p99 = {"quiet": [], "reloading": []}
for line in open(f"{work}/rows"):
    mode, rnd, reloads, ticks = line.split()
    s = json.load(open(f"{work}/{mode}-{rnd}.json"))
    p99[mode].append(s["p99_ms"])
    cpu = int(ticks) / tck * 1e6 / max(s["requests"], 1)
    print(f"{mode + ' ' + rnd:<14}{reloads:>8}{s['rate']:>10.0f}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}"
          f"{s['max_ms']:>9.1f}{s['non_2xx']:>9}{cpu:>12.1f}")
q, r = statistics.median(p99["quiet"]), statistics.median(p99["reloading"])
print(f"p99 with reloads / without = {r / q:.3f} (goal < 1.10), medians over the rounds")
PY
