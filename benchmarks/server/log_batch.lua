-- POST runs/log-batch with 100 distinct metric points per request (10 keys x 10 steps).
-- REP (the repetition's number) keeps every repetition's points new: one never re-sends another's.
local run_id = os.getenv("RUN_ID")
local rep = tonumber(os.getenv("REP") or "0")
local counter = 0
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  local base = (rep * 1000000000) + (tid * 100000000) + counter * 10
  local parts = {}
  for k = 0, 9 do
    for s = 0, 9 do
      parts[#parts + 1] = string.format('{"key":"m%d","value":%d.5,"timestamp":%d,"step":%d}', k, s, 1700000000000 + base, base + s)
    end
  end
  local body = '{"run_id":"' .. run_id .. '","metrics":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/2.0/mlflow/runs/log-batch", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.1fms p90=%.1fms p99=%.1fms\n", latency:percentile(50)/1000, latency:percentile(90)/1000, latency:percentile(99)/1000))
end
