-- uses: records flow
-- A run asks for a concurrency slot.
-- KEYS: slots, waiting
-- ARGV: run ("{owner}|{env}|{key}|{txKey}|{attempt}"), token, now, lease_until, limit,
--       waiting_ttl (ms)
-- The run takes, under its token, a slot kept for it (it was promoted, or put back to wait
-- for a rate), or else a free slot if no run has waited longer. Otherwise it waits, in the
-- order runs came (once: a copy of a waiting run changes nothing), and free slots go to the
-- runs that have waited longest.
-- Returns status 'ok' | 'wait', promoted (runs given a slot, to publish)
local slots, waiting = KEYS[1], KEYS[2]
local run, token, now, lease_until = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local limit, waiting_ttl = tonumber(ARGV[5]), ARGV[6]
free_lapsed(slots, now)
local taken = redis.call('ZREM', slots, run) == 1
if not taken and redis.call('ZCARD', slots) < limit then
  local first = redis.call('ZRANGE', waiting, 0, 0)[1]
  taken = not first or first == run
end
local status, promoted = 'ok', {}
if taken then
  redis.call('ZREM', waiting, run)
  redis.call('ZADD', slots, lease_until, token)
else
  status = 'wait'
  redis.call('ZADD', waiting, 'NX', now, run)
  redis.call('PEXPIRE', waiting, waiting_ttl)
  promoted = promote(slots, waiting, limit, lease_until)
end
expire_with_last_slot(slots)
return as_pairs({status = status, promoted = promoted})
