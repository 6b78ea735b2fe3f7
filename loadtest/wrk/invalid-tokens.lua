-- invalid-tokens for wrk: a random well-formed 32-char token per request at full speed.
-- tollgate answers 401 to each (counted as non_2xx in the summary); the ceiling answers 200.
--   SUMMARY=out.json wrk -t1 -c64 -d15s -s loadtest/wrk/invalid-tokens.lua http://127.0.0.1:8070
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local chars = {}
for i = 1, #alphabet do chars[i] = alphabet:sub(i, i) end
local body = '{"message":"probe"}\n'
local headers = { ["Content-Type"] = "application/json" }
local token = {}

function init(_)
  -- Each wrk thread has its own Lua state; seed each differently.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

function request()
  for i = 1, 32 do token[i] = chars[math.random(#chars)] end
  return wrk.format("POST", "/?token=" .. table.concat(token) .. "&type=loadtest", headers, body)
end

done = summary.done
