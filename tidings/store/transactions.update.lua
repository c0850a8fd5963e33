-- uses: keys records transactions event_state
-- Set a transaction's state directly, creating it if needed.
-- ARGV: scope, key, eventName, txKey, state, now, actor, _id, txn
-- eventName must be the event's name or its full name.
-- Returns status 'ok', event (its field/value pairs) | status 'not_found', what ('event' or
--         'eventName')
local scope, key, name, txk, state, now, actor, id, txn = unpack(ARGV, 1, 9)
local ev = load_event(scope, key)
if not ev then return as_pairs({status = 'not_found', what = 'event'}) end
if name ~= ev.eventName and name ~= ev.platform .. '.' .. ev.label .. '.' .. ev.eventName then
  return as_pairs({status = 'not_found', what = 'eventName'})
end
local old = redis.call('HGET', transaction_key(scope, key, txk), 'state')
if old then
  move_tx(scope, ev, txk, old, state, now, actor)
else
  create_tx(scope, ev, txk, state, now, actor, id, txn)
end
if state ~= 'processing' then release_lease(scope, key, txk) end
refresh_event(scope, key, actor, now)
return as_pairs({status = 'ok', event = redis.call('HGETALL', event_key(scope, key))})
