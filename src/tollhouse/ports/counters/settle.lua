-- End one admitted call: correct its buckets, release its leases, and replace its budget
-- reservations by the actual spend; the spend is booked even if the reservation had
-- already expired. Idempotent on the reservation id: admit.lua put the id in the open zset
-- of its process, and only the run that takes it out does anything, so a settle retried
-- after a timeout (it may have run, its reply lost) is booked once.
--
-- KEYS: nb bucket hashes, nc lease zsets, ng budget hashes, ng budget zsets, the open zset.
-- ARGV: id, nb, nc, ng, cost_nanousd (-1: unknown, book the reservation),
--       then per bucket (capacity, window_us, give_back), per budget (reserve, period_ttl_s).
--       give_back = amount taken - actual amount: positive refunds, negative takes more.
-- Reply: 1, or 0 when the id was already settled (or never admitted).
local id = ARGV[1]
local nb, nc, ng = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('ZREM', KEYS[nb + nc + 2 * ng + 1], id) == 0 then return 0 end

-- Lua numbers are doubles and print with 14 digits: integers go back to Redis as %d.
local function int(x) return string.format('%d', x) end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[5])
local a = 6
for i = 1, nb do
  local cap, win, give_back = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  if give_back ~= 0 then
    local state = redis.call('HMGET', KEYS[i], 't', 'ts')
    local level = cap
    if state[1] then
      local elapsed = math.max(0, now_us - tonumber(state[2]))
      level = math.min(cap, tonumber(state[1]) + elapsed * cap / win)
    end
    level = math.min(cap, level + give_back)
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', level), 'ts', int(now_us))
    redis.call('PEXPIRE', KEYS[i], int(math.ceil((cap - level) * win / cap / 1000) + 1000))
  end
end

for i = 1, nc do redis.call('ZREM', KEYS[nb + i], id) end

for i = 1, ng do
  local hash, held_set = KEYS[nb + nc + i], KEYS[nb + nc + ng + i]
  local reserve, period_s = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  if redis.call('ZREM', held_set, id .. ':' .. int(reserve)) == 1 then
    if redis.call('HINCRBY', hash, 'held', int(-reserve)) < 0 then redis.call('HSET', hash, 'held', 0) end
  end
  local spend = cost
  if spend < 0 then spend = reserve end
  if spend > 0 then
    redis.call('HINCRBY', hash, 'spent', int(spend))
    if redis.call('TTL', hash) < 0 then redis.call('EXPIRE', hash, period_s) end
  end
end
return 1
