#!/usr/bin/env python3
"""The feed at fleet scale: GATEWAYS simulated gateways (asyncio clients in this process)
long-poll two control planes on one PostgreSQL store holding TOKENS shipping tokens.

Measures, for CHANGES token changes made through the management API on the first control
plane: the time until each gateway's long poll answers with the new version (p50, p99,
max, over every gateway and change; half the gateways follow the second control plane,
which learns of the change from the store); the control planes' CPU and RSS; and the
store's table reads a second (`pg_stat_user_tables` scans: about one a query) at rest and
during the changes.

    loadtest/feed-fleet.py BINARY [GATEWAYS] [TOKENS] [CHANGES]
    e.g. loadtest/feed-fleet.py target/release/tollgate 500 1000000 20

Needs PostgreSQL on 127.0.0.1:5432 with role tollgate/tollgate (CREATEDB), as the tests
do (`bash .ci/run` sets it up); creates and drops its own database. A simulated gateway
starts from the feed's current version (no snapshot: 500 snapshots of a million tokens
would measure the snapshot, not the feed) and asks with grants and volume, as a gateway
does."""
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BIN = sys.argv[1]
GATEWAYS = int(sys.argv[2]) if len(sys.argv) > 2 else 500
TOKENS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
CHANGES = int(sys.argv[4]) if len(sys.argv) > 4 else 20
DB = "tollgate_feed_fleet"
PG = "postgres://tollgate:tollgate@127.0.0.1:5432"
ADMIN = "feed-fleet-admin-secret-0123456789"
FEED = "feed-fleet-feed-secret-01234567890"
PORTS = (18191, 18192)


def psql(sql, db=DB):
    env = dict(os.environ, PGPASSWORD="tollgate")
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "tollgate", "-d", db, "-qtAX", "-c", sql],
                         env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


async def http(host, port, method, path, headers, body=b"", reader_writer=None):
    """One HTTP/1.1 exchange on a kept-alive connection; returns (status, body, conn)."""
    if reader_writer is None:
        reader_writer = await asyncio.open_connection(host, port)
    reader, writer = reader_writer
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
        if k.lower() == "transfer-encoding" and "chunked" in v:
            chunked = True
    if chunked:
        data = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            data += await reader.readexactly(size)
            await reader.readline()
    else:
        data = await reader.readexactly(length)
    return status, data, reader_writer


async def api(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    headers.update({"X-API-TOKEN": token} if token else {"Authorization": f"Bearer {ADMIN}"})
    status, data, (_, w) = await http("127.0.0.1", PORTS[0], method, path, headers,
                                      json.dumps(body).encode() if body is not None else b"")
    w.close()
    assert 200 <= status < 300, (method, path, status, data)
    return json.loads(data) if data else None


class Gateway:
    def __init__(self, port, version):
        self.port, self.version, self.seen = port, version, {}

    async def follow(self, stop):
        conn = None
        headers = {"Authorization": f"Bearer {FEED}"}
        while not stop.is_set():
            path = f"/v1/feed/changes?since={self.version}&wait=30&grants=true&volume=true"
            try:
                status, data, conn = await http("127.0.0.1", self.port, "GET", path, headers,
                                                reader_writer=conn)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                conn = None
                await asyncio.sleep(0.1)
                continue
            if status != 200:
                raise SystemExit(f"feed answered {status}: {data[:200]!r}")
            version = json.loads(data)["version"]
            if version > self.version:
                now = time.monotonic()
                for v in range(self.version + 1, version + 1):
                    self.seen[v] = now
                self.version = version


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) // 1024
    return cpu, rss


def table_reads():
    """Scans of the store's tables (sequential and index): one a query, about; unlike
    pg_stat_database's transactions, it leaves out the protocol's own bookkeeping."""
    return int(psql("SELECT sum(seq_scan + COALESCE(idx_scan, 0)) FROM pg_stat_user_tables"))


