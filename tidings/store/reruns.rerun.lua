-- uses: keys lists records log selection event_state transactions
-- Re-run failed transactions through the workers. Each goes back to "processing" with its
-- attempts counted afresh (the old ones stay in its history), leased so that recovery
-- hands it out again should its message be lost.
-- KEYS: the partition's meta. ARGV: now, actor, lease_ms, ttl (ms), the eventName the
--       txKey's handler subscribes to ("" if none), then either
--   'one', key (16 bytes), txKey                    one transaction, or
--   'failed', txKey, combo, since, until, limit     the failed txKey ones of a filter
-- Returns status 'ok', rerun (the keys re-run) | status 'not_found'
--       | status 'conflict', why
local now, actor, lease_ms, ttl, subscribed_name, what = unpack(ARGV, 1, 6)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])

local function rerun(key16, txk)
  local ev = load_event(part, key16, now - tonumber(ttl))
  local tx = ev and ev[EV.txs][txk]
  if not tx then return nil, 'not_found' end
  if tx_state(tx) ~= 'failed' then
    return nil, 'it is ' .. tx_state(tx) .. ', and only a failed one is re-run'
  end
  local _, _, name = names_of(ev)
  if name ~= subscribed_name then
    return nil, 'no worker has subscribed a handler ' .. txk .. ' to it'
  end
  local before = event_state(ev)
  move_tx(part, ev, txk, 'processing', now, actor, 're-run')
  tx[TX.attempts] = 0
  refresh_event(part, ev, before, now, actor)
  save_event(part, ev)
  redis.call('ZADD', leases_key(part), now + tonumber(lease_ms), lease_member(key16, txk))
  return key16
end

local found = {}
if what == 'one' then
  local key16, why = rerun(ARGV[7], ARGV[8])
  if not key16 then
    if why == 'not_found' then return as_pairs({status = 'not_found'}) end
    return as_pairs({status = 'conflict', why = why})
  end
  found = {key16}
else
  local txk, combo, since, before, limit = unpack(ARGV, 7, 11)
  local lo, hi = seq_range(part, now, tonumber(ttl), tonumber(since), tonumber(before))
  local sel = selection(part, combo, txk, 'failed')
  local spans = count_matches(part, sel, lo, hi)
  for _, key16 in ipairs(log_keys(part, select_seqs(part, sel, spans, 0, tonumber(limit)))) do
    if rerun(key16, txk) then table.insert(found, key16) end
  end
end
flush_list_changes()
return as_pairs({status = 'ok', rerun = found})
