#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/seeds/<target>/: a few real inputs per target
(valid requests, state files, a config) so a fresh run starts from meaningful shapes.
Needs cramjam for snappy (`pip install cramjam`). Run from anywhere; idempotent."""
import gzip, json, struct, sys, zlib
from pathlib import Path

import cramjam

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent.parent
sys.path.insert(0, str(REPO / "loadtest"))
from protobuf import double, fixed64, msg, string as s, uint as vint, varint  # noqa: E402


def kv(key, any_value):
    return s(1, key) + msg(2, any_value)


T0 = 1_764_201_600_000_000_000
RESOURCE = msg(1, msg(1, kv("service.name", s(1, "web"))))
SCOPE = msg(1, s(1, "seed"))

span = (msg(1, bytes(range(1, 17))) + msg(2, bytes(range(1, 9))) + s(5, "GET /")
        + vint(6, 2) + fixed64(7, T0) + fixed64(8, T0 + 1_000_000)
        + msg(9, kv("http.status_code", vint(3, 200))))
traces = msg(1, RESOURCE + msg(2, SCOPE + msg(2, span) + msg(2, span)))
record = (fixed64(1, T0) + vint(2, 9) + s(3, "INFO") + msg(5, s(1, "hello"))
          + msg(6, kv("user", s(1, "ann"))))
logs = msg(1, RESOURCE + msg(2, SCOPE + msg(2, record)))
point = fixed64(2, T0) + fixed64(3, T0 + 1) + double(4, 1.5)
metrics = msg(1, RESOURCE + msg(2, SCOPE + msg(2, s(1, "requests") + msg(7, msg(1, point) + vint(2, 2) + vint(3, 1)))))

otlp_json = {
    0: {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"spans": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
            "name": "GET /", "kind": 2, "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 1000),
            "attributes": [{"key": "ratio", "value": {"doubleValue": "NaN"}}]}]}]}]},
    1: {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": str(T0), "severityNumber": 9,
        "body": {"stringValue": "hello"}, "attributes": [{"key": "n", "value": {"intValue": "-12"}}]}]}]}]},
    2: {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "requests", "gauge": {"dataPoints": [
        {"timeUnixNano": str(T0), "asDouble": "Infinity"}, {"timeUnixNano": str(T0), "asInt": "9007199254740993"}]}}]}]}]},
}

label = lambda n, v: msg(1, s(1, n) + s(2, v))
series = msg(1, label("__name__", "up") + label("job", "node") + msg(2, double(1, 1.0) + vint(2, 1_764_201_600_000)))
remote_write = cramjam.snappy.compress_raw(series * 3).read()

logs_body = b'{"message":"hello","level":"info"}\n{"message":"x","type":"nginx","nested":{"a":[1,2.5e3,null]}}\n\n[1]\n'

# Spool frame bodies (the target wraps each in a valid frame, 0xFF between bodies):
# seq u64 | kind u8 | content type u8 | account u64 | token id (u32 len + bytes) |
# log type (0, or 1 + u32 len + bytes) | payload count u32 | payloads (u32 len + bytes).
def body(seq, payloads, log_type=None):
    out = struct.pack("<QBBQ", seq, 0, 0, 1001) + struct.pack("<I", 8) + b"t-logs-1"
    out += b"\x00" if log_type is None else b"\x01" + struct.pack("<I", len(log_type)) + log_type
    out += struct.pack("<I", len(payloads))
    for p in payloads:
        out += struct.pack("<I", len(p)) + p
    return out

frames = [body(1, [b'{"n":1}']), body(2, [b'{"n":2}', b'{"n":3}'], b"nginx"), body(3, [])]

snapshot = (REPO / "config" / "tokens.json").read_bytes()
changes = {"version": 7, "upserts": [{"digest": "ab" * 32, "token_id": "t-1", "account_id": 5, "kind": "logs"},
                                     {"token": "plainTokenValue000000000001", "token_id": "t-2", "account_id": 5,
                                      "account_name": "acme", "kind": "traces", "enabled": False}],
           "deletes": ["cd" * 32],
           "grants": {"upserts": {"accounts": [{"account_id": 5, "owner_id": None, "type": "GENERAL", "searchable": True,
                                                "api_tokens_usable_until_ms": None}],
                                  "api_tokens": [{"digest": "ef" * 32, "account_id": 5}],
                                  "shared_tokens": [{"digest": "01" * 32, "token_id": 3, "account_id": 5,
                                                     "filters": [{"field": "level", "value": "error"}],
                                                     "operator": "AND", "expires_at_ms": 1764201600000}]},
                      "deletes": {"accounts": [6], "api_tokens": ["02" * 32], "shared_tokens": []}}}

management = [  # (route index in management_api.rs ROUTES, body)
    (0, {"accountName": "sub", "plan": "pro", "retentionDays": 7}),
    (1, {"accountName": "eu", "maxDailyGB": 1.5, "retentionDays": 5, "searchable": "true", "accessible": True}),
    (5, {"name": "shipper"}),
    (6, {"pagination": {"pageNumber": 1, "pageSize": 25}, "filter": {"enabled": "true"}}),
    (8, {"tokenName": "reader"}),
    (10, {"tokenName": "support", "filters": [1], "expirationDate": 1893456000000}),
    (12, {"description": "web", "field": "service", "value": "web"}),
    (13, {"username": "ann@example.com", "fullName": "Ann", "accountID": 1, "role": 2}),
    (15, {"tokens": [], "accounts": []}),
]

drop_logs = {"logType": "nginx", "description": "health checks", "thresholdInGB": 10.5,
             "fieldConditions": [{"fieldName": "request.path", "value": "/healthz"}, {"fieldName": "status", "value": 200}]}
drop_metrics = {"operator": "and", "expression": [
    {"name": "__name__", "value": "http_.*", "comparisonFilter": "REGEX_MATCH"},
    {"operator": "AND", "expression": [{"name": "code", "value": "5..", "comparisonFilter": "regex_no_match"},
                                       {"name": "job", "value": "api", "comparisonFilter": "EQ"}]}]}
eval_filter = {"operator": "AND", "expression": [{"name": "job", "value": "api|w.b", "comparisonFilter": "REGEX_MATCH"}]}
management += [
    (17, drop_logs),
    (18, {"accountId": 1, "name": "drop-http", "dropPolicy": "DROP_BEFORE_STORING", "filter": drop_metrics}),
    (21, {"filter": {"accountIds": [1], "metricNames": ["up"], "active": "true", "searchTerm": "x"},
          "pagination": {"pageNumber": 0, "pageSize": 10}}),
]

SEEDS = {
    "logs_lines": {"lines": logs_body},
    "json_line": {"log": b'{"@timestamp":"2026-11-24T00:00:00.000Z","type":"x","message":"a \\"b\\" \\u00e9","n":-1.5e3,"a":[true,{"b":null}]}',
                  "escaped-key": b'{"typ\\u0065":1,"_kind":"x","b.c":{"c":2}}'},
    "body_decode": {"gzip": b"\x00" + gzip.compress(logs_body, mtime=0), "deflate": b"\x01" + zlib.compress(logs_body),
                    "identity": b"\x02" + logs_body},
    "otlp": {"traces-pb": b"\x00" + traces, "logs-pb": b"\x02" + logs, "metrics-pb": b"\x04" + metrics,
             **{f"json-{i}": bytes([i * 2 + 1]) + json.dumps(v).encode() for i, v in otlp_json.items()}},
    "remote_write": {"series": remote_write},
    "token_snapshot": {"tokens.json": snapshot},
    "feed_changes": {"changes": json.dumps(changes).encode()},
    "config": {name: (REPO / "config" / name).read_bytes() for name in ("tollgate.toml", "gateway.toml")},
    "spool_segment": {"frames": b"\x01" + b"\xff".join(frames), "torn": b"\x07" + b"\xff".join(frames),
                      "raw": b"\x00TGT1\x10\x00\x00\x00garbage-then-magic TGT1"},
    "management_api": {f"route-{i}": bytes([i]) + json.dumps(b).encode() for i, b in management},
    "drop_filter_bodies": {"logs": b"\x00" + json.dumps(drop_logs).encode(),
                           "metrics": b"\x01" + json.dumps(drop_metrics).encode()},
    "metrics_filter_eval": {"series": json.dumps(eval_filter).encode() + b"\xffhttp_requests_total\x00job\x00web\x00code\x00503",
                            "nested": json.dumps(drop_metrics).encode() + b"\xffhttp_x\x00code\x00200"},
}

for target, files in SEEDS.items():
    d = ROOT / target
    d.mkdir(exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
print("seeds written:", sum(len(f) for f in SEEDS.values()), "files")
