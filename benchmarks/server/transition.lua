-- POST model-versions/transition-stage, alternating Staging/Production on one version.
local name = os.getenv("MODEL_NAME")
local i = 0
request = function()
  i = i + 1
  local stage = (i % 2 == 0) and "Staging" or "Production"
  local body = '{"name":"' .. name .. '","version":"1","stage":"' .. stage .. '","archive_existing_versions":false}'
  return wrk.format("POST", "/api/2.0/mlflow/model-versions/transition-stage", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.1fms p90=%.1fms p99=%.1fms\n", latency:percentile(50)/1000, latency:percentile(90)/1000, latency:percentile(99)/1000))
end
