-- Store a batch of events, all or nothing, and snapshot which handlers subscribe to each.
-- ARGV: as ('scope' or 'secret'), who, platform, label, actor, now, ttl (s), grace (ms),
--       then 6 per event: key, _id, payload, headers, query (raw JSON), eventName
-- As 'scope', `who` is the scope prefix. As 'secret', it is the sha256 of a secret key,
-- checked here so that an emit costs one round trip: the key's owner and environment are
-- the scope, and its name the label and actor.
-- Returns {'ok', owner, env, label, {{txKey, queue, ...} per event}} | {'unknown' | 'revoked'}
-- An event with subscribers is "outstanding": recovery looks at it after `grace` ms.
local as, who, platform, label, actor, now, ttl, grace = unpack(ARGV, 1, 8)
local scope, owner, env
if as == 'secret' then
  local secret = redis.call('HMGET', ROOT .. ':secret:' .. who, 'name', 'env', 'owner', 'revokedAt')
  if not secret[1] then return {'unknown'} end
  if secret[4] then return {'revoked'} end
  label, env, owner, actor = secret[1], secret[2], secret[3], secret[1]
  scope = ROOT .. ':' .. owner .. ':' .. env
else
  scope = who
  owner, env = string.match(scope, '^[^:]+:([^:]+):([^:]+)$')
end
ttl = tonumber(ttl)
local expires_at = tonumber(now) + ttl * 1000
local cutoff = tonumber(now) - ttl * 1000
local history = cjson.encode({history_entry('pending', nil, now, actor)})

local routes_of = {}
for i = 9, #ARGV, 6 do
  local key, id, payload, headers, query, name = unpack(ARGV, i, i + 5)
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
  table.insert(routes_of, routes)
end
return {'ok', owner, env, label, routes_of}
