-- uses: keys lists records event_state transactions events
-- Workers' results for transactions of one partition: each one's output and final state,
-- and the events its handler emitted (keys in this partition), stored together.
-- KEYS: the partition's meta. ARGV: now, actor, ttl (ms), grace (ms), subscriptions
--       version, then per result: key (16 bytes), txKey, state, output (raw JSON), claim
--       number, the number of follow-up events, and EVENT_ARGS per follow-up (see
--       store_events)
-- A result counts only while its claim stands (no other worker has taken the transaction
-- over since); then its follow-ups are stored with it: both or neither.
-- Returns per result: status 'ok' | status 'conflict', why | status 'not_found'; or, when
-- follow-ups come with routes older than this partition's subscriptions, status 'stale'
-- for every result, nothing stored (route them again)
local now, actor, ttl, grace, version = unpack(ARGV, 1, 5)
now, ttl, grace = tonumber(now), tonumber(ttl), tonumber(grace)
local part = partition_of_meta(KEYS[1])

local results, follow_ups = {}, false
local i = 6
while i <= #ARGV do
  local n = tonumber(ARGV[i + 5])
  table.insert(results, {first = i, follow = i + 6, last = i + 5 + EVENT_ARGS * n})
  if n > 0 then follow_ups = true end
  i = i + 6 + EVENT_ARGS * n
end
if follow_ups and tonumber(redis.call('HGET', KEYS[1], 'subs') or 0) > tonumber(version) then
  local stale = {}
  for _ = 1, #results do table.insert(stale, as_pairs({status = 'stale'})) end
  return stale
end

local function finish(r)
  local key16, txk, state, output, claim = unpack(ARGV, r.first, r.first + 4)
  local ev = load_event(part, key16, now - ttl)
  local tx = ev and ev[EV.txs][txk]
  if not tx then return {status = 'not_found'} end
  if tx_state(tx) ~= 'processing' then return {status = 'conflict', why = tx_state(tx)} end
  if tx[TX.claims] ~= tonumber(claim) then return {status = 'conflict', why = 'claimed again since'} end
  local before = event_state(ev)
  tx[TX.output] = output
  move_tx(part, ev, txk, state, now, actor)
  release_lease(part, key16, txk)
  refresh_event(part, ev, before, now, actor)
  save_event(part, ev)
  if r.last >= r.follow then store_events(part, now, grace, actor, math.floor(ttl / 1000), r.follow, r.last) end
  return {status = 'ok'}
end

local answers = {}
for _, r in ipairs(results) do table.insert(answers, as_pairs(finish(r))) end
flush_list_changes()
return answers
