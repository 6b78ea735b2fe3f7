"""Idle memory of a gateway after bursts of large requests: does
tollgate give back what a burst took?

    python3 loadtest/idle-rss.py target/release/tollgate    # from the repository root

Starts the binary with config/bench.toml (blackhole sink) and ack = "disk" (spool in a
temporary directory), pinned nowhere; then 4 concurrent gzip logs bodies of 50 MiB
(decompressed) of ~100-byte lines, then 4 concurrent remote_write bodies of 32 MiB of
one-label series; 10 s after each burst it prints VmRSS (idle) and VmHWM (peak), in MiB.
Needs `pip install cramjam` (snappy). Loopback only; about 40 seconds.
"""
import gzip, http.client, os, subprocess, sys, tempfile, threading, time
import cramjam

binary = sys.argv[1]
work = tempfile.mkdtemp()
env = dict(os.environ, TOLLGATE_FORWARD__ACK="disk", TOLLGATE_FORWARD__SPOOL_DIR=f"{work}/spool",
           TOLLGATE_TOKENS__STATE_DIR=f"{work}/state", TOLLGATE_SERVER__MAX_DECOMPRESSED_BYTES=str(64 << 20))
p = subprocess.Popen([binary, "serve", "--config", "config/bench.toml"], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def status():
    out = {}
    for line in open(f"/proc/{p.pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) // 1024
    return out

def post(path, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", 8070, timeout=120)
    c.request("POST", path, body, headers)
    r = c.getresponse(); r.read(); c.close()
    return r.status

for _ in range(100):
    try:
        if post("/?token=sampleLogsToken0000000000000001", b"{}\n", {}) == 200: break
    except OSError: time.sleep(0.1)
time.sleep(2)
print("after start", status())

line = b'{"@timestamp":"2026-11-27T00:00:00Z","level":"info","service":"checkout","message":"GET /cart 200 12ms"}\n'
logs = gzip.compress(line * ((50 << 20) // len(line)))
series = bytes([0x0a, 0x0f, 0x0a, 0x0d, 0x0a, 0x08]) + b"__name__" + bytes([0x12, 0x01]) + b"a"
rw = bytes(cramjam.snappy.compress_raw(series * ((32 << 20) // len(series) - 1)))
print(f"bodies: logs gzip {len(logs)} B, remote_write snappy {len(rw)} B")

for name, path, body, headers in [
    ("logs 4 x 50 MiB", "/?token=sampleLogsToken0000000000000001", logs, {"Content-Encoding": "gzip"}),
    ("remote_write 4 x 32 MiB", "/api/v1/write", rw, {"Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf", "Authorization": "Bearer sampleMetricsToken000000000003"}),
]:
    results = []
    ts = [threading.Thread(target=lambda: results.append(post(path, body, headers))) for _ in range(4)]
    [t.start() for t in ts]; [t.join() for t in ts]
    time.sleep(10)
    print(f"{name}: answers {sorted(results)}, idle 10 s later {status()}")
p.terminate(); p.wait()
print("(MiB)")
