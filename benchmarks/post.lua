-- wrk script for benchmarks/gateway_throughput.py: one static POST, every answer checked.
--
-- The request is built once (wrk's fast path: no request() function); BENCH_TOKEN and
-- BENCH_BODY come from the environment. response() counts answers whose status is not 200 or
-- whose body differs from BENCH_EXPECT, so a fast wrong answer cannot pass for a result; done()
-- prints one machine-readable line that the script parses. No x-correlator is sent: the
-- gateway then creates a fresh one per call, so every call is one distinct usage event.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"maxAge": 24}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "none")

local expect = os.getenv("BENCH_EXPECT") or ""
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   answers = 0
   not_200 = 0
   wrong_body = 0
end

function response(status, headers, body)
   answers = answers + 1
   if status ~= 200 then
      not_200 = not_200 + 1
   elseif expect ~= "" and body ~= expect then
      wrong_body = wrong_body + 1
   end
end

function done(summary, latency, requests)
   local a, n, w = 0, 0, 0
   for _, thread in ipairs(threads) do
      a = a + thread:get("answers")
      n = n + thread:get("not_200")
      w = w + thread:get("wrong_body")
   end
   io.write(string.format(
      "BENCH answers=%d not_200=%d wrong_body=%d requests=%d p50_us=%d p99_us=%d" ..
      " connect_errors=%d read_errors=%d write_errors=%d timeouts=%d status_errors=%d\n",
      a, n, w, summary.requests, latency:percentile(50), latency:percentile(99),
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.timeout, summary.errors.status))
end
