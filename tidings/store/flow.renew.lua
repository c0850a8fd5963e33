-- uses: flow
-- A run still running renews the lease of its slot (PEXPIREAT's GT is Redis 7's: the key
-- lasts as long as its last lease this way on Redis 6.2 too).
-- KEYS: slots
-- ARGV: token, lease_until (ms)
local slots = KEYS[1]
redis.call('ZADD', slots, 'XX', ARGV[2], ARGV[1])
expire_with_last_slot(slots)
return 1
