-- A worker's claim of a transaction, leased for lease_ms.
-- ARGV: scope, key, txKey, now, actor, _id, txn, lease_ms, attempt, claim token
-- A new transaction is created in "processing". An existing "processing" one is taken
-- over when its lease has lapsed (its worker died), or when `attempt` names the attempt
-- that follows its last one (a scheduled retry). Anything else is skipped: an ended
-- transaction never runs again, and a live lease means another worker has it.
-- Returns {'ok', attempts, payload, headers, query, createdAt, _id, eventName, platform,
--          label} | {'skip', why}
local scope, key, txk, now, actor, id, txn, lease_ms, attempt, token = unpack(ARGV, 1, 10)
local ev = load_event(scope, key)
if not ev then return {'skip', 'gone'} end
local tk = tx_key(scope, key, txk)
local member = lease_member(scope, key, txk)
local tx = redis.call('HMGET', tk, 'state', 'attempts')
if not tx[1] then
  create_tx(scope, ev, txk, 'processing', now, actor, id, txn)
  refresh_event(scope, key, actor, now)
elseif tx[1] ~= 'processing' then
  return {'skip', tx[1]}
else
  local next_attempt = tonumber(tx[2]) + 1
  local lease = redis.call('ZSCORE', leases_key(env_of(scope)), member)
  local recovered = redis.call('ZSCORE', recovered_key(env_of(scope)), member)
  local reason
  if tonumber(attempt) == next_attempt then
    reason = 'attempt ' .. next_attempt
  elseif recovered or (lease and tonumber(lease) < tonumber(now)) then
    reason = 'lease expired: claimed again'
  else
    return {'skip', 'busy'}
  end
  append_history(tk, 'processing', 'processing', now, actor, reason)
  redis.call('HSET', tk, 'attempts', next_attempt)
  redis.call('HINCRBY', tk, 'v', 1)
end
redis.call('HSET', tk, 'claim', token)  -- what this worker's transact must show
redis.call('ZREM', recovered_key(env_of(scope)), member)
redis.call('ZADD', leases_key(env_of(scope)), tonumber(now) + tonumber(lease_ms), member)
local attempts = redis.call('HGET', tk, 'attempts')
local event = redis.call('HMGET', ev_key(scope, key), 'payload', 'headers', 'query',
                         'createdAt', '_id', 'eventName', 'platform', 'label')
return {'ok', attempts, unpack(event)}
