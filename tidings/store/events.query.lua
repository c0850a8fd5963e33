-- uses: keys records
-- One page of an index, with the total; the rows are the events' hashes.
-- ARGV: scope, index, since (ms or ''), until (ms or ''), order ('asc' or 'desc'),
--       offset, count, now (ms), ttl (s), and for a "missing" index: txKey, combo
-- The page holds events with since <= createdAt < until, oldest first or newest first.
-- Cost: O(log N + count), but the first query for a (txKey, combo) pair builds its
-- "missing" index once, in O(N), and keeps it up to date from then on. A scope keeps at
-- most MAX_KEPT of them (each costs memory and a write per emit); past that, an index is
-- built for the one query and dropped a moment later.
-- Returns total, rows (each an event's field/value pairs)
local MAX_KEPT = 256
local scope, index, since, before, order, offset, count, now, ttl, txk, c = unpack(ARGV, 1, 11)
local cutoff = tonumber(now) - tonumber(ttl) * 1000
if txk and redis.call('SISMEMBER', missing_registry_key(scope, c), txk) == 0 then
  redis.call('ZDIFFSTORE', index, 2, index_key(scope, c), tx_index_key(scope, 'any', txk, c))
  local kept = missing_kept_key(scope)
  if redis.call('SCARD', kept) < MAX_KEPT then
    redis.call('SADD', kept, txk .. '|' .. c)
    redis.call('SADD', missing_registry_key(scope, c), txk)
    local newest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if #newest > 0 then
      redis.call('PEXPIREAT', index, tonumber(newest[2]) + tonumber(ttl) * 1000)
    end
  else
    redis.call('PEXPIRE', index, 1000)
  end
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. cutoff)
local first, upper = 0, redis.call('ZCARD', index)
if since ~= '' then first = redis.call('ZCOUNT', index, '-inf', '(' .. since) end
if before ~= '' then upper = redis.call('ZCOUNT', index, '-inf', '(' .. before) end
local total = math.max(upper - first, 0)
offset, count = tonumber(offset), tonumber(count)
local keys = {}
if count > 0 and offset < total then  -- else past the end
  if order == 'desc' then
    local last = upper - 1 - offset
    keys = redis.call('ZRANGE', index, math.max(last - count + 1, first), last)
    for i = 1, math.floor(#keys / 2) do keys[i], keys[#keys - i + 1] = keys[#keys - i + 1], keys[i] end
  else
    local start = first + offset
    keys = redis.call('ZRANGE', index, start, math.min(start + count, upper) - 1)
  end
end
local rows = {}
for _, key in ipairs(keys) do
  local row = redis.call('HGETALL', event_key(scope, key))
  if #row > 0 then table.insert(rows, row) end
end
return as_pairs({total = total, rows = rows})
