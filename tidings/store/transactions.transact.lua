-- uses: keys records transactions event_state events
-- Finish a claimed transaction with its output and final state.
-- ARGV: scope, key, txKey, state, output (raw JSON), now, actor, then for a worker:
--       claim token, label, ttl (s), grace (ms), and 7 per follow-up event (see store_events)
-- A worker's result counts only while its claim stands (no other worker has taken the
-- transaction over since), and the events its handler emitted are stored with it, in
-- the same step: both or neither.
-- Returns status 'ok', transaction (its field/value pairs), stored (per follow-up, see
--         store_events) | status 'not_found' | status 'conflict', why
local scope, key, txk, state, output, now, actor, token, label, ttl, grace = unpack(ARGV, 1, 11)
local ev = load_event(scope, key)
local tk = transaction_key(scope, key, txk)
local old = redis.call('HGET', tk, 'state')
if not ev or not old then return as_pairs({status = 'not_found'}) end
if old ~= 'processing' then return as_pairs({status = 'conflict', why = old}) end
if token and redis.call('HGET', tk, 'claim') ~= token then
  return as_pairs({status = 'conflict', why = 'claimed again since'})
end
redis.call('HSET', tk, 'output', output)
move_tx(scope, ev, txk, old, state, now, actor)
release_lease(scope, key, txk)
refresh_event(scope, key, actor, now)
local stored = {}
if #ARGV > 11 then
  stored = store_events(scope, env_of(scope), 'custom', label, actor, now, ttl, grace, 12)
end
return as_pairs({status = 'ok', transaction = redis.call('HGETALL', tk), stored = stored})
