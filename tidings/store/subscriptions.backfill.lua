-- uses: keys records event_state
-- Subscribe a handler to events emitted before it existed: up to `limit` events of one
-- scope, from `since` on, that match its combo and have no transaction with its txKey.
-- ARGV: scope, txKey, combo, since, offset, limit, now, grace (ms)
-- Returns offset (of the next page, or '' after the last), keys (of the events subscribed)
local scope, txk, c, since, offset, limit, now, grace = unpack(ARGV, 1, 8)
local has = tx_index_key(scope, 'any', txk, c)
local page = redis.call('ZRANGEBYSCORE', index_key(scope, c), since, '+inf', 'LIMIT', offset, limit)
local next_offset = ''
if #page == tonumber(limit) then next_offset = tonumber(offset) + #page end
local found = {}
for _, key in ipairs(page) do
  local expected = event_expected_key(scope, key)
  if not redis.call('ZSCORE', has, key) and redis.call('SISMEMBER', expected, txk) == 0
      and redis.call('EXISTS', event_key(scope, key)) == 1 then
    redis.call('SADD', expected, txk)
    redis.call('PEXPIREAT', expected, redis.call('HGET', event_key(scope, key), 'expiresAt'))
    refresh_event(scope, key, 'backfill', now)
    redis.call('ZADD', outstanding_key(env_of(scope)), 'NX', tonumber(now) + tonumber(grace),
               scope_member(scope, key))
    table.insert(found, key)
  end
end
return as_pairs({offset = next_offset, keys = found})
