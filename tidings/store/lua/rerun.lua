-- Re-run failed transactions through the workers. Each goes back to "processing" with its
-- attempts counted afresh (the old ones stay in its history), leased so that recovery
-- hands it out again should its message be lost.
-- ARGV: scope, now, actor, lease_ms, then either
--   'one', key, txKey                               one transaction, or
--   'failed', txKey, combo, since, before, limit    the failed txKey ones of a filter
-- Returns {'ok', {key, txKey, queue, ...}} | {'not_found'} | {'conflict', why}
local scope, now, actor, lease_ms, what = unpack(ARGV, 1, 5)
local env = env_of(scope)

local function rerun(key, txk)
  local ev = load_event(scope, key)
  local tk = tx_key(scope, key, txk)
  local state = redis.call('HGET', tk, 'state')
  if not ev or not state then return nil, 'not_found' end
  if state ~= 'failed' then return nil, 'it is ' .. state .. ', and only a failed one is re-run' end
  local spec = redis.call('HGET', ROOT .. ':subs:' .. env .. ':' .. ev[5], txk)
  if not spec then return nil, 'no worker has subscribed a handler ' .. txk .. ' to it' end
  move_tx(scope, ev, txk, 'failed', 'processing', now, actor, 're-run')
  redis.call('HSET', tk, 'attempts', 0)
  redis.call('ZADD', leases_key(env_of(scope)), tonumber(now) + tonumber(lease_ms), lease_member(scope, key, txk))
  refresh_event(scope, key, actor, now)
  return cjson.decode(spec).queue
end

local found = {}
if what == 'one' then
  local key, txk = ARGV[6], ARGV[7]
  local queue, why = rerun(key, txk)
  if not queue then
    if why == 'not_found' then return {'not_found'} end
    return {'conflict', why}
  end
  found = {key, txk, queue}
else
  local txk, c, since, before, limit = unpack(ARGV, 6, 10)
  local failed = redis.call('ZRANGEBYSCORE', txidx_key(scope, 'failed', txk, c), since,
                            '(' .. before, 'LIMIT', 0, limit)
  for _, key in ipairs(failed) do
    local queue = rerun(key, txk)
    if queue then
      table.insert(found, key)
      table.insert(found, txk)
      table.insert(found, queue)
    end
  end
end
return {'ok', found}
