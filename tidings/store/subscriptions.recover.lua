-- uses: keys records
-- What needs dispatching again in one partition: transactions whose lease lapsed (their
-- worker died), and subscribed handlers of outstanding events that have no transaction at
-- all (a lost broker message, or an API that died before publishing; a delayed event is
-- looked at once it is due).
-- Whatever is looked at moves back in its queue (a lease by `lease_ms`, an event by
-- `grace_ms`), so that each is handed out once a period and nothing stays ahead of the
-- rest. A lapsed lease handed out is noted in RECOVERED: the next claim may take it over.
-- KEYS: the partition's meta. ARGV: now, lease_ms, grace_ms, limit, ttl (ms)
-- Returns a list of work, each key (16 bytes), txKey, eventName
local now, lease_ms, grace_ms, limit, ttl = unpack(ARGV, 1, 5)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local cutoff = now - tonumber(ttl)
local leases, recovered, outstanding = leases_key(part), recovered_key(part), outstanding_key(part)
local found = {}

local function hand_out(ev, txk)
  local _, _, name = names_of(ev)
  table.insert(found, as_pairs({key = ev.key16, txKey = txk, eventName = name}))
end

for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
  local key16, txk = string.sub(member, 1, 16), string.sub(member, 17)
  local ev = load_event(part, key16, cutoff)
  if not ev then
    redis.call('ZREM', leases, member)  -- the event has expired
    redis.call('ZREM', recovered, member)
  else
    redis.call('ZADD', leases, now + tonumber(lease_ms), member)
    redis.call('ZADD', recovered, now, member)
    hand_out(ev, txk)
  end
end

for _, key16 in ipairs(redis.call('ZRANGEBYSCORE', outstanding, '-inf', now, 'LIMIT', 0, limit)) do
  local ev = load_event(part, key16, cutoff)
  local due = ev and deliver_at_of(ev)
  if not ev then
    redis.call('ZREM', outstanding, key16)
  elseif due > now then  -- backfilled before it came due
    redis.call('ZADD', outstanding, due + tonumber(grace_ms), key16)
  else
    redis.call('ZADD', outstanding, now + tonumber(grace_ms), key16)
    for _, txk in ipairs(ev[EV.expected]) do
      if not ev[EV.txs][txk] then hand_out(ev, txk) end
    end
  end
end
return found
