"""Peak memory of a gateway under concurrent gzip bombs that a token may send: each body is
~100 KB of gzip that decompresses to 99 MiB of `{}` lines (LINES=typed: ~330 KB of gzip
that decompresses to 99 MiB of 505-byte lines with a `type`, which keep their bytes as
sent: a body within `max_decompressed_bytes` that the gateway accepts when it has room).

    python3 loadtest/decode-bombs.py target/release/tollgate [N ...]   # from the repository root

Starts the binary with config/bench.toml (blackhole sink, ack = "memory") on free loopback
ports, with the default limits (`max_decompressed_bytes` 100 MiB, and the decode budget
when the build has one); `TOLLGATE_SERVER__*` in the environment overrides them. For each
N (default 1 16 64) it starts a fresh gateway, sends N bombs at once while one client keeps
sending a small logs request after another, and prints the answers, how much VmHWM (peak
RSS) grew over the idle gateway, and what the small requests got. Loopback only; about a
minute for the default Ns.
"""
import gzip, http.client, os, socket, subprocess, sys, tempfile, threading, time
from collections import Counter

binary = sys.argv[1]
counts = [int(n) for n in sys.argv[2:]] or [1, 16, 64]
TOKEN = "sampleLogsToken0000000000000001"
if os.environ.get("LINES") == "typed":
    line = b'{"type":"t","message":"' + b"x" * 480 + b'"}\n'
    part = line * ((1 << 20) // len(line))
else:
    part = b"{}\n" * 349525                  # 1 MiB less a byte of `{}` lines
bomb = gzip.compress(part, 9) * 99           # gzip members chain: 99 MiB decompressed
small = b'{"level":"info","service":"checkout","message":"GET /api/v1/cart/42 200 12ms"}\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body, headers, timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", f"/?token={TOKEN}", body, headers)
        r = c.getresponse(); r.read()
        return r.status
    except OSError as e:
        return type(e).__name__
    finally:
        c.close()


def kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])


print(f"bomb: {len(bomb)} bytes of gzip, {99 * len(part)} bytes decompressed")
for n in counts:
    work = tempfile.mkdtemp()
    port = free_port()
    env = dict(os.environ, TOLLGATE_SERVER__LISTEN=f"127.0.0.1:{port}",
               TOLLGATE_SERVER__ADMIN_LISTEN=f"127.0.0.1:{free_port()}",
               TOLLGATE_TOKENS__STATE_DIR=f"{work}/state")
    p = subprocess.Popen([binary, "serve", "--config", "config/bench.toml"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if post(port, b"{}\n", {}) == 200:
            break
        time.sleep(0.1)
    time.sleep(2)
    before = kib(p.pid, "VmHWM")
    answers, small_answers, done = [], Counter(), threading.Event()

    def small_traffic():
        while not done.is_set():
            small_answers[post(port, small, {})] += 1

    bombs = [threading.Thread(target=lambda: answers.append(
        post(port, bomb, {"Content-Encoding": "gzip"}))) for _ in range(n)]
    side = threading.Thread(target=small_traffic)
    started = time.monotonic()
    side.start(); [t.start() for t in bombs]; [t.join() for t in bombs]
    took = time.monotonic() - started
    done.set(); side.join()
    peak = kib(p.pid, "VmHWM")
    alive = p.poll() is None
    p.terminate(); p.wait()
    print(f"{n:3} bombs: answers {dict(Counter(answers))}, {took:.1f} s; peak RSS "
          f"+{(peak - before) // 1024} MiB over {before // 1024} MiB idle; small requests "
          f"meanwhile {dict(small_answers)}; {'alive' if alive else 'EXITED'}")
