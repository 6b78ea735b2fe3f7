// otlp-traces: OTLP/HTTP JSON trace exports as an SDK's batch span processor sends them —
// one resource (service), one scope, SPANS spans (default 50) of a few traces, each span
// with HTTP/DB attributes — Authorization: Bearer with a traces token, keep-alive.
// The bodies (16 variants, ~30 KB each at 50 spans) are built once in k6's init stage, so
// the load generator spends its time sending, not building JSON.
//   k6 run -e TARGET=http://127.0.0.1:8070 loadtest/otlp-traces.js
import http from 'k6/http';
import { check } from 'k6';

const target = __ENV.TARGET || 'http://127.0.0.1:8070';
const token = __ENV.TOKEN || 'sampleTracesToken0000000000004';
const spansPerRequest = Number(__ENV.SPANS || 50);
const url = `${target}/v1/traces`;
const params = {
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
};

function hex(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(Math.random() * 16)];
  // All-zero ids are invalid in OTLP: make sure the first digit is not 0.
  return '1' + s.slice(1);
}

const str = (key, value) => ({ key, value: { stringValue: value } });
const int = (key, value) => ({ key, value: { intValue: String(value) } });

function exportRequest(variant) {
  // Nanosecond timestamps as strings (OTLP/JSON allows it), without BigInt.
  const second = String(1763942400 + variant);
  const nanos = (n) => second + String(n).padStart(9, '0');
  const spans = [];
  let traceId = hex(32);
  let rootId = hex(16);
  for (let i = 0; i < spansPerRequest; i++) {
    if (i % 10 === 0) {
      traceId = hex(32);
      rootId = hex(16);
    }
    const root = i % 10 === 0;
    const begin = i * 1000000;
    spans.push({
      traceId,
      spanId: root ? rootId : hex(16),
      parentSpanId: root ? '' : rootId,
      name: root ? 'GET /api/v1/cart/{id}' : `SELECT cart_items ${i % 10}`,
      kind: root ? 2 : 3,
      startTimeUnixNano: nanos(begin),
      endTimeUnixNano: nanos(begin + 200000 + (i % 7) * 50000),
      attributes: root
        ? [str('http.request.method', 'GET'), str('url.path', `/api/v1/cart/${i}`),
          int('http.response.status_code', 200), str('user_agent.original', 'k6/1.0'),
          str('client.address', '10.0.3.17')]
        : [str('db.system', 'postgresql'), str('db.namespace', 'shop'),
          str('db.query.text', 'SELECT * FROM cart_items WHERE cart_id = $1'),
          str('server.address', 'db-2.internal'), int('server.port', 5432)],
      status: { code: 1 },
    });
  }
  return JSON.stringify({
    resourceSpans: [{
      resource: {
        attributes: [str('service.name', 'checkout'), str('service.version', '1.42.0'),
          str('deployment.environment', 'production'), str('host.name', 'web-17')],
      },
      scopeSpans: [{ scope: { name: 'opentelemetry.instrumentation.http', version: '0.48.0' }, spans }],
    }],
  });
}

const bodies = [];
for (let v = 0; v < 16; v++) bodies.push(exportRequest(v));

export const options = {
  vus: Number(__ENV.VUS || 32),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)'],
  thresholds: { http_req_failed: ['rate<0.001'] },
};

export default function () {
  const res = http.post(url, bodies[(__VU + __ITER) % bodies.length], params);
  check(res, { 'status is 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY || 'loadtest/otlp-traces-summary.json']: JSON.stringify(data, null, 2) };
}
