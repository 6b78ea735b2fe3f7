#!/usr/bin/env bash
# Live tails against ingest: logs-small throughput with no tail open, and with
# 20 open — 10 on another account (its API token) and 10 on the ingesting account through
# a shared token whose filter (`level: error`) the load's lines do not match, as someone
# watching for errors would — in one run, alternating, so drift shows as spread. With
# BEFORE=path/to/tollgate (a build from before the tail existed), that build's rate with no
# tail open joins the rounds. The gateway (embedded control plane, blackhole sink,
# ack = "memory") is pinned to core 0; wrk and the tail clients (curl) to core 1.
#
#   loadtest/tail.sh          # DURATION=15s CONNS=64 ROUNDS=2: about 2 minutes (4 with BEFORE)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-2}
BEFORE=${BEFORE:-}
. loadtest/lib.sh
require wrk taskset curl python3
build

work=$(mktemp -d)
pid=""
tails=()
close_tails() {
  for t in "${tails[@]}"; do kill "$t" 2>/dev/null || true; done
  tails=()
}
cleanup() { close_tails; [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

CP=http://127.0.0.1:8091
GW=http://127.0.0.1:8070
ADMIN=tail-run-admin-secret-0001
FEED=tail-run-feed-secret-00001

start() { # $1 = the binary, then extra VAR=value settings
  local bin=$1; shift
  rm -rf "$work/state"; mkdir -p "$work/state"
  env "$@" TOLLGATE_FORWARD__ACK=memory TOLLGATE_TOKENS__STATE_DIR="$work/state" \
    TOLLGATE_CONTROL_PLANE__EMBEDDED=true TOLLGATE_CONTROL_PLANE__LISTEN=127.0.0.1:8091 \
    TOLLGATE_CONTROL_PLANE__DATABASE_URL="sqlite://$work/state/control.db" \
    TOLLGATE_CONTROL_PLANE__ADMIN_SECRET=$ADMIN TOLLGATE_CONTROL_PLANE__FEED_SECRET=$FEED \
    TOLLGATE_TOKENS__SOURCE=control_plane TOLLGATE_TOKENS__URL=$CP TOLLGATE_TOKENS__FEED_SECRET=$FEED \
    taskset -c 0 "$bin" serve --config config/bench.toml >"$work/server.log" 2>&1 &
  pid=$!
  wait_for tollgate 10 curl -fsS 127.0.0.1:9464/readyz || { cat "$work/server.log" >&2; exit 1; }
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# Two pro accounts, the second's API token, and a shared token of the first with the filter
# `level: error`; prints shell assignments.
setup() {
  python3 - "$CP" "$ADMIN" <<'PY'
import json, sys, urllib.request
cp, admin = sys.argv[1], sys.argv[2]
def call(path, body, **headers):
    req = urllib.request.Request(cp + path, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    return json.load(urllib.request.urlopen(req))
load = call("/v1/admin/accounts", {"accountName": "load", "plan": "pro"}, Authorization="Bearer " + admin)
other = call("/v1/admin/accounts", {"accountName": "other", "plan": "pro"}, Authorization="Bearer " + admin)
api = {"X-API-TOKEN": load["apiToken"]}
f = call("/v1/shared-tokens/filters", {"description": "errors", "field": "level", "value": "error"}, **api)
shared = call("/v1/shared-tokens", {"tokenName": "errors", "filters": [f["id"]]}, **api)
print(f"TOKEN={load['accountToken']} OTHER_API={other['apiToken']} SHARED={shared['token']}")
PY
}

open_tails() {
  for _ in $(seq 10); do
    taskset -c 1 curl -sN -H "X-API-TOKEN: $OTHER_API" "$GW/v1/tail" >/dev/null 2>&1 & tails+=($!)
    taskset -c 1 curl -sN "$GW/v1/tail?token=$SHARED" >/dev/null 2>&1 & tails+=($!)
  done
  wait_for "20 tails" 10 twenty_open
}
twenty_open() { [ "$(metric 127.0.0.1:9464 tollgate_tail_subscribers)" = 20 ]; }

measure() { # $1 = label
  local limit=$(( ${DURATION%s} + 60 )) ticks
  ticks=$(cpu_ticks "$pid")
  SUMMARY="$work/$1.json" TOKEN=$TOKEN timeout -k 5 "$limit" \
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -s loadtest/wrk/logs-small.lua "$GW" >/dev/null 2>&1 || true
  ticks=$(( $(cpu_ticks "$pid") - ticks ))
  python3 -c "import json; s = json.load(open('$work/$1.json')); print('$1', s['rate'], s['p99_ms'], s['non_2xx'] + s['read_errors'] + s['write_errors'], 1e6 * $ticks / $(getconf CLK_TCK) / s['requests'])" >>"$work/rows"
}

echo "logs-small with and without live tails, $DURATION per run, gateway on core 0, wrk and curl on core 1" >&2
measure_before() {
  [ -n "$BEFORE" ] || return 0
  start "$BEFORE"; eval "$(setup)"
  wait_for "the token" 10 curl -fsS -X POST "$GW/?token=$TOKEN" -d '{}'
  measure before-0; stop
}
# Odd rounds run BEFORE, none, 20; even rounds the reverse: a drift in the machine's speed
# during the run shows as spread, not as a difference.
for round in $(seq "$ROUNDS"); do
  [ $((round % 2)) = 1 ] && measure_before
  # Ten tails on one account: past the default cap of 8 per account.
  start ./target/release/tollgate TOLLGATE_TAIL__MAX_PER_ACCOUNT=10; eval "$(setup)"
  wait_for "the token" 10 curl -fsS -X POST "$GW/?token=$TOKEN" -d '{}'
  if [ $((round % 2)) = 1 ]; then
    measure tails-0; open_tails; measure tails-20; close_tails
  else
    open_tails; measure tails-20; close_tails; sleep 1; measure tails-0
  fi
  stop
  [ $((round % 2)) = 0 ] && measure_before
done

python3 - "$work/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, rate, p99, bad, cpu = line.split()
    rows.setdefault(label, []).append((float(rate), float(p99), int(bad), float(cpu)))
mean = lambda label, i: statistics.mean(x[i] for x in rows[label])
print(f"{'run':<10}{'req/s (each round)':>32}{'mean':>9}{'CPU µs/req (each round)':>30}{'mean':>7}"
      f"{'p99 ms':>8}{'bad':>5}")
for label in ["before-0", "tails-0", "tails-20"]:
    if label not in rows:
        continue
    r = rows[label]
    print(f"{label:<10}{' '.join(f'{x[0]:.0f}' for x in r):>32}{mean(label, 0):>9.0f}"
          f"{' '.join(f'{x[3]:.2f}' for x in r):>30}{mean(label, 3):>7.2f}"
          f"{max(x[1] for x in r):>8.2f}{sum(x[2] for x in r):>5}")
each = lambda a, b, i: " ".join(f"{x[i] / y[i]:.3f}" for x, y in zip(rows[a], rows[b]))
print(f"\n20 tails open / none: req/s {mean('tails-20', 0) / mean('tails-0', 0):.3f} "
      f"(rounds {each('tails-20', 'tails-0', 0)}; goal >= 0.95), "
      f"CPU per request {mean('tails-20', 3) / mean('tails-0', 3):.3f} (rounds {each('tails-20', 'tails-0', 3)})")
if "before-0" in rows:
    print(f"no tail open, this build / BEFORE: req/s {mean('tails-0', 0) / mean('before-0', 0):.3f} "
          f"(rounds {each('tails-0', 'before-0', 0)}), CPU per request "
          f"{mean('tails-0', 3) / mean('before-0', 3):.3f} (rounds {each('tails-0', 'before-0', 3)}); goal: within noise")
print("tails-20: 10 tails of another account, 10 of the ingesting account filtered to level: error;"
      " CPU µs/req: the gateway's user + system CPU over the run / requests answered")
PY
