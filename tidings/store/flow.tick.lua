-- uses: records
-- A worker claims a schedule's tick, so that exactly one worker emits it: the first to
-- ask for a tick later than the last one claimed.
-- KEYS: last (the last tick claimed, ms)
-- ARGV: tick (ms), record_only ('1': note the tick as passed without emitting it)
-- Returns status 'first' (the schedule is new here: its ticks count from this one, which
-- is not emitted) | 'fire' (emit it) | 'skip' (noted, not to emit) | 'done' (claimed already)
local last_key, tick, record_only = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local last = tonumber(redis.call('GET', last_key))
local status = 'fire'
if not last then
  status = 'first'
elseif tick <= last then
  return as_pairs({status = 'done'})
elseif record_only == '1' then
  status = 'skip'
end
redis.call('SET', last_key, ARGV[1])
return as_pairs({status = status})
