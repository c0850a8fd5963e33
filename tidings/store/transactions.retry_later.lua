-- uses: keys records history
-- Record a failed attempt that will be retried; the lease covers the wait, so that
-- recovery takes the transaction over only if the retry never comes.
-- ARGV: scope, key, txKey, now, actor, reason, lease_until, claim token
-- Returns 1, or 0 if the transaction is no longer this claim's to retry.
local scope, key, txk, now, actor, reason, lease_until, token = unpack(ARGV, 1, 8)
local tk = transaction_key(scope, key, txk)
local tx = read_fields(tk, {'state', 'claim'})
if not tx or tx.state ~= 'processing' or tx.claim ~= token then return 0 end
append_history(tk, 'processing', 'processing', now, actor, reason)
redis.call('HINCRBY', tk, 'v', 1)
redis.call('ZADD', leases_key(env_of(scope)), lease_until, lease_member(scope, key, txk))
return 1
