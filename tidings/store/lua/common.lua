-- Shared by every script (prepended to each). Key names mirror tidings/store/keys.py.
-- Times are epoch milliseconds passed in by the caller, so that scripts stay deterministic.

local ROOT = 'tidings'
-- Per environment, so that one environment's backlog never hides another's work.
local function outstanding_key(env) return ROOT .. ':outstanding:' .. env end
local function leases_key(env) return ROOT .. ':leases:' .. env end
local function recovered_key(env) return ROOT .. ':recovered:' .. env end

local function ev_key(scope, key) return scope .. ':ev:' .. key end
local function tx_key(scope, key, txk) return scope .. ':tx:' .. key .. '|' .. txk end
local function idx_key(scope, combo) return scope .. ':idx|' .. combo end
local function txidx_key(scope, state, txk, combo)
  return scope .. ':txidx|' .. state .. '|' .. txk .. '|' .. combo
end
local function miss_key(scope, txk, combo) return scope .. ':miss|' .. txk .. '|' .. combo end
local function missreg_key(scope, combo) return scope .. ':missreg|' .. combo end
local function idempotency_key(scope, ikey) return scope .. ':idem:' .. ikey end
-- "tidings:{owner}:{env}" -> owner, env
local function owner_env(scope) return string.match(scope, '^[^:]+:([^:]+):([^:]+)$') end
local function env_of(scope)
  local _, env = owner_env(scope)
  return env
end
local function scope_member(scope, key)
  -- "tidings:{owner}:{env}" + key -> "{owner}|{env}|{key}"
  local owner, env = owner_env(scope)
  return owner .. '|' .. env .. '|' .. key
end
local function lease_member(scope, key, txk) return scope_member(scope, key) .. '|' .. txk end
local function member_scope(member)
  -- "{owner}|{env}|{key}[|{txKey}]" -> scope, key, txKey
  local owner, env, key, txk = string.match(member, '^([^|]+)|([^|]+)|([^|]+)|?(.*)$')
  return ROOT .. ':' .. owner .. ':' .. env, key, txk
end

-- The eight subsets of (platform, label, eventName) an event can be queried by.
local function combos(platform, label, name)
  local p, l, n = 'p=' .. platform, 'l=' .. label, 'n=' .. name
  return {'*', p, l, n, p .. '|' .. l, p .. '|' .. n, l .. '|' .. n, p .. '|' .. l .. '|' .. n}
end

-- Add to a sorted-set index, drop members past retention, and let the set expire with its
-- newest member.
local function index_add(key, score, member, cutoff, expires_at, now)
  redis.call('ZADD', key, score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. cutoff)
  local pttl = redis.call('PTTL', key)  -- PEXPIRETIME and PEXPIREAT GT need Redis 7
  if pttl < 0 or tonumber(now) + pttl < tonumber(expires_at) then
    redis.call('PEXPIREAT', key, expires_at)
  end
end

-- `reason` (beyond the original) says why a worker recorded the entry, e.g. a failed attempt.
local function history_entry(enter, exit, now, actor, reason)
  return {enterState = enter, exitState = exit or cjson.null, timestamp = tonumber(now),
          updatedBy = actor, reason = reason}
end

local function append_history(hkey, enter, exit, now, actor, reason)
  local history = cjson.decode(redis.call('HGET', hkey, 'history'))
  table.insert(history, history_entry(enter, exit, now, actor, reason))
  redis.call('HSET', hkey, 'history', cjson.encode(history))
end

local function bool(b) if b then return '1' else return '0' end end

-- Recompute an event's state and processing flags from its transactions and the handlers
-- subscribed to it; record a state change in its history.
local function refresh_event(scope, key, actor, now)
  local ek = ev_key(scope, key)
  local pairs_ = redis.call('HGETALL', ek .. ':txs')
  local total, processing, failed, state_of = 0, 0, 0, {}
  for i = 1, #pairs_, 2 do
    local s = pairs_[i + 1]
    state_of[pairs_[i]] = s
    total = total + 1
    if s == 'processing' then processing = processing + 1
    elseif s == 'failed' then failed = failed + 1 end
  end
  local future = false
  for _, txk in ipairs(redis.call('SMEMBERS', ek .. ':expected')) do
    local s = state_of[txk]
    if s == nil or s == 'processing' then future = true end
  end
  local completed = total > 0 and not future and processing == 0
  local state = 'pending'
  if completed then
    if failed > 0 then state = 'failed' else state = 'finished' end
  elseif total > 0 then
    state = 'processing'
  end

  local old = redis.call('HMGET', ek, 'state', 'totalTransactions', 'hasFutureTransactions',
                         'isCompleted', 'createdAt')
  local flags = {tostring(total), bool(future), bool(completed)}
  if old[1] == state and old[2] == flags[1] and old[3] == flags[2] and old[4] == flags[3] then
    return
  end
  redis.call('HSET', ek, 'state', state, 'hasTransactions', bool(total > 0),
             'totalTransactions', flags[1], 'hasFutureTransactions', flags[2],
             'isCompleted', flags[3])
  if old[1] ~= state then append_history(ek, state, old[1], now, actor) end
  redis.call('HINCRBY', ek, 'v', 1)
  if not future then
    redis.call('ZREM', outstanding_key(env_of(scope)), scope_member(scope, key))
  end
end

