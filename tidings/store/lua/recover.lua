-- What needs dispatching again: transactions whose lease lapsed, and subscribed handlers
-- of outstanding events that have no transaction at all (a lost broker message).
-- Each is pushed back by `lease_ms`/`grace_ms`, so it is handed out once per period.
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

for _, member in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)) do
  local scope, key, txk = member_scope(member)
  local env = string.match(member, '^[^|]+|([^|]+)|')
  if envs[env] then
    local name = redis.call('HGET', ev_key(scope, key), 'eventName')
    local queue = name and queue_of(env, name, txk)
    if queue then
      redis.call('ZADD', LEASES, now + lease_ms, member)
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
