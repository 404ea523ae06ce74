-- wrk script for vigil's HTTP benchmark (bench/http/run_bench.py drives it).
-- Environment: VIGIL_BENCH_KEY (API key), VIGIL_BENCH_BODIES (file: one JSON body a line),
-- VIGIL_BENCH_PATH (endpoint), VIGIL_BENCH_RATE (requests/s over all connections; 0 = as fast as
-- possible), VIGIL_BENCH_CONNECTIONS (the -c value, to spread the rate), VIGIL_BENCH_DELAY_MS (when set:
-- the pause after each response, instead of one derived from the rate), VIGIL_BENCH_OUT (JSON summary).
local key = os.getenv("VIGIL_BENCH_KEY") or ""
local path = os.getenv("VIGIL_BENCH_PATH") or "/access/v1/evaluation"
local rate = tonumber(os.getenv("VIGIL_BENCH_RATE") or "0")
local conns = tonumber(os.getenv("VIGIL_BENCH_CONNECTIONS") or "1")
local delay_ms = tonumber(os.getenv("VIGIL_BENCH_DELAY_MS") or "-1")
local requests = {}
local n = 0
local i = 0

function init(args)
  local f = assert(io.open(os.getenv("VIGIL_BENCH_BODIES"), "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. key,
      }, line)
    end
  end
  f:close()
end

function request()
  i = (i % n) + 1
  return requests[i]
end

function delay()
  if delay_ms >= 0 then
    return delay_ms
  end
  if rate > 0 then
    return math.floor(conns * 1000 / rate)
  end
  return 0
end

function done(summary, latency, requests)
  local out = os.getenv("VIGIL_BENCH_OUT")
  if out == nil then return end
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "errors_status": %d, "errors_socket": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
  f:close()
end
