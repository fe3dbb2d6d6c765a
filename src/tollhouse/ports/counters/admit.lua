-- Admit one call: check every limit, then take from all of them or from none.
-- Runs atomically inside Redis, so concurrent admits from any number of gateways see each
-- other's takes exactly, and a key seen for the first time needs no set-up step to race.
--
-- KEYS: nb bucket hashes, nc lease zsets, ng budget hashes, ng budget zsets (that order),
--       then the zset of this process's reservations not yet ended (what makes settle.lua
--       idempotent: see there).
-- ARGV: id, lease_ttl_ms, nb, nc, ng,
--       then per bucket (capacity, window_us, amount), per lease key (limit),
--       per budget (limit_nanousd, reserve_nanousd, period_ttl_s),
--       then open_ms: how long an admitted id stays in the open zset if never settled.
-- Reply: {admitted 0|1, refused index (0-based over buckets, leases, budgets) or -1,
--         retry_after_us or -1, remaining per limit..., us until full per bucket...}
-- Time is Redis's own clock, so gateways with skewed clocks still agree.
-- Lua numbers are doubles and print with 14 digits: integers go back to Redis as %d.
local function int(x) return string.format('%d', x) end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local id = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local nb, nc, ng = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
local refused, retry_us = -1, -1
local levels, remaining, reset_us = {}, {}, {}

for i = 1, nb do
  local cap, win, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local level = cap
  if state[1] then
    local elapsed = math.max(0, now_us - tonumber(state[2]))
    level = math.min(cap, tonumber(state[1]) + elapsed * cap / win)
  end
  levels[i] = level
  if level < amount and refused < 0 then
    refused = i - 1
    if amount <= cap then retry_us = math.ceil((amount - level) * win / cap) end
  end
end

for i = 1, nc do
  local key, limit = KEYS[nb + i], tonumber(ARGV[a])
  a = a + 1
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now_ms))
  local active = redis.call('ZCARD', key)
  remaining[nb + i] = math.max(0, limit - active)
  if active >= limit and refused < 0 then refused = nb + i - 1 end
end

local budget_args = a
for i = 1, ng do
  local hash, held_set = KEYS[nb + nc + i], KEYS[nb + nc + ng + i]
  local limit, reserve = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 3
  local expired = redis.call('ZRANGEBYSCORE', held_set, '-inf', int(now_ms))
  if #expired > 0 then
    local lapsed = 0
    for _, member in ipairs(expired) do
      lapsed = lapsed + tonumber(string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', held_set, '-inf', int(now_ms))
    if redis.call('HINCRBY', hash, 'held', int(-lapsed)) < 0 then
      redis.call('HSET', hash, 'held', 0)
    end
  end
  local state = redis.call('HMGET', hash, 'spent', 'held')
  local used = tonumber(state[1] or 0) + tonumber(state[2] or 0)
  remaining[nb + nc + i] = math.max(0, limit - used)
  if (used >= limit or used + reserve > limit) and refused < 0 then
    refused = nb + nc + i - 1
  end
end

local reply = {0, refused, retry_us}
if refused < 0 then
  reply[1] = 1
  local open_set = KEYS[nb + nc + 2 * ng + 1]
  local open_ms = tonumber(ARGV[a])
  redis.call('ZREMRANGEBYSCORE', open_set, '-inf', int(now_ms))
  redis.call('ZADD', open_set, int(now_ms + open_ms), id)
  if redis.call('PTTL', open_set) < open_ms then redis.call('PEXPIRE', open_set, int(open_ms)) end
  a = 6
  for i = 1, nb do
    local cap, win, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 3
    levels[i] = levels[i] - amount
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', levels[i]), 'ts', int(now_us))
    redis.call('PEXPIRE', KEYS[i], int(math.ceil((cap - levels[i]) * win / cap / 1000) + 1000))
  end
  local expires_ms = now_ms + lease_ms
  for i = 1, nc do
    local key = KEYS[nb + i]
    redis.call('ZADD', key, int(expires_ms), id)
    if redis.call('PTTL', key) < lease_ms then redis.call('PEXPIRE', key, int(lease_ms)) end
    remaining[nb + i] = remaining[nb + i] - 1
  end
  a = budget_args
  for i = 1, ng do
    local hash, held_set = KEYS[nb + nc + i], KEYS[nb + nc + ng + i]
    local reserve, period_s = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 3
    redis.call('HINCRBY', hash, 'held', int(reserve))
    if redis.call('TTL', hash) < 0 then redis.call('EXPIRE', hash, period_s) end
    redis.call('ZADD', held_set, int(expires_ms), id .. ':' .. int(reserve))
    -- Lives as long as the budget: it must still be there to purge, or `held` stays high.
    if redis.call('TTL', held_set) < 0 then redis.call('EXPIRE', held_set, period_s) end
    remaining[nb + nc + i] = remaining[nb + nc + i] - reserve
  end
end

for i = 1, nb do remaining[i] = math.max(0, math.floor(levels[i])) end
for i = 1, nb + nc + ng do reply[#reply + 1] = remaining[i] end
a = 6
for i = 1, nb do
  local cap, win = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 3
  reply[#reply + 1] = math.ceil(math.max(0, cap - levels[i]) * win / cap)
end
return reply
