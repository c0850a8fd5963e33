-- uses: keys records
-- Take what has come due in one partition, for the caller to hand out: a delayed event
-- (each handler it awaits that has no transaction yet, as a first attempt), or one
-- transaction put off till later (a retry, or a run a rate limit held back: its next
-- attempt, or its first if it has none). Taken is gone from the due set; what its taker
-- never hands out, recovery does (a lease, an outstanding event, lapses after the due time).
-- KEYS: the partition's meta. ARGV: now, limit, ttl (ms)
-- Returns more (1 if `limit` were taken), next (the earliest due time left, or ''),
--         work: per transaction key (16 bytes), txKey, eventName, attempt
local now, limit, ttl = unpack(ARGV, 1, 3)
now = tonumber(now)
local part = partition_of_meta(KEYS[1])
local due = due_key(part)
local taken = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(limit))
if #taken > 0 then redis.call('ZREM', due, unpack(taken)) end
local work = {}

local function hand_out(ev, txk, attempt)
  local _, _, name = names_of(ev)
  table.insert(work, as_pairs({key = ev.key16, txKey = txk, eventName = name, attempt = attempt}))
end

for _, member in ipairs(taken) do
  local key16, txk = string.sub(member, 1, 16), string.sub(member, 17)
  local ev = load_event(part, key16, now - tonumber(ttl))
  if ev and txk == '' then
    for _, expected in ipairs(ev[EV.expected]) do
      if not ev[EV.txs][expected] then hand_out(ev, expected, 0) end
    end
  elseif ev then
    local tx = ev[EV.txs][txk]
    if not tx then
      hand_out(ev, txk, 0)
    elseif tx_state(tx) == 'processing' then
      hand_out(ev, txk, tx[TX.attempts] + 1)
    end
  end
end
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
return as_pairs({more = #taken == tonumber(limit) and 1 or 0, next = first[2] or '', work = work})
