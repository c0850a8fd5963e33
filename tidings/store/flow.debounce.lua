-- uses: records
-- An event's run asks to start under a debounce: the burst of events it belongs to yields
-- one run, on its last event, once none has come for `period` ms, or `most` ms after the
-- burst's first event. Each new event's run becomes the burst's last (superseding the one
-- before, which never runs) and is told to come back when it is due; the last run that
-- comes back when due (up to `early` ms before: workers' clocks differ a little) starts,
-- and the burst is over. Times are on the Redis server's clock, one for every worker.
-- KEYS: the limit's debounce hash (last, first, due)
-- ARGV: run ("{owner}|{env}|{key}|{txKey}|{attempt}"), period (ms), most (ms, '' for no
--       limit), early (ms), keep (ms: how long past its due time a burst waits for its run)
-- Returns status 'go' | 'wait', wait (ms until it is due), superseded (the run it
--         replaces as the burst's last, or '')
local state = KEYS[1]
local run, period, most, early, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local last, first, due = unpack(redis.call('HMGET', state, 'last', 'first', 'due'))
if last == run then  -- it comes back
  if now + early >= tonumber(due) then
    redis.call('DEL', state)
    return as_pairs({status = 'go', wait = 0, superseded = ''})
  end
  return as_pairs({status = 'wait', wait = tonumber(due) - now, superseded = ''})
end
first = tonumber(first) or now
due = now + period
if most ~= '' then due = math.min(due, first + tonumber(most)) end
if due <= now then  -- the burst has waited its longest: this last event runs now
  redis.call('DEL', state)
  return as_pairs({status = 'go', wait = 0, superseded = last or ''})
end
redis.call('HSET', state, 'last', run, 'first', first, 'due', due)
redis.call('PEXPIREAT', state, due + keep)
return as_pairs({status = 'wait', wait = due - now, superseded = last or ''})
