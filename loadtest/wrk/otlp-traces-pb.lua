-- otlp-traces-pb for wrk: an OTLP/HTTP protobuf trace export of 20 spans (the body that
-- `run.sh` writes to loadtest/data/traces-20.pb: one service, two traces of a server span
-- and nine client spans, 5 attributes each), Authorization: Bearer with the traces token.
-- The same bytes go to tollgate and to Rotel (which ignores the header).
--   BODY=loadtest/data/traces-20.pb SUMMARY=out.json wrk -t1 -c64 -d15s -s loadtest/wrk/otlp-traces-pb.lua URL
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local f = assert(io.open(os.getenv("BODY") or "loadtest/data/traces-20.pb", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/v1/traces"
wrk.headers["Content-Type"] = "application/x-protobuf"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "sampleTracesToken0000000000004")

done = summary.done
