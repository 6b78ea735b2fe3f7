"""Writes an OTLP/HTTP protobuf trace export of SPANS spans (default 20) to the path given:
one service, traces of a server span and nine client spans, 5 attributes each (the shape
of otlp-traces.js). Hand-encoded protobuf, no dependency.
    python3 loadtest/traces-pb.py loadtest/data/traces-20.pb [SPANS]"""
import sys

from protobuf import fixed64, msg, string as s, uint


def kv(key, value):
    any_value = s(1, value) if isinstance(value, str) else uint(3, value)
    return msg(9, s(1, key) + msg(2, any_value))  # Span.attributes = 9


spans_n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
t0 = 1_763_942_400_000_000_000
spans = b""
for i in range(spans_n):
    trace = bytes([1 + i // 10] * 16)
    root = i % 10 == 0
    span_id = bytes([1, 2, 3, 4, 5, 6, 7, 1 + i])
    span = msg(1, trace) + msg(2, span_id)
    if not root:
        span += msg(4, bytes([1, 2, 3, 4, 5, 6, 7, 1 + (i // 10) * 10]))  # parent
    span += s(5, "GET /api/v1/cart/{id}" if root else "SELECT carts")
    span += uint(6, 2 if root else 3)
    span += fixed64(7, t0 + i * 1000) + fixed64(8, t0 + i * 1000 + 800_000)
    if root:
        attrs = [("http.method", "GET"), ("http.route", "/api/v1/cart/{id}"), ("http.status_code", 200),
                 ("net.peer.ip", "10.1.2.3"), ("user_agent.original", "Mozilla/5.0")]
    else:
        attrs = [("db.system", "postgresql"), ("db.name", "carts"), ("db.statement", "SELECT * FROM carts WHERE id = $1"),
                 ("db.rows", i), ("net.peer.name", "db-1")]
    span += b"".join(kv(k, v) for k, v in attrs)
    spans += msg(2, span)  # ScopeSpans.spans = 2
resource = msg(1, msg(1, s(1, "service.name") + msg(2, s(1, "checkout"))))
body = msg(1, resource + msg(2, msg(1, s(1, "loadtest")) + spans))
open(sys.argv[1], "wb").write(body)
