-- uses: records
-- A run asks to start under a rate: GCRA with a burst of one, so that runs start at least
-- `interval` ms apart, on the Redis server's clock (one clock for every worker). A run over
-- the rate is booked the next free start time and told to come back then: runs over the
-- rate start in the order they came, each once. A booked run that comes back (up to
-- `early` ms before its time: workers' clocks differ a little) starts; a copy of it that
-- comes before (recovery hands out a run that waits long) is answered 'early'.
-- KEYS: tat, booked
-- ARGV: run ("{owner}|{env}|{key}|{txKey}|{attempt}"), interval (ms), early (ms),
--       stale (ms: a booking whose run has not come this long after its time is dropped)
-- Returns status 'ok' | 'wait' | 'early', wait (ms until its time)
local tat_key, booked = KEYS[1], KEYS[2]
local run, interval, early, stale = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', booked, '-inf', '(' .. (now - stale))
local at = redis.call('ZSCORE', booked, run)
if at then
  at = tonumber(at)
  if at <= now + early then
    redis.call('ZREM', booked, run)
    return as_pairs({status = 'ok', wait = 0})
  end
  return as_pairs({status = 'early', wait = math.ceil(at - now)})
end
local tat = math.max(tonumber(redis.call('GET', tat_key)) or 0, now)
redis.call('SET', tat_key, tostring(tat + interval), 'PXAT', math.ceil(tat + interval))
if tat <= now then return as_pairs({status = 'ok', wait = 0}) end
redis.call('ZADD', booked, tat, run)
redis.call('PEXPIREAT', booked, math.ceil(tat + stale))
return as_pairs({status = 'wait', wait = math.ceil(tat - now)})
