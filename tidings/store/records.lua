-- uses: keys
-- Records by name. An event is one string in its partition's `rec` hash (decoded by
-- tidings/store/records.py): a header (seq and createdAt, 6 bytes each; the meta's length,
-- 2), the meta (msgpack: what the scripts change) and the body (msgpack made by the
-- emitter, never changed: platform, label, eventName, payload, headers, query).
-- Transactions live in the meta. Scripts answer with flat field/value pairs (as_pairs).

local STATE_CODE = {pending = 0, processing = 1, finished = 2, failed = 3}
local STATE_NAME = {[0] = 'pending', [1] = 'processing', [2] = 'finished', [3] = 'failed'}
-- Positions in the meta, and in a transaction within it.
local EV = {v = 1, history = 2, expected = 3, txs = 4, actors = 5}
local TX = {state = 1, created = 2, ended = 3, attempts = 4, v = 5, claims = 6, output = 7,
            history = 8}
local BODY = {platform = 1, label = 2, name = 3, deliver_at = 7}
-- A history entry: {state code, ms after the event's createdAt, actor's index, reason?}
local HISTORY = {state = 1, at = 2, actor = 3, reason = 4}

-- The named fields of a hash (false where one is missing), or nil if it lacks the first.
local function read_fields(key, names)
  local values = redis.call('HMGET', key, unpack(names))
  if not values[1] then return nil end
  local record = {}
  for i, name in ipairs(names) do record[name] = values[i] end
  return record
end

-- A table of named values as the flat field/value list that a script answers with.
local function as_pairs(record)
  local flat = {}
  for name, value in pairs(record) do
    table.insert(flat, name)
    table.insert(flat, value)
  end
  return flat
end

local function pack_record(seq, created, meta, body)
  return struct.pack('>I6I6I2', seq, created, #meta) .. meta .. body
end

-- The meta of a new event: first entered 'pending', by `actor`.
local function new_meta(expected, actor)
  return cmsgpack.pack({1, {{STATE_CODE.pending, 0, 1}}, expected, {}, {actor}})
end

-- An event created at or after `cutoff`, its meta decoded (ev[EV.x]) beside its seq,
-- createdAt and body; nil if there is none.
local function load_event(part, key16, cutoff)
  local blob = redis.call('HGET', records_key(part), key16)
  if not blob then return nil end
  local seq, created, n = struct.unpack('>I6I6I2', blob)
  if created < cutoff then return nil end
  local ev = cmsgpack.unpack(string.sub(blob, 15, 14 + n))
  ev.key16, ev.seq, ev.created, ev.body = key16, seq, created, string.sub(blob, 15 + n)
  return ev
end

local function save_event(part, ev)
  local meta = cmsgpack.pack({ev[EV.v], ev[EV.history], ev[EV.expected], ev[EV.txs], ev[EV.actors]})
  local blob = pack_record(ev.seq, ev.created, meta, ev.body)
  redis.call('HSET', records_key(part), ev.key16, blob)
  return blob
end

-- platform, label, eventName of an event
local function names_of(ev)
  local body = cmsgpack.unpack(ev.body)
  return body[BODY.platform], body[BODY.label], body[BODY.name]
end

-- When a delayed event's handlers start (epoch ms); 0 for an event that did not wait.
local function deliver_at_of(ev)
  return cmsgpack.unpack(ev.body)[BODY.deliver_at] or 0
end

local function history_add(ev, history, state, now, actor, reason)
  local actors, index = ev[EV.actors], nil
  for i, name in ipairs(actors) do if name == actor then index = i end end
  if not index then
    table.insert(actors, actor)
    index = #actors
  end
  local entry = {STATE_CODE[state], now - ev.created, index}
  if reason then entry[HISTORY.reason] = reason end
  table.insert(history, entry)
end

local function tx_state(tx) return STATE_NAME[tx[TX.state]] end
