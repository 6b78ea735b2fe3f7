-- logs-bulk for wrk: the body loadtest/run.sh sends in logs-bulk (loadtest/data/bulk.ndjson.gz,
-- 4,000 lines, ~900 kB uncompressed, gzip), keep-alive. k6 drives the runner's row; this is for
-- loadtest/instructions.sh (callgrind), where the generator's own cost does not count.
--   SUMMARY=out.json wrk -t1 -c8 -d15s -s loadtest/wrk/logs-bulk.lua http://127.0.0.1:8070
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local token = os.getenv("TOKEN") or "sampleLogsToken0000000000000001"
local file = assert(io.open(os.getenv("BULK") or "loadtest/data/bulk.ndjson.gz", "rb"))
wrk.method = "POST"
wrk.path = "/?token=" .. token .. "&type=loadtest"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Content-Encoding"] = "gzip"
wrk.body = file:read("*a")
file:close()

done = summary.done
