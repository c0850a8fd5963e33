-- uses: records flow
-- A run gives its concurrency slot back (or, with no token, slots that lapsed are handed
-- out): free slots go to the runs that have waited longest.
-- KEYS: slots, waiting
-- ARGV: token ('' for none), now, limit, kept_until (how long a slot is kept for a run)
-- Returns promoted (runs given a slot, to publish), waiting (how many still wait)
local slots, waiting = KEYS[1], KEYS[2]
local token, now, limit, kept_until = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if token ~= '' then redis.call('ZREM', slots, token) end
free_lapsed(slots, now)
local promoted = promote(slots, waiting, limit, kept_until)
expire_with_last_slot(slots)
return as_pairs({promoted = promoted, waiting = redis.call('ZCARD', waiting)})
