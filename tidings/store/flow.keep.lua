-- uses: flow
-- A run that holds a concurrency slot but must wait (for a rate) keeps its slot: held by
-- the run itself instead of its token, until `kept_until`, so that it takes it back when
-- it comes again.
-- KEYS: slots
-- ARGV: token, run, kept_until
local slots = KEYS[1]
redis.call('ZREM', slots, ARGV[1])
redis.call('ZADD', slots, ARGV[3], ARGV[2])
expire_with_last_slot(slots)
return 1
