-- uses: keys lists records event_state transactions
-- Claim a transaction for good: create (key, txKey) in state "processing".
-- KEYS: the partition's meta. ARGV: key (16 bytes), txKey, now, actor, ttl (ms)
-- Returns status 'ok', record (the event's, with the transaction) | status 'not_found'
--       | status 'conflict', state
local key16, txk, now, actor, ttl = unpack(ARGV, 1, 5)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
if not ev then return as_pairs({status = 'not_found'}) end
if ev[EV.txs][txk] then return as_pairs({status = 'conflict', state = tx_state(ev[EV.txs][txk])}) end
local before = event_state(ev)
create_tx(part, ev, txk, 'processing', now, actor)
refresh_event(part, ev, before, now, actor)
local record = save_event(part, ev)
flush_list_changes()
return as_pairs({status = 'ok', record = record})
