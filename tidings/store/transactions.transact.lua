-- uses: keys records event_state transactions events
-- Finish a claimed transaction with its output and final state.
-- KEYS: the partition's meta. ARGV: key (16 bytes), txKey, state, output (raw JSON), now,
--       actor, ttl (ms), then for a worker: claim number, grace (ms), subscriptions
--       version, and 5 per follow-up event (see store_events)
-- A worker's result counts only while its claim stands (no other worker has taken the
-- transaction over since), and the events its handler emitted (keys in this partition)
-- are stored with it, in the same step: both or neither.
-- Returns status 'ok', record | status 'not_found' | status 'conflict', why
--       | status 'stale' (the subscriptions changed: route the follow-ups again)
local key16, txk, state, output, now, actor, ttl, claim, grace, version = unpack(ARGV, 1, 10)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
local tx = ev and ev[EV.txs][txk]
if not tx then return as_pairs({status = 'not_found'}) end
if tx_state(tx) ~= 'processing' then return as_pairs({status = 'conflict', why = tx_state(tx)}) end
if claim and tx[TX.claims] ~= tonumber(claim) then
  return as_pairs({status = 'conflict', why = 'claimed again since'})
end
if version and tonumber(redis.call('HGET', KEYS[1], 'subs') or 0) > tonumber(version) then
  return as_pairs({status = 'stale'})
end
local before = event_state(ev)
tx[TX.output] = output
move_tx(part, ev, txk, state, now, actor)
release_lease(part, key16, txk)
refresh_event(part, ev, before, now, actor)
local record = save_event(part, ev)
if #ARGV > 10 then store_events(part, now, tonumber(grace), actor, ttl, 11) end
return as_pairs({status = 'ok', record = record})
