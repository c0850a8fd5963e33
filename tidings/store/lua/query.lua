-- One page of an index, oldest first, with the total; the rows are the events' hashes.
-- ARGV: scope, index suffix, since (ms or ''), offset, count, now (ms), ttl (s),
--       and for a "missing" index: txKey, combo
-- Cost: O(log N + count), but the first query for a (txKey, combo) pair builds its
-- "missing" index once, in O(N).
local scope, suffix, since, offset, count, now, ttl, txk, c = unpack(ARGV, 1, 9)
local index = scope .. ':' .. suffix
local cutoff = tonumber(now) - tonumber(ttl) * 1000
if txk and redis.call('SISMEMBER', missreg_key(scope, c), txk) == 0 then
  redis.call('ZDIFFSTORE', index, 2, idx_key(scope, c), txidx_key(scope, 'any', txk, c))
  local newest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #newest > 0 then
    redis.call('PEXPIREAT', index, tonumber(newest[2]) + tonumber(ttl) * 1000)
  end
  redis.call('SADD', missreg_key(scope, c), txk)
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. cutoff)
local first = 0
if since ~= '' then first = redis.call('ZCOUNT', index, '-inf', '(' .. since) end
local total = redis.call('ZCARD', index) - first
local start = first + tonumber(offset)
local keys = {}
if tonumber(count) > 0 and tonumber(offset) < total then  -- else past the end
  keys = redis.call('ZRANGE', index, start, start + tonumber(count) - 1)
end
local rows = {}
for _, key in ipairs(keys) do
  local row = redis.call('HGETALL', ev_key(scope, key))
  if #row > 0 then table.insert(rows, row) end
end
return {total, rows}
