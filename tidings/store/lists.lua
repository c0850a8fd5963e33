-- uses: keys
-- Sorted lists of 2-byte offsets (seq mod CHUNK), one string per list and chunk (their
-- names in tidings/store/keys.py). Events are appended in seq order, so an add is nearly
-- always an APPEND; a list is read in blocks by GETRANGE, never whole.

local LIST_BLOCK = 64

local function u16(n) return string.char(math.floor(n / 256), n % 256) end
local function at16(s, i)
  local a, b = string.byte(s, 2 * i + 1, 2 * i + 2)
  return a * 256 + b
end
local function chunk_of(seq) return math.floor(seq / CHUNK), seq % CHUNK end

-- The position of `off` in a list held as a string: the count of entries below it.
local function position(s, off)
  local lo, hi = 0, #s / 2
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if at16(s, mid) < off then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- A list of one chunk for reading: n entries, at(i) (0-based), rank(off) (entries below).
local function open_list(part, list, chunk)
  local key = list_chunk_key(part, list, chunk)
  local l = {n = redis.call('STRLEN', key) / 2}
  local blocks = {}
  function l.at(i)
    local b = math.floor(i / LIST_BLOCK)
    local s = blocks[b]
    if not s then
      s = redis.call('GETRANGE', key, b * LIST_BLOCK * 2, (b + 1) * LIST_BLOCK * 2 - 1)
      blocks[b] = s
    end
    return at16(s, i - b * LIST_BLOCK)
  end
  function l.rank(off)
    local lo, hi = 0, l.n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if l.at(mid) < off then lo = mid + 1 else hi = mid end
    end
    return lo
  end
  return l
end

local function list_add(part, list, chunk, off)
  local key = list_chunk_key(part, list, chunk)
  local v = u16(off)
  local last = redis.call('GETRANGE', key, -2, -1)  -- "" for a new list
  if last == '' or at16(last, 0) < off then
    if redis.call('APPEND', key, v) == 2 then redis.call('SADD', lists_key(part), list) end
    return
  end
  -- Inserted where it belongs, reading no more than needed: it is most often near the end.
  local n = redis.call('STRLEN', key) / 2
  local from = math.max(n - LIST_BLOCK, 0)
  local tail = redis.call('GETRANGE', key, 2 * from, -1)
  local i
  if at16(tail, 0) < off then
    i = from + position(tail, off)
    tail = string.sub(tail, 2 * (i - from) + 1)
  else
    local l = open_list(part, list, chunk)
    i = l.rank(off)
    tail = redis.call('GETRANGE', key, 2 * i, -1)
  end
  if at16(tail, 0) ~= off then redis.call('SETRANGE', key, 2 * i, v .. tail) end
end

-- Changes gathered while a script runs (list_add_later, list_remove_later), made by
-- flush_list_changes at its end: removals from one list and chunk in one rewrite, then
-- additions in one APPEND when they all come after its last offset (as when a batch of
-- claims follows the order of emits), one by one otherwise.
local LIST_ADDS, LIST_REMOVES = {}, {}

local function list_add_later(part, list, chunk, off)
  local key = list_chunk_key(part, list, chunk)
  if not LIST_ADDS[key] then LIST_ADDS[key] = {part = part, list = list, chunk = chunk} end
  table.insert(LIST_ADDS[key], off)
end

local function list_remove_later(part, list, chunk, off)
  local key = list_chunk_key(part, list, chunk)
  LIST_REMOVES[key] = LIST_REMOVES[key] or {}
  table.insert(LIST_REMOVES[key], off)
end

local function flush_list_changes()
  for key, gone in pairs(LIST_REMOVES) do
    local s = redis.call('GET', key)
    if s then
      table.sort(gone)
      local kept, from = {}, 1  -- the bytes between the entries removed
      for _, off in ipairs(gone) do
        local i = position(s, off)
        if i < #s / 2 and at16(s, i) == off and 2 * i + 1 >= from then
          table.insert(kept, string.sub(s, from, 2 * i))
          from = 2 * i + 3
        end
      end
      table.insert(kept, string.sub(s, from))
      local left = table.concat(kept)
      if left == '' then redis.call('DEL', key)
      elseif #left < #s then redis.call('SET', key, left) end
    end
  end
  LIST_REMOVES = {}
  for key, adds in pairs(LIST_ADDS) do
    table.sort(adds)
    local last = redis.call('GETRANGE', key, -2, -1)
    if last == '' or at16(last, 0) < adds[1] then
      local bytes, previous = {}, -1
      for _, off in ipairs(adds) do
        if off ~= previous then table.insert(bytes, u16(off)) end
        previous = off
      end
      if redis.call('APPEND', key, table.concat(bytes)) == 2 * #bytes then
        redis.call('SADD', lists_key(adds.part), adds.list)
      end
    else
      for _, off in ipairs(adds) do list_add(adds.part, adds.list, adds.chunk, off) end
    end
  end
  LIST_ADDS = {}
end

local function list_length(part, list, chunk)
  return redis.call('STRLEN', list_chunk_key(part, list, chunk)) / 2
end

-- Every offset of a chunk, read like a list.
local function every_offset()
  return {n = CHUNK, at = function(i) return i end, rank = function(off) return off end}
end
