-- logs-small for wrk: the same ~250-byte JSON line as logs-small.js, keep-alive, one line per
-- request. wrk is a C event loop, so unlike k6 it is not the bottleneck on one core.
--   SUMMARY=out.json wrk -t1 -c64 -d15s -s loadtest/wrk/logs-small.lua http://127.0.0.1:8070
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local token = os.getenv("TOKEN") or "sampleLogsToken0000000000000001"
wrk.method = "POST"
wrk.path = "/?token=" .. token .. "&type=loadtest"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"@timestamp":"2026-11-24T00:00:00.000Z","level":"info","service":"checkout",' ..
  '"host":"web-17","message":"GET /api/v1/cart/42 200 12ms user=7f3a9c ' ..
  'request_id=9b1d2e7a-41c3-4f8e-9a6b-0c5d3e2f1a4b","latency_ms":12,"bytes":5312}\n'

done = summary.done
