-- Constant-rate pacing for wrk (Debian's wrk has no --rate): with BENCH_RATE set, the
-- requests of all connections go out on one schedule, one every 1/rate s, whatever the
-- answers' times. A connection whose answer came late takes the next free slot at once
-- (so a slow server is offered the rate all the same, as platforms offer it), and one
-- that is early sleeps until its slot. (Pacing by a delay after each answer offers a
-- slower server less, in step with its answers: not how webhooks come.) Without it,
-- each connection sends again as soon as it has its answer.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("BENCH_RATE") or "0")

if rate > 0 then
  local interval, next_slot = 1000 / rate, nil
  -- wrk asks before each request of each connection (its first one too).
  delay = function()
    local now = now_ms()
    next_slot = next_slot or now
    local slot = next_slot
    next_slot = slot + interval
    return math.max(0, math.floor(slot - now + 0.5))
  end
end
