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

local function list_add(part, list, chunk, off)
  local key = list_chunk_key(part, list, chunk)
  local v = u16(off)
  local last = redis.call('GETRANGE', key, -2, -1)  -- "" for a new list
  if last == '' or at16(last, 0) < off then
    if redis.call('APPEND', key, v) == 2 then redis.call('SADD', lists_key(part), list) end
  elseif at16(last, 0) ~= off then
    local s = redis.call('GET', key)
    local i = position(s, off)
    if at16(s, i) ~= off then redis.call('SETRANGE', key, 2 * i, v .. string.sub(s, 2 * i + 1)) end
  end
end

local function list_remove(part, list, chunk, off)
  local key = list_chunk_key(part, list, chunk)
  local s = redis.call('GET', key)
  if not s then return end
  local i = position(s, off)
  if i >= #s / 2 or at16(s, i) ~= off then return end
  if #s == 2 then redis.call('DEL', key)
  else redis.call('SET', key, string.sub(s, 1, 2 * i) .. string.sub(s, 2 * i + 3)) end
end

local function list_length(part, list, chunk)
  return redis.call('STRLEN', list_chunk_key(part, list, chunk)) / 2
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

-- Every offset of a chunk, read like a list.
local function every_offset()
  return {n = CHUNK, at = function(i) return i end, rank = function(off) return off end}
end
