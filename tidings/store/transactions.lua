-- uses: keys records history indexes
-- A transaction's record, created and moved between states by the transaction scripts
-- (and re-runs). Times are epoch milliseconds passed in by the caller, so that scripts
-- stay deterministic.

local EVENT_FIELDS = {'createdAt', 'expiresAt', 'platform', 'label', 'eventName', 'key', '_id',
                      'ttl'}

-- The fields of an event that transactions need, by name, or nil if it does not exist.
local function load_event(scope, key) return read_fields(event_key(scope, key), EVENT_FIELDS) end

-- Write a new transaction in `state`.
local function create_tx(scope, ev, txk, state, now, actor, id, txn)
  local tk = transaction_key(scope, ev.key, txk)
  local ended = ''
  if state ~= 'processing' then ended = now end
  redis.call('HSET', tk, '_id', id, 'key', ev.key, 'txn', txn, 'txKey', txk,
             'eventId', ev._id, 'eventName', ev.eventName, 'createdAt', now, 'ttl', ev.ttl,
             'state', state, 'startedAt', now, 'endedAt', ended, 'v', 1, 'attempts', 1,
             'history', cjson.encode({history_entry(state, nil, now, actor)}))
  redis.call('PEXPIREAT', tk, ev.expiresAt)
  local txs = event_txs_key(scope, ev.key)
  redis.call('HSET', txs, txk, state)
  redis.call('PEXPIREAT', txs, ev.expiresAt)
  index_transaction(scope, ev, txk, nil, state, now)
end

-- A transaction has ended: no lease to renew or to recover.
local function release_lease(scope, key, txk)
  local member = lease_member(scope, key, txk)
  redis.call('ZREM', leases_key(env_of(scope)), member)
  redis.call('ZREM', recovered_key(env_of(scope)), member)
end

-- Change an existing transaction's state.
local function move_tx(scope, ev, txk, old_state, state, now, actor, reason)
  local tk = transaction_key(scope, ev.key, txk)
  local ended = ''
  if state ~= 'processing' then ended = now end
  redis.call('HSET', tk, 'state', state, 'endedAt', ended)
  append_history(tk, state, old_state, now, actor, reason)
  redis.call('HINCRBY', tk, 'v', 1)
  redis.call('HSET', event_txs_key(scope, ev.key), txk, state)
  if old_state ~= state then
    index_transaction(scope, ev, txk, old_state, state, now)
  end
end
