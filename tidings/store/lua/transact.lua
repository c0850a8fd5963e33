-- Finish a claimed transaction with its output and final state.
-- ARGV: scope, key, txKey, state, output (raw JSON), now, actor, then for a worker:
--       claim token, label, ttl (s), grace (ms), and 7 per follow-up event (see store_events)
-- A worker's result counts only while its claim stands (no other worker has taken the
-- transaction over since), and the events its handler emitted are stored with it, in
-- the same step: both or neither.
-- Returns {'ok', fields..., {{txKey, queue, ...} per follow-up}} | {'not_found'}
--       | {'conflict', why}
local scope, key, txk, state, output, now, actor, token, label, ttl, grace = unpack(ARGV, 1, 11)
local ev = load_event(scope, key)
local tk = tx_key(scope, key, txk)
local old = redis.call('HGET', tk, 'state')
if not ev or not old then return {'not_found'} end
if old ~= 'processing' then return {'conflict', old} end
if token and redis.call('HGET', tk, 'claim') ~= token then
  return {'conflict', 'claimed again since'}
end
redis.call('HSET', tk, 'output', output)
move_tx(scope, ev, txk, old, state, now, actor)
release_lease(scope, key, txk)
refresh_event(scope, key, actor, now)
local routes_of = {}
if #ARGV > 11 then
  routes_of = store_events(scope, env_of(scope), 'custom', label, actor, now, ttl, grace, 12)
end
return {'ok', redis.call('HGETALL', tk), routes_of}
