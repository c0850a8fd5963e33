-- uses: keys lists records transactions
-- Record a failed attempt that will be retried: the retry waits in the due set till
-- `due` (due.py); the lease covers the wait, so that recovery takes the transaction over
-- only if the retry never comes.
-- KEYS: the partition's meta. ARGV: key (16 bytes), txKey, now, actor, reason, due,
--       lease_until, claim number, ttl (ms)
-- Returns 1, or 0 if the transaction is no longer this claim's to retry.
local key16, txk, now, actor, reason, due, lease_until, claim, ttl = unpack(ARGV, 1, 9)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
local tx = ev and ev[EV.txs][txk]
if not tx or tx_state(tx) ~= 'processing' or tx[TX.claims] ~= tonumber(claim) then return 0 end
move_tx(part, ev, txk, 'processing', now, actor, reason)
save_event(part, ev)
redis.call('ZADD', leases_key(part), lease_until, lease_member(key16, txk))
redis.call('ZADD', due_key(part), due, lease_member(key16, txk))
flush_list_changes()
return 1
