-- uses: keys records event_state transactions
-- A worker's claim of a transaction, leased for lease_ms.
-- KEYS: the partition's meta. ARGV: key (16 bytes), txKey, now, actor, lease_ms, attempt,
--       ttl (ms)
-- A new transaction is created in "processing". An existing "processing" one is taken
-- over when its lease has lapsed (its worker died), or when `attempt` names the attempt
-- that follows its last one (a scheduled retry). Anything else is skipped: an ended
-- transaction never runs again, and a live lease means another worker has it.
-- Every claim gets the next claim number: the token the worker's result must show.
-- Returns status 'ok', attempts, claim, createdAt, body | status 'skip', why
local key16, txk, now, actor, lease_ms, attempt, ttl = unpack(ARGV, 1, 7)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local ev = load_event(part, key16, now - tonumber(ttl))
if not ev then return as_pairs({status = 'skip', why = 'gone'}) end
local member = lease_member(key16, txk)
local before = event_state(ev)
local tx = ev[EV.txs][txk]
if not tx then
  tx = create_tx(part, ev, txk, 'processing', now, actor)
  refresh_event(part, ev, before, now, actor)
elseif tx_state(tx) ~= 'processing' then
  return as_pairs({status = 'skip', why = tx_state(tx)})
else
  local next_attempt = tx[TX.attempts] + 1
  local lease = redis.call('ZSCORE', leases_key(part), member)
  local reason
  if tonumber(attempt) == next_attempt then
    reason = 'attempt ' .. next_attempt
  elseif redis.call('ZSCORE', recovered_key(part), member) or (lease and tonumber(lease) < now) then
    reason = 'lease expired: claimed again'
  else
    return as_pairs({status = 'skip', why = 'busy'})
  end
  move_tx(part, ev, txk, 'processing', now, actor, reason)
  tx[TX.attempts] = next_attempt
end
tx[TX.claims] = tx[TX.claims] + 1
save_event(part, ev)
redis.call('ZREM', recovered_key(part), member)
redis.call('ZADD', leases_key(part), now + tonumber(lease_ms), member)
return as_pairs({status = 'ok', attempts = tx[TX.attempts], claim = tx[TX.claims],
                 createdAt = ev.created, body = ev.body})
