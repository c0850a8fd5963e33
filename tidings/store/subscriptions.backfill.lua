-- uses: keys records log selection event_state
-- Subscribe a handler to events emitted before it existed: up to `limit` events of one
-- partition, from `since` on, that match its combo and have no transaction with its
-- txKey, looked at from the `offset`-th such event on. A delayed event not yet due is
-- subscribed but not handed out: it is, with its other handlers, when it comes due.
-- KEYS: the partition's meta. ARGV: txKey, combo, since, offset, limit, now, grace (ms),
--       ttl (ms)
-- Returns offset (of the next page, or '' after the last), keys (of the events to hand out)
local txk, combo, since, offset, limit, now, grace, ttl = unpack(ARGV, 1, 8)
now, offset, limit = tonumber(now), tonumber(offset), tonumber(limit)
local part = partition_of_meta(KEYS[1])
local lo, hi = seq_range(part, now, tonumber(ttl), tonumber(since), nil)
local sel = selection(part, combo, txk, 'does-not-exist')
local spans = count_matches(part, sel, lo, hi)
local seqs = select_seqs(part, sel, spans, offset, limit)
local next_offset = ''
if #seqs == limit then next_offset = offset + #seqs end
local found = {}
for _, key16 in ipairs(log_keys(part, seqs)) do
  local ev = load_event(part, key16, now - tonumber(ttl))
  local awaited = false
  for _, expected in ipairs(ev[EV.expected]) do if expected == txk then awaited = true end end
  if not awaited then
    local before = event_state(ev)
    table.insert(ev[EV.expected], txk)
    refresh_event(part, ev, before, now, 'backfill')
    save_event(part, ev)
    local due = deliver_at_of(ev)
    redis.call('ZADD', outstanding_key(part), 'NX', math.max(now, due) + tonumber(grace), key16)
    if due <= now then table.insert(found, key16) end
  end
end
return as_pairs({offset = next_offset, keys = found})
