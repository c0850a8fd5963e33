-- uses: keys records events
-- /emit in one round trip, on a single Redis that is the broker too: check the secret key,
-- store the events as events.emit.lua does, and push their Celery messages onto the queues
-- when those hold nothing else (the workers keep up); else the caller's dispatcher
-- publishes them, together with others.
-- KEYS: the partition's meta, the secret key's record, then one queue per message.
-- ARGV: now, grace (ms), actor, idempotency ttl (s), subscriptions version (as
--       events.emit.lua), the key holder's name, environment and owner, then EVENT_ARGS per
--       event (see store_events), then the messages (one per queue in KEYS).
-- Returns status 'ok', firsts (as events.emit.lua), pushed (1 if the messages were pushed)
--       | status 'secret' (not a valid key of that holder: the caller reads it afresh)
--       | status 'stale' (the caller routes the events again)
local now, grace, actor, idem_ttl, version, name, env, owner = unpack(ARGV, 1, 8)
local holder = redis.call('HMGET', KEYS[2], 'name', 'env', 'owner', 'revokedAt')
if holder[1] ~= name or holder[2] ~= env or holder[3] ~= owner or holder[4] then
  return as_pairs({status = 'secret'})
end
local part = partition_of_meta(KEYS[1])
if routed_by_older(KEYS[1], version) then return as_pairs({status = 'stale'}) end
local queues = #KEYS - 2
local firsts = store_events(part, tonumber(now), tonumber(grace), actor, idem_ttl, 9,
                            #ARGV - queues)
local pushed = 0
if queues > 0 then
  pushed = 1
  for i = 3, #KEYS do
    if redis.call('LLEN', KEYS[i]) > 0 then pushed = 0 end
  end
  if pushed == 1 then
    for i = 3, #KEYS do redis.call('LPUSH', KEYS[i], ARGV[#ARGV - #KEYS + i]) end
  end
end
return as_pairs({status = 'ok', firsts = firsts, pushed = pushed})
