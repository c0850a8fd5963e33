-- uses: keys lists records event_state transactions
-- Finish a claimed transaction with its output and final state (/transact; a worker's
-- results go through transactions.finish).
-- KEYS: the partition's meta. ARGV: key (16 bytes), txKey, state, output (raw JSON), now,
--       actor, ttl (ms)
-- Returns status 'ok', record | status 'not_found' | status 'conflict', why
local key16, txk, state, output, now, actor, ttl = unpack(ARGV, 1, 7)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
local tx = ev and ev[EV.txs][txk]
if not tx then return as_pairs({status = 'not_found'}) end
if tx_state(tx) ~= 'processing' then return as_pairs({status = 'conflict', why = tx_state(tx)}) end
local before = event_state(ev)
tx[TX.output] = output
move_tx(part, ev, txk, state, now, actor)
release_lease(part, key16, txk)
refresh_event(part, ev, before, now, actor)
local record = save_event(part, ev)
flush_list_changes()
return as_pairs({status = 'ok', record = record})
