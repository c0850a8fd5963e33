-- What needs dispatching again, in the given environments: transactions whose lease
-- lapsed (their worker died), and subscribed handlers of outstanding events that have no
-- transaction at all (a lost broker message, or an API that died before publishing).
-- Whatever is looked at moves back in its queue (a lease by `lease_ms`, an event by
-- `grace_ms`), so that each is handed out once a period and nothing stays ahead of the
-- rest. A lapsed lease handed out is noted in RECOVERED: the next claim may take it over.
-- ARGV: now, lease_ms, grace_ms, limit, env...
-- Returns {owner|env|key|txKey|queue, ...}
local now, lease_ms, grace_ms, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local found = {}

local function queue_of(env, name, txk)
  local spec = redis.call('HGET', ROOT .. ':subs:' .. env .. ':' .. name, txk)
  if spec then return cjson.decode(spec).queue end
  return nil
end

for i = 5, #ARGV do
  local env = ARGV[i]
  local leases, recovered = leases_key(env), recovered_key(env)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
    local scope, key, txk = member_scope(member)
    local name = redis.call('HGET', ev_key(scope, key), 'eventName')
    if not name then
      redis.call('ZREM', leases, member)  -- the event has expired
      redis.call('ZREM', recovered, member)
    else
      redis.call('ZADD', leases, now + lease_ms, member)
      local queue = queue_of(env, name, txk)
      if queue then
        redis.call('ZADD', recovered, now, member)
        table.insert(found, member .. '|' .. queue)
      end
    end
  end

  local outstanding = outstanding_key(env)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', outstanding, '-inf', now, 'LIMIT', 0, limit)) do
    local scope, key = member_scope(member)
    local ek = ev_key(scope, key)
    local name = redis.call('HGET', ek, 'eventName')
    if not name then
      redis.call('ZREM', outstanding, member)
    else
      redis.call('ZADD', outstanding, now + grace_ms, member)
      for _, txk in ipairs(redis.call('SMEMBERS', ek .. ':expected')) do
        local queue = queue_of(env, name, txk)
        if queue and redis.call('HEXISTS', ek .. ':txs', txk) == 0 then
          table.insert(found, member .. '|' .. txk .. '|' .. queue)
        end
      end
    end
  end
end
return found
