-- What needs dispatching again: transactions whose lease lapsed, and subscribed handlers
-- of outstanding events that have no transaction at all (a lost broker message).
-- Each is handed out once per period: a lapsed lease is noted in RECOVERED for `lease_ms`
-- (its lease stays lapsed, so that the next claim may take it over), an outstanding event
-- is pushed back by `grace_ms`.
-- ARGV: now, lease_ms, grace_ms, limit, env...
-- Returns {owner|env|key|txKey|queue, ...}
local now, lease_ms, grace_ms, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local envs = {}
for i = 5, #ARGV do envs[ARGV[i]] = true end
local found = {}

local function queue_of(env, name, txk)
  local spec = redis.call('HGET', ROOT .. ':subs:' .. env .. ':' .. name, txk)
  if spec then return cjson.decode(spec).queue end
  return nil
end

redis.call('ZREMRANGEBYSCORE', RECOVERED, '-inf', now - lease_ms)
for _, member in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)) do
  local scope, key, txk = member_scope(member)
  local env = string.match(member, '^[^|]+|([^|]+)|')
  if envs[env] and not redis.call('ZSCORE', RECOVERED, member) then
    local name = redis.call('HGET', ev_key(scope, key), 'eventName')
    local queue = name and queue_of(env, name, txk)
    if queue then
      redis.call('ZADD', RECOVERED, now, member)
      table.insert(found, member .. '|' .. queue)
    elseif not name then
      redis.call('ZREM', LEASES, member)  -- the event has expired
    end
  end
end

for _, member in ipairs(redis.call('ZRANGEBYSCORE', OUTSTANDING, '-inf', now, 'LIMIT', 0, limit)) do
  local scope, key = member_scope(member)
  local env = string.match(member, '^[^|]+|([^|]+)|')
  if envs[env] then
    local ek = ev_key(scope, key)
    local name = redis.call('HGET', ek, 'eventName')
    if not name then
      redis.call('ZREM', OUTSTANDING, member)
    else
      redis.call('ZADD', OUTSTANDING, now + grace_ms, member)
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
