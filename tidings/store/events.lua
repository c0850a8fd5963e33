-- uses: keys records history indexes
-- Storing events: the scripts that store them (emit, and transact for follow-ups) share it.

-- The handlers subscribed to an event: their txKeys, and {txKey, queue, ...} to route it.
-- Processes register them in tidings:subs:{env}:{eventName} (see tidings/store/keys.py).
local function subscribers(env, owner, name, platform, label)
  local expected, routes = {}, {}
  local subs = redis.call('HGETALL', subscriptions_key(env, name))
  for j = 1, #subs, 2 do
    local s = cjson.decode(subs[j + 1])
    local serves = s.owners == nil or s.owners == cjson.null
    if not serves then
      for _, o in ipairs(s.owners) do if o == owner then serves = true end end
    end
    if serves and (s.platform == cjson.null or s.platform == platform)
        and (s.label == cjson.null or s.label == label) then
      table.insert(expected, subs[j])
      table.insert(routes, subs[j])
      table.insert(routes, s.queue)
    end
  end
  return expected, routes
end

-- Store events all or nothing (the caller has validated them), and snapshot which handlers
-- subscribe to each: ARGV from `first` on holds 7 per event: key, _id, payload, headers,
-- query (raw JSON), eventName, idempotency key ('' for none).
-- An event whose idempotency key came with an event stored within `idem_ttl` seconds
-- (default and at most: the retention) is not stored: that first event stands for it.
-- Returns, per event, field/value pairs: routes ({txKey, queue, ...}), duplicateOf (the
-- key of the event first stored with its idempotency key, or '' when it was stored).
-- An event with subscribers is "outstanding": recovery looks at it after `grace` ms.
local function store_events(scope, env, platform, label, actor, now, ttl, grace, first, idem_ttl)
  ttl = tonumber(ttl)
  idem_ttl = math.min(tonumber(idem_ttl) or ttl, ttl)
  local expires_at = tonumber(now) + ttl * 1000
  local cutoff = tonumber(now) - ttl * 1000
  local history = cjson.encode({history_entry('pending', nil, now, actor)})
  local stored = {}
  for i = first, #ARGV, 7 do
    local key, id, payload, headers, query, name, ikey = unpack(ARGV, i, i + 6)
    local seen = ikey ~= '' and redis.call('GET', idempotency_key(scope, ikey))
    local routes = {}
    if not seen then
      if ikey ~= '' then redis.call('SET', idempotency_key(scope, ikey), key, 'EX', idem_ttl) end
      local ek = event_key(scope, key)
      local expected
      expected, routes = subscribers(env, (owner_env(scope)), name, platform, label)
      local awaited = '0'
      if #expected > 0 then awaited = '1' end
      redis.call('HSET', ek, '_id', id, 'key', key, 'payload', payload,
                 'headers', headers, 'query', query, 'eventName', name, 'platform', platform,
                 'label', label, 'createdAt', now, 'expiresAt', expires_at, 'ttl', ttl,
                 'state', 'pending', 'history', history, 'v', 1, 'hasTransactions', '0',
                 'totalTransactions', '0', 'hasFutureTransactions', awaited,
                 'isCompleted', '0')
      redis.call('PEXPIREAT', ek, expires_at)
      if #expected > 0 then
        local expected_key = event_expected_key(scope, key)
        redis.call('SADD', expected_key, unpack(expected))
        redis.call('PEXPIREAT', expected_key, expires_at)
        redis.call('ZADD', outstanding_key(env), tonumber(now) + tonumber(grace),
                   scope_member(scope, key))
      end
      index_event(scope, key, platform, label, name, now, cutoff, expires_at)
    end
    table.insert(stored, as_pairs({routes = routes, duplicateOf = seen or ''}))
  end
  return stored
end
