-- POST runs/search over one experiment: a metric filter, 100 results ordered by a metric.
local exp_id = os.getenv("EXPERIMENT_ID")
local body = '{"experiment_ids":["' .. exp_id .. '"],"filter":"metrics.m1 > 0.5","max_results":100,"order_by":["metrics.m2 DESC"]}'
request = function()
  return wrk.format("POST", "/api/2.0/mlflow/runs/search", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.1fms p90=%.1fms p99=%.1fms\n", latency:percentile(50)/1000, latency:percentile(90)/1000, latency:percentile(99)/1000))
end
