-- Set a transaction's state directly, creating it if needed.
-- ARGV: scope, key, eventName, txKey, state, now, actor, _id, txn
-- eventName must be the event's name or its full name.
-- Returns {'ok', event fields...} | {'not_found', why}
local scope, key, name, txk, state, now, actor, id, txn = unpack(ARGV, 1, 9)
local ev = load_event(scope, key)
if not ev then return {'not_found', 'event'} end
if name ~= ev[5] and name ~= ev[3] .. '.' .. ev[4] .. '.' .. ev[5] then
  return {'not_found', 'eventName'}
end
local old = redis.call('HGET', tx_key(scope, key, txk), 'state')
if old then
  move_tx(scope, ev, txk, old, state, now, actor)
else
  create_tx(scope, ev, txk, state, now, actor, id, txn)
end
if state ~= 'processing' then release_lease(scope, key, txk) end
refresh_event(scope, key, actor, now)
return {'ok', redis.call('HGETALL', ev_key(scope, key))}
