-- End one admitted call: correct its buckets, release its leases, and replace its budget
-- reservations by the actual spend; the spend is booked even if the reservation had
-- already expired. The caller runs it once per reservation (the Reservation is marked
-- ended in the process that holds it), so there is nothing to deduplicate here.
--
-- KEYS: nb bucket hashes, nc lease zsets, ng budget hashes, ng budget zsets.
-- ARGV: id, nb, nc, ng, cost_nanousd (-1: unknown, book the reservation),
--       then per bucket (capacity, window_us, give_back), per budget (reserve, period_ttl_s).
--       give_back = amount taken - actual amount: positive refunds, negative takes more.
-- Reply: 1.
local id = ARGV[1]
local nb, nc, ng = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

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
