-- uses: keys records transactions event_state
-- Re-run failed transactions through the workers. Each goes back to "processing" with its
-- attempts counted afresh (the old ones stay in its history), leased so that recovery
-- hands it out again should its message be lost.
-- ARGV: scope, now, actor, lease_ms, then either
--   'one', key, txKey                               one transaction, or
--   'failed', txKey, combo, since, before, limit    the failed txKey ones of a filter
-- Returns status 'ok', rerun (a list of work items, each owner, env, key, txKey, queue)
--       | status 'not_found' | status 'conflict', why
local scope, now, actor, lease_ms, what = unpack(ARGV, 1, 5)
local owner, env = owner_env(scope)

local function rerun(key, txk)
  local ev = load_event(scope, key)
  local tk = transaction_key(scope, key, txk)
  local state = redis.call('HGET', tk, 'state')
  if not ev or not state then return nil, 'not_found' end
  if state ~= 'failed' then return nil, 'it is ' .. state .. ', and only a failed one is re-run' end
  local spec = redis.call('HGET', subscriptions_key(env, ev.eventName), txk)
  if not spec then return nil, 'no worker has subscribed a handler ' .. txk .. ' to it' end
  move_tx(scope, ev, txk, 'failed', 'processing', now, actor, 're-run')
  redis.call('HSET', tk, 'attempts', 0)
  redis.call('ZADD', leases_key(env), tonumber(now) + tonumber(lease_ms), lease_member(scope, key, txk))
  refresh_event(scope, key, actor, now)
  return as_pairs({owner = owner, env = env, key = key, txKey = txk,
                   queue = cjson.decode(spec).queue})
end

local found = {}
if what == 'one' then
  local item, why = rerun(ARGV[6], ARGV[7])
  if not item then
    if why == 'not_found' then return as_pairs({status = 'not_found'}) end
    return as_pairs({status = 'conflict', why = why})
  end
  found = {item}
else
  local txk, c, since, before, limit = unpack(ARGV, 6, 10)
  local failed = redis.call('ZRANGEBYSCORE', tx_index_key(scope, 'failed', txk, c), since,
                            '(' .. before, 'LIMIT', 0, limit)
  for _, key in ipairs(failed) do
    local item = rerun(key, txk)
    if item then table.insert(found, item) end
  end
end
return as_pairs({status = 'ok', rerun = found})