-- Move a transaction between the state indexes of every combo of its event; a new
-- transaction also enters the "any" indexes and leaves the "missing" ones.
local function reindex_tx(scope, ev, txk, old_state, new_state, now)
  local created, expires_at = ev[1], ev[2]
  local cutoff = tonumber(now) - tonumber(ev[8]) * 1000
  local key = ev[6]
  for _, c in ipairs(combos(ev[3], ev[4], ev[5])) do
    if old_state then
      redis.call('ZREM', txidx_key(scope, old_state, txk, c), key)
    else
      index_add(txidx_key(scope, 'any', txk, c), created, key, cutoff, expires_at, now)
      redis.call('ZREM', miss_key(scope, txk, c), key)
    end
    index_add(txidx_key(scope, new_state, txk, c), created, key, cutoff, expires_at, now)
  end
end

-- The fields of an event that the transaction scripts need, or nil if it does not exist.
local function load_event(scope, key)
  local ev = redis.call('HMGET', ev_key(scope, key), 'createdAt', 'expiresAt', 'platform',
                        'label', 'eventName', 'key', '_id', 'ttl')
  if not ev[1] then return nil end
  return ev
end

-- Write a new transaction in `state`.
local function create_tx(scope, ev, txk, state, now, actor, id, txn)
  local key = ev[6]
  local tk = tx_key(scope, key, txk)
  local ended = ''
  if state ~= 'processing' then ended = now end
  redis.call('HSET', tk, '_id', id, 'key', key, 'txn', txn, 'txKey', txk,
             'eventId', ev[7], 'eventName', ev[5], 'createdAt', now, 'ttl', ev[8],
             'state', state, 'startedAt', now, 'endedAt', ended, 'v', 1, 'attempts', 1,
             'history', cjson.encode({history_entry(state, nil, now, actor)}))
  redis.call('PEXPIREAT', tk, ev[2])
  local txs = ev_key(scope, key) .. ':txs'
  redis.call('HSET', txs, txk, state)
  redis.call('PEXPIREAT', txs, ev[2])
  reindex_tx(scope, ev, txk, nil, state, now)
end

-- A transaction has ended: no lease to renew or to recover.
local function release_lease(scope, key, txk)
  local member = lease_member(scope, key, txk)
  redis.call('ZREM', leases_key(env_of(scope)), member)
  redis.call('ZREM', recovered_key(env_of(scope)), member)
end

-- Change an existing transaction's state.
local function move_tx(scope, ev, txk, old_state, state, now, actor, reason)
  local key = ev[6]
  local tk = tx_key(scope, key, txk)
  local ended = ''
  if state ~= 'processing' then ended = now end
  redis.call('HSET', tk, 'state', state, 'endedAt', ended)
  append_history(tk, state, old_state, now, actor, reason)
  redis.call('HINCRBY', tk, 'v', 1)
  redis.call('HSET', ev_key(scope, key) .. ':txs', txk, state)
  if old_state ~= state then
    reindex_tx(scope, ev, txk, old_state, state, now)
  end
end

-- The handlers subscribed to an event: their txKeys, and {txKey, queue, ...} to route it.
-- Workers register them in tidings:subs:{env}:{eventName} (see tidings/store/keys.py).
local function subscribers(env, owner, name, platform, label)
  local expected, routes = {}, {}
  local subs = redis.call('HGETALL', ROOT .. ':subs:' .. env .. ':' .. name)
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
-- query (raw JSON), eventName, idempotency key ("" for none).
-- An event whose idempotency key came with an event stored within `idem_ttl` seconds
-- (default and at most: the retention) is not stored: that first event stands for it.
-- Returns {{txKey, queue, ...} per event}, {the first event's key, or "", per event}.
-- An event with subscribers is "outstanding": recovery looks at it after `grace` ms.
local function store_events(scope, env, platform, label, actor, now, ttl, grace, first, idem_ttl)
  ttl = tonumber(ttl)
  idem_ttl = math.min(tonumber(idem_ttl) or ttl, ttl)
  local expires_at = tonumber(now) + ttl * 1000
  local cutoff = tonumber(now) - ttl * 1000
  local history = cjson.encode({history_entry('pending', nil, now, actor)})
  local routes_of, firsts = {}, {}
  for i = first, #ARGV, 7 do
    local key, id, payload, headers, query, name, ikey = unpack(ARGV, i, i + 6)
    local seen = ikey ~= '' and redis.call('GET', idempotency_key(scope, ikey))
    local routes = {}
    if not seen then
      if ikey ~= '' then redis.call('SET', idempotency_key(scope, ikey), key, 'EX', idem_ttl) end
      local ek = ev_key(scope, key)
      local expected
      expected, routes = subscribers(env, (owner_env(scope)), name, platform, label)
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
        redis.call('ZADD', outstanding_key(env_of(scope)), tonumber(now) + tonumber(grace), scope_member(scope, key))
      end
      for _, c in ipairs(combos(platform, label, name)) do
        index_add(idx_key(scope, c), now, key, cutoff, expires_at, now)
        for _, txk in ipairs(redis.call('SMEMBERS', missreg_key(scope, c))) do
          index_add(miss_key(scope, txk, c), now, key, cutoff, expires_at, now)
        end
      end
    end
    table.insert(routes_of, routes)
    table.insert(firsts, seen or '')
  end
  return routes_of, firsts
end
