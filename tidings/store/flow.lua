-- Concurrency slots: the runs holding a limit's slots, and those waiting for one in order.

-- Slots whose lease has lapsed (their worker died, or the run kept one never came) are
-- free again.
local function free_lapsed(slots, now)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', '(' .. now)
end

-- Free slots go to the runs that have waited longest, each kept for its run (the run as
-- member) until `kept_until`. Answers those runs, for the caller to publish.
local function promote(slots, waiting, limit, kept_until)
  local promoted = {}
  while redis.call('ZCARD', slots) < limit do
    local head = redis.call('ZPOPMIN', waiting)
    if #head == 0 then break end
    redis.call('ZADD', slots, kept_until, head[1])
    table.insert(promoted, head[1])
  end
  return promoted
end

-- The slots key lasts as long as its last lease.
local function expire_with_last_slot(slots)
  local last = redis.call('ZRANGE', slots, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', slots, math.ceil(tonumber(last[2]))) end
end
