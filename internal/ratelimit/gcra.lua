-- GCRA for one key, in one round trip. The arithmetic mirrors gcra.decide in
-- gcra.go; keep the two in step.
--
-- KEYS[1]  holds the theoretical arrival time (TAT), in microseconds of Redis's clock
-- ARGV[1]  emission interval: microseconds one unit of cost takes to refill
-- ARGV[2]  tolerance: interval × burst, in microseconds
-- ARGV[3]  cost of this call, at least 1
-- ARGV[4]  lease wanted: extra units to spend as well if the cost is allowed,
--          as many as are available up to this number; 0 if absent
--
-- Returns {allowed (1 or 0), remaining, retry_after µs, reset_after µs,
-- extra units granted}. Remaining is what is left after the cost and the
-- grant; nothing is granted when the cost is refused.
--
-- Redis's clock rather than the caller's, so that replicas with skewed clocks
-- agree. Microseconds since the epoch (about 2^51) are exact in Lua's doubles,
-- and every other operand is a whole number, so no rounding creeps in.
local now = redis.call('TIME')
now = now[1] * 1000000 + now[2]
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local extra = tonumber(ARGV[4]) or 0

-- GET gives false for a missing key, and tonumber(false) is nil.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval * tonumber(ARGV[3])
local allow_at = new_tat - tolerance

if allow_at > now then
  return {0, math.floor((now - tat + tolerance) / interval), allow_at - now, tat - now, 0}
end

-- Units available beyond the cost: floor((tolerance - (new_tat - now)) / interval).
local granted = math.min(math.max(extra, 0), math.floor((now - allow_at) / interval))
new_tat = new_tat + interval * granted
allow_at = allow_at + interval * granted

-- string.format, because Lua writes numbers with 14 significant digits and a
-- TAT has 16. The key lives exactly as long as it takes to refill: after
-- that, a missing key and a stored one decide the same.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now, granted}
