// logs-small: one ~250-byte JSON log line per request, keep-alive, many virtual users.
// Run against a gateway started with config/bench.toml:
//   k6 run -e TARGET=http://127.0.0.1:8070 -e TOKEN=sampleLogsToken0000000000000001 loadtest/logs-small.js
import http from 'k6/http';
import { check } from 'k6';

const target = __ENV.TARGET || 'http://127.0.0.1:8070';
const token = __ENV.TOKEN || 'sampleLogsToken0000000000000001';
const url = `${target}/?token=${token}&type=loadtest`;
const line = JSON.stringify({
  '@timestamp': '2026-11-24T00:00:00.000Z',
  level: 'info',
  service: 'checkout',
  host: 'web-17',
  message: 'GET /api/v1/cart/42 200 12ms user=7f3a9c request_id=9b1d2e7a-41c3-4f8e-9a6b-0c5d3e2f1a4b',
  latency_ms: 12,
  bytes: 5312,
}) + '\n';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)'],
  thresholds: {
    http_req_failed: ['rate<0.001'],
  },
};

export default function () {
  const res = http.post(url, line);
  check(res, { 'status is 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY || 'loadtest/logs-small-summary.json']: JSON.stringify(data, null, 2) };
}
