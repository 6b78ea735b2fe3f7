// invalid-tokens: a random well-formed token per request at full speed; every answer must be
// a 401 (tollgate) — the ceiling answers 200, so errors are judged by status, not by k6.
//   k6 run -e TARGET=http://127.0.0.1:8070 loadtest/invalid-tokens.js
import http from 'k6/http';
import { check } from 'k6';

const target = __ENV.TARGET || 'http://127.0.0.1:8070';
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const line = '{"message":"probe"}\n';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(99)'],
  thresholds: { checks: ['rate>0.999'] },
};

function randomToken() {
  let t = '';
  for (let i = 0; i < 32; i++) t += alphabet[Math.floor(Math.random() * alphabet.length)];
  return t;
}

export default function () {
  const res = http.post(`${target}/?token=${randomToken()}`, line);
  check(res, { 'refused (401) or ceiling (200)': (r) => r.status === 401 || r.status === 200 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY || 'loadtest/invalid-tokens-summary.json']: JSON.stringify(data, null, 2) };
}
