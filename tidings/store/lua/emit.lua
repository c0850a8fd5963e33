-- Store a batch of events, all or nothing, and snapshot which handlers subscribe to each.
-- ARGV: scope, now, ttl (s), env, actor, then 8 per event:
--   key, _id, payload, headers, query (raw JSON), eventName, platform, label
-- Returns, per event, the txKeys of the handlers subscribed to it.
local scope, now, ttl, env, actor = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local expires_at = tonumber(now) + ttl * 1000
local cutoff = tonumber(now) - ttl * 1000
local history = cjson.encode({history_entry('pending', nil, now, actor)})

local function subscribed(spec, platform, label)
  local s = cjson.decode(spec)
  if s.platform ~= nil and s.platform ~= cjson.null and s.platform ~= platform then return false end
  if s.label ~= nil and s.label ~= cjson.null and s.label ~= label then return false end
  if s.environments ~= nil and s.environments ~= cjson.null then
    for _, e in ipairs(s.environments) do if e == env then return true end end
    return false
  end
  return true
end

local result = {}
for i = 6, #ARGV, 8 do
  local key, id, payload, headers, query, name, platform, label = unpack(ARGV, i, i + 7)
  local ek = ev_key(scope, key)
  local expected = {}
  local subs = redis.call('HGETALL', ROOT .. ':subs:' .. name)
  for j = 1, #subs, 2 do
    if subscribed(subs[j + 1], platform, label) then table.insert(expected, subs[j]) end
  end
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
    redis.call('ZADD', OUTSTANDING, now, scope_member(scope, key))
  end
  for _, c in ipairs(combos(platform, label, name)) do
    index_add(idx_key(scope, c), now, key, cutoff, expires_at, now)
    for _, txk in ipairs(redis.call('SMEMBERS', missreg_key(scope, c))) do
      index_add(miss_key(scope, txk, c), now, key, cutoff, expires_at, now)
    end
  end
  table.insert(result, expected)
end
return result
