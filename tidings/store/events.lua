-- uses: keys lists log records
-- Storing events: the scripts that store them (emit, and transact for a handler's
-- follow-ups) share it.

-- Whether a sorts after b, byte by byte (Lua's < follows the locale).
local function bytes_after(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = string.byte(a, i) or -1, string.byte(b, i) or -1
    if x ~= y then return x > y end
  end
  return false
end

-- Whether events routed by subscriptions of `version` come too late: the partition has
-- seen newer ones (subscribe tells every partition before it backfills).
local function routed_by_older(meta, version)
  return tonumber(redis.call('HGET', meta, 'subs') or 0) > tonumber(version)
end

-- How many ARGV an event takes (see store_events).
local EVENT_ARGS = 6

-- Store events in the partition, all or nothing (the caller has validated them). ARGV from
-- `first` to `last` holds EVENT_ARGS per event: key (16 bytes), full name, body (see
-- records.lua), the txKeys of the handlers subscribed to it (joined by ","), idempotency
-- key ("" for none), deliverAt (epoch ms, 0 for none).
-- A delayed event (deliverAt after now) waits in the due set; its handlers start when it
-- comes due (events.due.lua). An event with subscribers is "outstanding": recovery looks at
-- it `grace` ms after it is stored, or after it comes due.
-- An event whose idempotency key came with an event stored within `idem_ttl` seconds is
-- not stored. Returns, per event, the key of the event stored first with its idempotency
-- key, or "".
local function store_events(part, now, grace, actor, idem_ttl, first, last_arg)
  local n = (last_arg - first + 1) / EVENT_ARGS
  local meta = meta_key(part)
  local newest = redis.call('HMGET', meta, 'last', 'lastkey')
  local last, last_key = tonumber(newest[1] or 0), newest[2] or ''
  local appends, order = {}, {}  -- bytes per list chunk: a few calls a batch, not a few an event
  local function append(list, chunk, bytes)
    local key = list_chunk_key(part, list, chunk)
    if not appends[key] then
      appends[key] = {list = list, parts = {}}
      table.insert(order, key)
    end
    table.insert(appends[key].parts, bytes)
  end
  local stored, firsts = {}, {}
  for i = 0, n - 1 do
    local at = first + EVENT_ARGS * i
    local key16, full, body, expected, ikey, due = unpack(ARGV, at, at + EVENT_ARGS - 1)
    local seen = ikey ~= '' and redis.call('GET', idempotency_key(part, ikey))
    if seen then
      table.insert(firsts, seen)
    else
      table.insert(firsts, '')
      if ikey ~= '' then redis.call('SET', idempotency_key(part, ikey), key16, 'EX', idem_ttl) end
      table.insert(stored, {key16, full, body, expected, tonumber(due)})
    end
  end
  if #stored == 0 then return firsts end
  local seq = redis.call('HINCRBY', meta, 'seq', #stored) - #stored
  local records, outstanding, delayed, metas, combos_of, logged = {}, {}, {}, {}, {}, {}
  for _, event in ipairs(stored) do
    local key16, full, body, expected, due = unpack(event)
    local chunk, off = chunk_of(seq)
    -- Along the log, (createdAt, key) only grows: the order of every partition's events
    -- (tidings/store/events.py merges partitions by it).
    local created = math.max(now, last)
    if created == last and not bytes_after(key16, last_key) then created = last + 1 end
    last, last_key = created, key16
    logged[chunk] = logged[chunk] or {}
    table.insert(logged[chunk], {created, key16})
    if not metas[expected] then
      local txks = {}
      for txk in string.gmatch(expected, '[^,]+') do table.insert(txks, txk) end
      metas[expected] = new_meta(txks, actor)
    end
    table.insert(records, key16)
    table.insert(records, pack_record(seq, created, metas[expected], body))
    if not combos_of[full] then combos_of[full] = combos(split_full_name(full)) end
    for _, combo in ipairs(combos_of[full]) do
      if combo ~= '*' then append(combo_list(combo), chunk, u16(off)) end
    end
    local from = now
    if due > now then
      from = due
      table.insert(delayed, due)
      table.insert(delayed, key16)
    end
    if expected ~= '' then
      table.insert(outstanding, from + grace)
      table.insert(outstanding, key16)
    end
    seq = seq + 1
  end
  redis.call('HSET', meta, 'last', last, 'lastkey', last_key)
  for chunk, entries in pairs(logged) do log_append(part, chunk, entries) end
  for i = 1, #records, 400 do  -- unpack takes a few thousand values at most
    redis.call('HSET', records_key(part), unpack(records, i, math.min(i + 399, #records)))
  end
  for _, key in ipairs(order) do
    local bytes = table.concat(appends[key].parts)
    if redis.call('APPEND', key, bytes) == #bytes then
      redis.call('SADD', lists_key(part), appends[key].list)
    end
  end
  if #outstanding > 0 then redis.call('ZADD', outstanding_key(part), unpack(outstanding)) end
  if #delayed > 0 then redis.call('ZADD', due_key(part), unpack(delayed)) end
  return firsts
end
