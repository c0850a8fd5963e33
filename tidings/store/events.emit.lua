-- uses: keys records events
-- Store a batch of events in one partition, all or nothing.
-- KEYS: the partition's meta. ARGV: now, grace (ms), actor, idempotency ttl (s),
--       subscriptions version, then EVENT_ARGS per event (see store_events)
-- The caller read the subscriptions (and their version) to say which handlers each event
-- awaits; if they changed since (subscribe sets the partition's `subs` first), nothing is
-- stored and the caller reads them again.
-- Returns status 'ok', firsts (per event, the key of the event first stored with its
--         idempotency key, or "") | status 'stale'
local now, grace, actor, idem_ttl, version = unpack(ARGV, 1, 5)
local part = partition_of_meta(KEYS[1])
if routed_by_older(KEYS[1], version) then return as_pairs({status = 'stale'}) end
local firsts = store_events(part, tonumber(now), tonumber(grace), actor, idem_ttl, 6, #ARGV)
return as_pairs({status = 'ok', firsts = firsts})
