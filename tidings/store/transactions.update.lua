-- uses: keys lists records event_state transactions
-- Set a transaction's state directly, creating it if needed.
-- KEYS: the partition's meta. ARGV: key (16 bytes), eventName, txKey, state, now, actor,
--       ttl (ms)
-- eventName must be the event's name or its full name.
-- Returns status 'ok', record | status 'not_found', what ('event' or 'eventName')
local key16, name, txk, state, now, actor, ttl = unpack(ARGV, 1, 7)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
if not ev then return as_pairs({status = 'not_found', what = 'event'}) end
local platform, label, event_name = names_of(ev)
if name ~= event_name and name ~= full_name(platform, label, event_name) then
  return as_pairs({status = 'not_found', what = 'eventName'})
end
local before = event_state(ev)
if ev[EV.txs][txk] then
  move_tx(part, ev, txk, state, now, actor)
else
  create_tx(part, ev, txk, state, now, actor)
end
if state ~= 'processing' then release_lease(part, key16, txk) end
refresh_event(part, ev, before, now, actor)
local record = save_event(part, ev)
flush_list_changes()
return as_pairs({status = 'ok', record = record})
