-- Finish a claimed transaction with its output and final state.
-- ARGV: scope, key, txKey, state, output (raw JSON), now, actor
-- Returns {'ok', fields...} | {'not_found'} | {'conflict', state}
local scope, key, txk, state, output, now, actor = unpack(ARGV, 1, 7)
local ev = load_event(scope, key)
local tk = tx_key(scope, key, txk)
local old = redis.call('HGET', tk, 'state')
if not ev or not old then return {'not_found'} end
if old ~= 'processing' then return {'conflict', old} end
redis.call('HSET', tk, 'output', output)
move_tx(scope, ev, txk, old, state, now, actor)
local lease_member = scope_member(scope, key) .. '|' .. txk
redis.call('ZREM', LEASES, lease_member)
redis.call('ZREM', RECOVERED, lease_member)
refresh_event(scope, key, actor, now)
return {'ok', redis.call('HGETALL', tk)}
