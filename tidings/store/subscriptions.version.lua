-- The next version of an environment's subscriptions: above the last one and at least
-- the time, so that a version never comes back (not even after Redis lost its data) and
-- a process's cached subscriptions are never taken for newer ones.
-- KEYS: the version's key. ARGV: now (ms)
-- Returns the new version
local version = math.max(tonumber(redis.call('GET', KEYS[1]) or 0) + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], version)
return version
