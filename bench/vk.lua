-- Unique VK wall comments from many citizens: each request is a new event, about 1.6 KB.
local counter = 0
local group = os.getenv("BENCH_GROUP") or "218734591"
local secret = os.getenv("BENCH_SECRET") or "bench-secret"
-- A citizen's comment as long as real ones often are: the body is about 1.6 KB.
local complaint = string.rep("Ямы огромные, машины ломаются, дети ходят по проезжей части. ", 12)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local id = string.format("%08x%08x", math.random(0, 0x7fffffff), counter)
  local body = '{"type":"wall_reply_new","event_id":"' .. id .. '","v":"5.199","group_id":' .. group ..
    ',"secret":"' .. secret .. '","object":{"id":' .. counter .. ',"from_id":' .. math.random(1000000, 900000000) ..
    ',"date":' .. os.time() .. ',"text":"Когда отремонтируют дорогу на улице Садовой у дома ' .. counter ..
    '? ' .. complaint .. '","post_id":' .. (counter % 50 + 1) .. ',"owner_id":-' .. group ..
    ',"parents_stack":[],"attachments":[]}}'
  return wrk.format(nil, nil, nil, body)
end

-- BENCH_RATE: bench/pace.lua, beside this file.
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "pace.lua")
