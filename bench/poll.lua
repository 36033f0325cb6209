-- wrk script of bench/poll.py: POST / with a different osu-token on every request.
--
-- Arguments (after "--"):
--   1 tokens file (one token per line)     2 body file (the poll body, e.g. one ping frame)
--   3 alternative body file or "-"         4 every k-th request uses the alternative body (0 = never)
--   5 "1" to send Accept-Encoding: gzip
-- Requests are formatted once at start-up. The normal body rotates through the tokens in file
-- order; the alternative body has its own rotation so that every user sends it rarely (e.g. a
-- public message on 1% of requests is spread evenly over all users, not always the same ten).
-- done() prints one line "WRKJSON {...}" with the exact percentiles (microseconds).

local normal, alt = {}, {}
local n, i, j, every = 0, 0, 0, 0

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  local tokens_path, body_path, alt_path = args[1], args[2], args[3]
  every = tonumber(args[4] or "0") or 0
  local gzip = args[5] == "1"
  local body = read_file(body_path)
  local alt_body = nil
  if alt_path and alt_path ~= "-" and every > 0 then
    alt_body = read_file(alt_path)
  end
  for line in io.lines(tokens_path) do
    if #line > 0 then
      n = n + 1
      local headers = { ["osu-token"] = line, ["User-Agent"] = "osu!" }
      if gzip then headers["Accept-Encoding"] = "gzip" end
      normal[n] = wrk.format("POST", "/", headers, body)
      if alt_body then
        local h2 = { ["osu-token"] = line, ["User-Agent"] = "osu!" }
        if gzip then h2["Accept-Encoding"] = "gzip" end
        alt[n] = wrk.format("POST", "/", h2, alt_body)
      end
    end
  end
  if n == 0 then error("no tokens in " .. tokens_path) end
end

function request()
  i = i + 1
  if every > 0 and i % every == 0 then
    j = j + 1
    -- a stride coprime with most n, so consecutive senders are far apart in the token list
    return alt[((j * 7919) % n) + 1]
  end
  return normal[((i - 1) % n) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
