-- Record a failed attempt that will be retried; the lease covers the wait, so that
-- recovery takes the transaction over only if the retry never comes.
-- ARGV: scope, key, txKey, now, actor, reason, lease_until
-- Returns 1, or 0 if the transaction is no longer processing.
local scope, key, txk, now, actor, reason, lease_until = unpack(ARGV, 1, 7)
local tk = tx_key(scope, key, txk)
if redis.call('HGET', tk, 'state') ~= 'processing' then return 0 end
append_history(tk, 'processing', 'processing', now, actor, reason)
redis.call('HINCRBY', tk, 'v', 1)
redis.call('ZADD', LEASES, lease_until, scope_member(scope, key) .. '|' .. txk)
return 1
