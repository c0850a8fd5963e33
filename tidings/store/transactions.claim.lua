-- uses: keys records history transactions event_state
-- A worker's claim of a transaction, leased for lease_ms.
-- ARGV: scope, key, txKey, now, actor, _id, txn, lease_ms, attempt, claim token
-- A new transaction is created in "processing". An existing "processing" one is taken
-- over when its lease has lapsed (its worker died), or when `attempt` names the attempt
-- that follows its last one (a scheduled retry). Anything else is skipped: an ended
-- transaction never runs again, and a live lease means another worker has it.
-- Returns status 'ok', attempts, and the event's payload, headers, query, createdAt, _id,
--         eventName, platform, label | status 'skip', why
local scope, key, txk, now, actor, id, txn, lease_ms, attempt, token = unpack(ARGV, 1, 10)
local ev = load_event(scope, key)
if not ev then return as_pairs({status = 'skip', why = 'gone'}) end
local tk = transaction_key(scope, key, txk)
local member = lease_member(scope, key, txk)
local leases, recovered = leases_key(env_of(scope)), recovered_key(env_of(scope))
local tx = read_fields(tk, {'state', 'attempts'})
if not tx then
  create_tx(scope, ev, txk, 'processing', now, actor, id, txn)
  refresh_event(scope, key, actor, now)
elseif tx.state ~= 'processing' then
  return as_pairs({status = 'skip', why = tx.state})
else
  local next_attempt = tonumber(tx.attempts) + 1
  local lease = redis.call('ZSCORE', leases, member)
  local reason
  if tonumber(attempt) == next_attempt then
    reason = 'attempt ' .. next_attempt
  elseif redis.call('ZSCORE', recovered, member) or (lease and tonumber(lease) < tonumber(now)) then
    reason = 'lease expired: claimed again'
  else
    return as_pairs({status = 'skip', why = 'busy'})
  end
  append_history(tk, 'processing', 'processing', now, actor, reason)
  redis.call('HSET', tk, 'attempts', next_attempt)
  redis.call('HINCRBY', tk, 'v', 1)
end
redis.call('HSET', tk, 'claim', token)  -- what this worker's transact must show
redis.call('ZREM', recovered, member)
redis.call('ZADD', leases, tonumber(now) + tonumber(lease_ms), member)
local claimed = read_fields(event_key(scope, key), {'payload', 'headers', 'query', 'createdAt',
                                                    '_id', 'eventName', 'platform', 'label'})
claimed.status = 'ok'
claimed.attempts = redis.call('HGET', tk, 'attempts')
return as_pairs(claimed)