async def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    env = dict(os.environ, TOLLGATE_CONTROL_PLANE__DATABASE_URL=f"{PG}/{DB}",
               TOLLGATE_CONTROL_PLANE__ADMIN_SECRET=ADMIN, TOLLGATE_CONTROL_PLANE__FEED_SECRET=FEED,
               TOLLGATE_LOG__LEVEL="warn")
    planes = []
    try:
        for port in PORTS:
            e = dict(env, TOLLGATE_CONTROL_PLANE__LISTEN=f"127.0.0.1:{port}")
            planes.append(subprocess.Popen([BIN, "control-plane"], env=e))
            for _ in range(200):
                try:
                    _, _, (_, w) = await http("127.0.0.1", port, "GET", "/healthz", {})
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            if port == PORTS[0]:
                seed()
        created = await api("POST", "/v1/admin/accounts",
                            {"accountName": "fleet", "plan": "enterprise", "type": "logs"})
        api_token = created["apiToken"]
        token = await api("POST", "/v1/log-shipping/tokens", {"name": "toggled"}, api_token)
        version = int(psql("SELECT version FROM feed_state WHERE id = 1"))

        stop = asyncio.Event()
        gateways = [Gateway(PORTS[i % 2], version) for i in range(GATEWAYS)]
        tasks = [asyncio.create_task(g.follow(stop)) for g in gateways]
        # Every long poll waiting, and the backends' table statistics of the start flushed
        # (an idle backend sends them within 10 s).
        await asyncio.sleep(12)
        before = [proc_stats(p.pid) for p in planes]
        t0, q0 = time.monotonic(), table_reads()
        await asyncio.sleep(10)
        rest_qps = (table_reads() - q0) / (time.monotonic() - t0)

        delays, made = [], []
        q0, t0 = table_reads(), time.monotonic()
        for i in range(CHANGES):
            started = time.monotonic()
            await api("PUT", f"/v1/log-shipping/tokens/{token['id']}",
                      {"name": "toggled", "enabled": i % 2 == 1}, api_token)
            made.append((started, int(psql("SELECT version FROM feed_state WHERE id = 1"))))
            await asyncio.sleep(1.5)
        await asyncio.sleep(3)
        busy_qps = (table_reads() - q0) / (time.monotonic() - t0)
        after = [proc_stats(p.pid) for p in planes]
        stop.set()
        for t in tasks:
            t.cancel()
        missing = 0
        for started, v in made:
            for g in gateways:
                if v in g.seen:
                    delays.append(g.seen[v] - started)
                else:
                    missing += 1
        delays.sort()
        q = lambda p: delays[min(len(delays) - 1, int(p * len(delays)))]
        print(f"{GATEWAYS} gateways over 2 control planes, {TOKENS:,} tokens, {CHANGES} changes")
        print(f"propagation to every gateway: p50 {q(0.5) * 1000:.0f} ms, p99 {q(0.99) * 1000:.0f} ms, "
              f"max {delays[-1] * 1000:.0f} ms ({len(delays)} observations, {missing} missed)")
        for i, (b, a) in enumerate(zip(before, after)):
            print(f"control plane {i + 1}: {a[0] - b[0]:.2f} s CPU over the run, RSS {a[1]} MiB")
        print(f"PostgreSQL table reads a second (both control planes): {rest_qps:.1f} at rest, "
              f"{busy_qps:.1f} during the changes")
    finally:
        for p in planes:
            p.terminate()
            p.wait()
        psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")


def seed():
    """TOKENS tokens over 10,000 accounts, straight into the store (far faster than the API)."""
    version = psql("SELECT version FROM feed_state WHERE id = 1")
    psql("INSERT INTO accounts (id, name, type, plan, created_at) "
         "SELECT g, 'load-' || g, 'logs', 'pro', 0 FROM generate_series(1000000, 1009999) g")
    psql("INSERT INTO shipping_tokens (id, account_id, kind, name, token, digest, enabled, created_at, "
         "created_by, updated_at, updated_by, feed_version) "
         "SELECT 1000000 + i, 1000000 + i % 10000, 'logs', 'default', t, encode(sha256(t::bytea), 'hex'), "
         f"1, 0, 'seed', 0, 'seed', {version} FROM (SELECT i, 'loadToken' || lpad(i::text, 22, '0') AS t "
         f"FROM generate_series(0, {TOKENS - 1}) i) s")
    psql("UPDATE id_sequences SET last = (SELECT MAX(id) FROM accounts) WHERE name = 'accounts'")
    psql("UPDATE id_sequences SET last = (SELECT MAX(id) FROM shipping_tokens) WHERE name = 'shipping_tokens'")
    psql("ANALYZE")


asyncio.run(main())
