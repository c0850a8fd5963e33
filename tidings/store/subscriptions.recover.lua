-- uses: keys records
-- What needs dispatching again, in the given environments: transactions whose lease
-- lapsed (their worker died), and subscribed handlers of outstanding events that have no
-- transaction at all (a lost broker message, or an API that died before publishing).
-- Whatever is looked at moves back in its queue (a lease by `lease_ms`, an event by
-- `grace_ms`), so that each is handed out once a period and nothing stays ahead of the
-- rest. A lapsed lease handed out is noted in RECOVERED: the next claim may take it over.
-- ARGV: now, lease_ms, grace_ms, limit, env...
-- Returns a list of work items, each owner, env, key, txKey, queue
local now, lease_ms, grace_ms, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local found = {}

local function queue_of(env, name, txk)
  local spec = redis.call('HGET', subscriptions_key(env, name), txk)
  if spec then return cjson.decode(spec).queue end
  return nil
end

local function hand_out(owner, env, key, txk, queue)
  table.insert(found, as_pairs({owner = owner, env = env, key = key, txKey = txk, queue = queue}))
end

for i = 5, #ARGV do
  local env = ARGV[i]
  local leases, recovered = leases_key(env), recovered_key(env)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
    local owner, _, key, txk = parse_member(member)
    local name = redis.call('HGET', event_key(scope_key(owner, env), key), 'eventName')
    if not name then
      redis.call('ZREM', leases, member)  -- the event has expired
      redis.call('ZREM', recovered, member)
    else
      redis.call('ZADD', leases, now + lease_ms, member)
      local queue = queue_of(env, name, txk)
      if queue then
        redis.call('ZADD', recovered, now, member)
        hand_out(owner, env, key, txk, queue)
      end
    end
  end

  local outstanding = outstanding_key(env)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', outstanding, '-inf', now, 'LIMIT', 0, limit)) do
    local owner, _, key = parse_member(member)
    local scope = scope_key(owner, env)
    local name = redis.call('HGET', event_key(scope, key), 'eventName')
    if not name then
      redis.call('ZREM', outstanding, member)
    else
      redis.call('ZADD', outstanding, now + grace_ms, member)
      for _, txk in ipairs(redis.call('SMEMBERS', event_expected_key(scope, key))) do
        local queue = queue_of(env, name, txk)
        if queue and redis.call('HEXISTS', event_txs_key(scope, key), txk) == 0 then
          hand_out(owner, env, key, txk, queue)
        end
      end
    end
  end
end
return found
