-- Shared by the wrk scripts: at the end of a run, write one JSON object to $SUMMARY (or
-- stdout) with the counts and latency percentiles that loadtest/run.sh puts in its table.
local M = {}

function M.done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"seconds":%.3f,"rate":%.1f,"bytes":%d,' ..
    '"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non_2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect, e.read, e.write, e.timeout)
  local path = os.getenv("SUMMARY")
  if path then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  else
    io.write(out)
  end
end

return M
