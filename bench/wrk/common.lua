-- Shared by the scenario scripts (anthropic.lua, openai.lua, *-stream.lua): the request
-- (method, body from bodies/, API headers) and a done() that prints the results as one JSON
-- line for bench/run.py. Every target (direct, Tollhouse, LiteLLM) gets byte-identical requests.
local M = {}

-- The LiteLLM proxy's master key (bench/run.py passes the same value to LiteLLM); Tollhouse
-- accepts any key when no gateway keys are configured, and nginx ignores it.
M.client_key = os.getenv("BENCH_CLIENT_KEY")
    or "sk-bench-4f1c2e9a7b3d5e8f0a6c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- api: "anthropic" or "openai"; body: path of the JSON request body.
function M.setup(api, body)
    wrk.method = "POST"
    wrk.body = read(body)
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Accept"] = "application/json"
    wrk.headers["User-Agent"] = "tollhouse-bench/wrk"
    if api == "anthropic" then
        wrk.headers["x-api-key"] = M.client_key
        wrk.headers["anthropic-version"] = "2023-06-01"
    else
        wrk.headers["Authorization"] = "Bearer " .. M.client_key
    end
end

-- wrk counts a status >= 400 as errors.status; run.py treats any error as an invalid run.
function M.done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.3f,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"min":%d,"mean":%.3f,"stdev":%.3f,"max":%d,' ..
        '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
        summary.requests, summary.duration, summary.bytes, summary.requests / secs,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency.stdev, latency.max,
        latency:percentile(50), latency:percentile(75), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end

return M
