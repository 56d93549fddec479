-- wrk script: cycle through a file of request paths and report the results as one JSON line.
--
--   wrk -t1 -c32 -d15s --latency -s bench/paths.lua http://127.0.0.1:PORT -- PATHS_FILE [count]
--
-- PATHS_FILE holds one path per line (bench/gen_rules.py writes paths.txt). Each thread starts
-- at a different offset and walks the whole list in order, over and over.
-- With the extra argument `count`, every response's status code is tallied (wrk then parses
-- response headers, which costs the load generator some CPU); without it only wrk's own
-- counter of statuses >= 400 is available.
--
-- done() prints one line `BENCH_JSON {...}` with requests/s, latency percentiles (ms),
-- error counters and the status histogram, for bench/report.py to pick up.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  if file == nil then
    error("paths.lua: give the paths file after `--`")
  end
  requests = {}
  for line in io.lines(file) do
    line = line:gsub("%s+$", "")
    if line ~= "" then
      requests[#requests + 1] = wrk.format("GET", line)
    end
  end
  if #requests == 0 then
    error("paths.lua: no paths in " .. file)
  end
  index = ((id or 0) * 7919) % #requests
  statuses = {}
  if args[2] ~= "count" then
    response = nil
  end
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
  end
  return requests[index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, reqs)
  local hist = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, n in pairs(s) do
        hist[code] = (hist[code] or 0) + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(hist) do
    parts[#parts + 1] = string.format('"%d":%d', code, n)
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p75_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d},' ..
    '"statuses":{%s}}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ",")))
end
