-- uses: keys lists records event_state transactions
-- Workers' claims of transactions of one partition, each leased for lease_ms.
-- KEYS: the partition's meta. ARGV: now, actor, lease_ms, ttl (ms), then 3 per claim:
--       key (16 bytes), txKey, attempt
-- A new transaction is created in "processing". An existing "processing" one is taken
-- over when its lease has lapsed (its worker died), or when `attempt` names the attempt
-- that follows its last one (a scheduled retry). Anything else is skipped: an ended
-- transaction never runs again, and a live lease means another worker has it.
-- Every claim gets the next claim number: the token the worker's result must show.
-- Returns per claim: status 'ok', attempts, claim, createdAt, body | status 'skip', why
local now, actor, lease_ms, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local part = partition_of_meta(KEYS[1])

local function claim(key16, txk, attempt)
  local ev = load_event(part, key16, now - ttl)
  if not ev then return {status = 'skip', why = 'gone'} end
  local member = lease_member(key16, txk)
  local before = event_state(ev)
  local tx = ev[EV.txs][txk]
  if not tx then
    tx = create_tx(part, ev, txk, 'processing', now, actor)
    refresh_event(part, ev, before, now, actor)
  elseif tx_state(tx) ~= 'processing' then
    return {status = 'skip', why = tx_state(tx)}
  else
    local next_attempt = tx[TX.attempts] + 1
    local lease = redis.call('ZSCORE', leases_key(part), member)
    local reason
    if tonumber(attempt) == next_attempt then
      reason = 'attempt ' .. next_attempt
    elseif redis.call('ZSCORE', recovered_key(part), member) or (lease and tonumber(lease) < now) then
      reason = 'lease expired: claimed again'
    else
      return {status = 'skip', why = 'busy'}
    end
    move_tx(part, ev, txk, 'processing', now, actor, reason)
    tx[TX.attempts] = next_attempt
  end
  tx[TX.claims] = tx[TX.claims] + 1
  save_event(part, ev)
  redis.call('ZREM', recovered_key(part), member)
  redis.call('ZADD', leases_key(part), now + lease_ms, member)
  return {status = 'ok', attempts = tx[TX.attempts], claim = tx[TX.claims],
          createdAt = ev.created, body = ev.body}
end

local answers = {}
for i = 5, #ARGV, 3 do
  table.insert(answers, as_pairs(claim(ARGV[i], ARGV[i + 1], ARGV[i + 2])))
end
flush_list_changes()
return answers
