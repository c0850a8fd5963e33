-- uses: keys records
-- An event's state and processing flags follow from its transactions and the handlers
-- subscribed to it (its expected txKeys); records.py computes them the same way to show
-- them. A change of state is written to the event's history.

local function event_state(ev)
  local total, processing, failed = 0, 0, 0
  for _, tx in pairs(ev[EV.txs]) do
    total = total + 1
    if tx_state(tx) == 'processing' then processing = processing + 1
    elseif tx_state(tx) == 'failed' then failed = failed + 1 end
  end
  local future = false
  for _, txk in ipairs(ev[EV.expected]) do
    local tx = ev[EV.txs][txk]
    if not tx or tx_state(tx) == 'processing' then future = true end
  end
  local state = 'pending'
  if total > 0 and not future and processing == 0 then
    if failed > 0 then state = 'failed' else state = 'finished' end
  elseif total > 0 then
    state = 'processing'
  end
  return {state = state, total = total, future = future}
end

-- After a change to the event's transactions or expected handlers (`before` is
-- event_state from before it): its history and v follow, and an event no longer awaiting
-- any handler leaves the outstanding set (recovery's).
local function refresh_event(part, ev, before, now, actor)
  local after = event_state(ev)
  if after.state ~= before.state then
    history_add(ev, ev[EV.history], after.state, now, actor)
  end
  if after.state ~= before.state or after.total ~= before.total or after.future ~= before.future then
    ev[EV.v] = ev[EV.v] + 1
  end
  if not after.future then redis.call('ZREM', outstanding_key(part), ev.key16) end
end
