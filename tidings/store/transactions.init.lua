-- uses: keys records transactions event_state
-- Claim a transaction: create (key, txKey) in state "processing".
-- ARGV: scope, key, txKey, now, actor, _id, txn
-- Returns status 'ok', transaction (its field/value pairs) | status 'not_found'
--       | status 'conflict', state
local scope, key, txk, now, actor, id, txn = unpack(ARGV, 1, 7)
local ev = load_event(scope, key)
if not ev then return as_pairs({status = 'not_found'}) end
local tk = transaction_key(scope, key, txk)
local state = redis.call('HGET', tk, 'state')
if state then return as_pairs({status = 'conflict', state = state}) end
create_tx(scope, ev, txk, 'processing', now, actor, id, txn)
refresh_event(scope, key, actor, now)
return as_pairs({status = 'ok', transaction = redis.call('HGETALL', tk)})
