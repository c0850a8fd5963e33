-- uses: keys lists records
-- A transaction lives in its event's meta (TX positions); the lists of the partition say
-- which events have a transaction of a txKey (any state, per combo) and in which state
-- (per full name, and "*"). Times are epoch milliseconds passed in by the caller.
-- Changes to the lists wait for flush_list_changes, which every script calls at its end.

local function tx_lists_add(part, ev, txk, state)
  local chunk, off = chunk_of(ev.seq)
  local platform, label, name = names_of(ev)
  local full = full_name(platform, label, name)
  for _, combo in ipairs(combos(platform, label, name)) do
    list_add_later(part, any_list(txk, combo), chunk, off)
  end
  list_add_later(part, state_list(state, txk, full), chunk, off)
  list_add_later(part, state_list(state, txk, '*'), chunk, off)
  redis.call('SADD', tx_names_key(part, txk), full)
end

local function tx_lists_move(part, ev, txk, old_state, new_state)
  local chunk, off = chunk_of(ev.seq)
  local full = full_name(names_of(ev))
  for _, name in ipairs({full, '*'}) do
    list_remove_later(part, state_list(old_state, txk, name), chunk, off)
    list_add_later(part, state_list(new_state, txk, name), chunk, off)
  end
end

-- A new transaction in `state`.
local function create_tx(part, ev, txk, state, now, actor)
  local ended = -1
  if state ~= 'processing' then ended = now - ev.created end
  local tx = {STATE_CODE[state], now - ev.created, ended, 1, 1, 0, '', {}}
  history_add(ev, tx[TX.history], state, now, actor)
  ev[EV.txs][txk] = tx
  tx_lists_add(part, ev, txk, state)
  return tx
end

-- An existing transaction enters `state` (perhaps the one it is in: a new attempt).
local function move_tx(part, ev, txk, state, now, actor, reason)
  local tx = ev[EV.txs][txk]
  local old = tx_state(tx)
  tx[TX.state] = STATE_CODE[state]
  if state == 'processing' then tx[TX.ended] = -1 else tx[TX.ended] = now - ev.created end
  tx[TX.v] = tx[TX.v] + 1
  history_add(ev, tx[TX.history], state, now, actor, reason)
  if old ~= state then tx_lists_move(part, ev, txk, old, state) end
  return tx
end

-- A transaction has ended: no lease to renew or to recover.
local function release_lease(part, key16, txk)
  redis.call('ZREM', leases_key(part), lease_member(key16, txk))
  redis.call('ZREM', recovered_key(part), lease_member(key16, txk))
end
