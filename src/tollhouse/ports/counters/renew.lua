-- Renew the leases and budget holds of calls still running, so that they expire a short
-- lease after the last renewal instead of after the longest call could last: a call whose
-- settle never arrives (its process died, or Redis was away when it ended) gives its
-- capacity back within one lease.
--
-- KEYS: per reservation, its nc lease zsets, then its ng budget hashes and ng budget zsets;
--       last, the open zset of the process (see admit.lua).
-- ARGV: lease_ms, n, then per reservation (id, nc, ng, then ng reserves).
-- A reservation no longer in the open zset has been settled: it is left alone, so a
-- renewal that runs late (sent before a settle, run after it) never brings a lease back.
-- A lease or hold that lapsed meanwhile (renewals failed) is put back: the call still runs.
-- Reply: the number of reservations renewed.
local function int(x) return string.format('%d', x) end
local t = redis.call('TIME')
local now_ms = math.floor((tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000)
local lease_ms = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local expires = int(now_ms + lease_ms)
local open_set = KEYS[#KEYS]
local a, k, renewed = 3, 1, 0
for _ = 1, n do
  local id, nc, ng = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local open = redis.call('ZSCORE', open_set, id)
  for i = 0, nc - 1 do
    local key = KEYS[k + i]
    if open then
      redis.call('ZADD', key, expires, id)
      if redis.call('PTTL', key) < lease_ms then redis.call('PEXPIRE', key, int(lease_ms)) end
    end
  end
  k = k + nc
  for i = 0, ng - 1 do
    local hash, held_set = KEYS[k + i], KEYS[k + ng + i]
    local reserve = ARGV[a + i]
    if open and redis.call('ZADD', held_set, expires, id .. ':' .. reserve) == 1 then
      redis.call('HINCRBY', hash, 'held', reserve)
    end
  end
  k = k + 2 * ng
  a = a + ng
  if open then renewed = renewed + 1 end
end
return renewed
