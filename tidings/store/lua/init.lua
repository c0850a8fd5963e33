-- Claim a transaction: create (key, txKey) in state "processing".
-- ARGV: scope, key, txKey, now, actor, _id, txn
-- Returns {'ok', fields...} | {'not_found'} | {'conflict', state}
local scope, key, txk, now, actor, id, txn = unpack(ARGV, 1, 7)
local ev = load_event(scope, key)
if not ev then return {'not_found'} end
local tk = tx_key(scope, key, txk)
local state = redis.call('HGET', tk, 'state')
if state then return {'conflict', state} end
create_tx(scope, ev, txk, 'processing', now, actor, id, txn)
refresh_event(scope, key, actor, now)
return {'ok', redis.call('HGETALL', tk)}
