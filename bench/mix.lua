-- The realistic mix (bench/mix.py), one prepared request a line: "path<TAB>body".
-- Requests go out in the file's order, once each: wrk stops when every line has been
-- answered (a few sent after the last line, by connections still at work, go round
-- to the top again: re-deliveries, acknowledged and stored once).
local lines = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do
  local tab = string.find(line, "\t", 1, true)
  lines[#lines + 1] = {string.sub(line, 1, tab - 1), string.sub(line, tab + 1)}
end
local counter = 0
local answered = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local verified = false

request = function()
  if not verified then
    -- wrk calls this once to check the request before any connection opens, and never
    -- sends what it gets: give it the first line without moving on (it was skipped).
    verified = true
    return wrk.format(nil, lines[1][1], nil, lines[1][2])
  end
  counter = counter % #lines + 1
  local item = lines[counter]
  return wrk.format(nil, item[1], nil, item[2])
end

response = function(status, headers, body)
  answered = answered + 1
  if answered >= #lines then
    wrk.thread:stop()
  end
end

-- BENCH_RATE: bench/pace.lua, beside this file.
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "pace.lua")
