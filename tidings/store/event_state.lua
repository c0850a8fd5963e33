-- uses: keys records history
-- An event's state and processing flags, which follow from its transactions and the
-- handlers subscribed to it.

local function flag(b) if b then return '1' else return '0' end end

-- Recompute an event's state and processing flags; record a state change in its history.
-- An event no longer awaiting any handler leaves the outstanding set (recovery's).
local function refresh_event(scope, key, actor, now)
  local ek = event_key(scope, key)
  local pairs_ = redis.call('HGETALL', event_txs_key(scope, key))
  local total, processing, failed, state_of = 0, 0, 0, {}
  for i = 1, #pairs_, 2 do
    local s = pairs_[i + 1]
    state_of[pairs_[i]] = s
    total = total + 1
    if s == 'processing' then processing = processing + 1
    elseif s == 'failed' then failed = failed + 1 end
  end
  local future = false
  for _, txk in ipairs(redis.call('SMEMBERS', event_expected_key(scope, key))) do
    local s = state_of[txk]
    if s == nil or s == 'processing' then future = true end
  end
  local completed = total > 0 and not future and processing == 0
  local state = 'pending'
  if completed then
    if failed > 0 then state = 'failed' else state = 'finished' end
  elseif total > 0 then
    state = 'processing'
  end

  local old = read_fields(ek, {'state', 'totalTransactions', 'hasFutureTransactions',
                               'isCompleted'})
  if not old then return end  -- the event has expired
  local flags = {totalTransactions = tostring(total), hasFutureTransactions = flag(future),
                 isCompleted = flag(completed)}
  if old.state == state and old.totalTransactions == flags.totalTransactions
      and old.hasFutureTransactions == flags.hasFutureTransactions
      and old.isCompleted == flags.isCompleted then
    return
  end
  redis.call('HSET', ek, 'state', state, 'hasTransactions', flag(total > 0),
             'totalTransactions', flags.totalTransactions,
             'hasFutureTransactions', flags.hasFutureTransactions,
             'isCompleted', flags.isCompleted)
  if old.state ~= state then append_history(ek, state, old.state, now, actor) end
  redis.call('HINCRBY', ek, 'v', 1)
  if not future then
    redis.call('ZREM', outstanding_key(env_of(scope)), scope_member(scope, key))
  end
end
