-- Subscribe a handler to events emitted before it existed: up to `limit` events of one
-- scope, from `since` on, that match its combo and have no transaction with its txKey.
-- ARGV: scope, txKey, combo, since, offset, limit, now, grace (ms)
-- Returns {next offset or '', keys...}
local scope, txk, c, since, offset, limit, now, grace = unpack(ARGV, 1, 8)
local has = txidx_key(scope, 'any', txk, c)
local page = redis.call('ZRANGEBYSCORE', idx_key(scope, c), since, '+inf', 'LIMIT', offset, limit)
local found = {''}
if #page == tonumber(limit) then found[1] = tonumber(offset) + #page end
for _, key in ipairs(page) do
  local ek = ev_key(scope, key)
  if not redis.call('ZSCORE', has, key) and redis.call('SISMEMBER', ek .. ':expected', txk) == 0
      and redis.call('EXISTS', ek) == 1 then
    redis.call('SADD', ek .. ':expected', txk)
    redis.call('PEXPIREAT', ek .. ':expected', redis.call('HGET', ek, 'expiresAt'))
    refresh_event(scope, key, 'backfill', now)
    redis.call('ZADD', outstanding_key(env_of(scope)), 'NX', tonumber(now) + tonumber(grace), scope_member(scope, key))
    table.insert(found, key)
  end
end
return found
