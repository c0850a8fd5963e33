-- Store a batch of events, all or nothing, and snapshot which handlers subscribe to each.
-- ARGV: scope, now, ttl (s), env, actor, grace (ms), then 8 per event:
--   key, _id, payload, headers, query (raw JSON), eventName, platform, label
-- Returns, per event, {txKey, queue, ...} of the handlers subscribed to it.
-- An event with subscribers is "outstanding": recovery looks at it after `grace` ms.
local scope, now, ttl, env, actor, grace = unpack(ARGV, 1, 6)
ttl = tonumber(ttl)
local expires_at = tonumber(now) + ttl * 1000
local cutoff = tonumber(now) - ttl * 1000
local history = cjson.encode({history_entry('pending', nil, now, actor)})


local result = {}
for i = 7, #ARGV, 8 do
  local key, id, payload, headers, query, name, platform, label = unpack(ARGV, i, i + 7)
  local ek = ev_key(scope, key)
  local expected, routes = subscribers(env, name, platform, label)
  redis.call('HSET', ek, '_id', id, 'key', key, 'payload', payload,
             'headers', headers, 'query', query, 'eventName', name, 'platform', platform,
             'label', label, 'createdAt', now, 'expiresAt', expires_at, 'ttl', ttl,
             'state', 'pending', 'history', history, 'v', 1, 'hasTransactions', '0',
             'totalTransactions', '0', 'hasFutureTransactions', bool(#expected > 0),
             'isCompleted', '0')
  redis.call('PEXPIREAT', ek, expires_at)
  if #expected > 0 then
    redis.call('SADD', ek .. ':expected', unpack(expected))
    redis.call('PEXPIREAT', ek .. ':expected', expires_at)
    redis.call('ZADD', OUTSTANDING, tonumber(now) + tonumber(grace), scope_member(scope, key))
  end
  for _, c in ipairs(combos(platform, label, name)) do
    index_add(idx_key(scope, c), now, key, cutoff, expires_at, now)
    for _, txk in ipairs(redis.call('SMEMBERS', missreg_key(scope, c))) do
      index_add(miss_key(scope, txk, c), now, key, cutoff, expires_at, now)
    end
  end
  table.insert(result, routes)
end
return result
