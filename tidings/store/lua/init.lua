-- Claim a transaction: create (key, txKey) in state "processing".
-- ARGV: scope, key, txKey, now, actor, _id, txn, lease_ms
-- With lease_ms > 0 (a worker's claim) the claim is leased, and a "processing" transaction
-- whose lease has expired is claimed again instead of refused.
-- Returns {'ok', fields...} | {'not_found'} | {'conflict', state}
local scope, key, txk, now, actor, id, txn, lease_ms = unpack(ARGV, 1, 8)
lease_ms = tonumber(lease_ms)
local ev = load_event(scope, key)
if not ev then return {'not_found'} end
local tk = tx_key(scope, key, txk)
local lease_member = scope_member(scope, key) .. '|' .. txk
local state = redis.call('HGET', tk, 'state')
if state then
  local lease = redis.call('ZSCORE', LEASES, lease_member)  -- API claims have none
  local expired = state == 'processing' and lease_ms > 0 and lease
    and tonumber(lease) < tonumber(now)
  if not expired then return {'conflict', state} end
  append_history(tk, 'processing', 'processing', now, actor .. ' (lease expired)')
  redis.call('HINCRBY', tk, 'v', 1)
  redis.call('HINCRBY', tk, 'attempts', 1)
else
  create_tx(scope, ev, txk, 'processing', now, actor, id, txn)
  refresh_event(scope, key, actor, now)
end
if lease_ms > 0 then
  redis.call('ZADD', LEASES, tonumber(now) + lease_ms, lease_member)
end
return {'ok', redis.call('HGETALL', tk)}
