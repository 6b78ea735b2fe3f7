// logs-bulk: ~1 MiB gzip bodies of ~4,000 JSON lines each (made once by run.sh into
// loadtest/data/bulk.ndjson.gz and loaded in k6's init stage), keep-alive.
//   k6 run -e TARGET=http://127.0.0.1:8070 loadtest/logs-bulk.js
import http from 'k6/http';
import { check } from 'k6';

const target = __ENV.TARGET || 'http://127.0.0.1:8070';
const token = __ENV.TOKEN || 'sampleLogsToken0000000000000001';
const body = open(__ENV.BULK || './data/bulk.ndjson.gz', 'b');
const url = `${target}/?token=${token}&type=bulk`;

export const options = {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(99)'],
  thresholds: { http_req_failed: ['rate<0.001'] },
};

export default function () {
  const res = http.post(url, body, { headers: { 'Content-Encoding': 'gzip' } });
  check(res, { 'status is 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY || 'loadtest/logs-bulk-summary.json']: JSON.stringify(data, null, 2) };
}
