-- uses: keys
-- The log of a partition: per seq, its event's createdAt and key, 22 bytes at seq's place
-- in its chunk's string. createdAt never decreases along the log, so a time is found by
-- binary search.

local LOG_ENTRY = 22

-- entries: {createdAt, key (16 bytes)} of the chunk's next seqs, in order
local function log_append(part, chunk, entries)
  local bytes = {}
  for i, entry in ipairs(entries) do bytes[i] = struct.pack('>I6', entry[1]) .. entry[2] end
  redis.call('APPEND', log_key(part, chunk), table.concat(bytes))
end

-- createdAt and key of a seq (nil once its chunk is gone).
local function log_entry(part, seq)
  local chunk, off = math.floor(seq / CHUNK), seq % CHUNK
  local e = redis.call('GETRANGE', log_key(part, chunk), off * LOG_ENTRY, (off + 1) * LOG_ENTRY - 1)
  if #e < LOG_ENTRY then return nil end
  return struct.unpack('>I6', e), string.sub(e, 7)
end

-- The keys of seqs (ascending), reading each run of consecutive seqs at once.
local function log_keys(part, seqs)
  local found, i = {}, 1
  while i <= #seqs do
    local chunk = math.floor(seqs[i] / CHUNK)
    local j = i  -- seqs[i..j]: consecutive, in one chunk
    while j < #seqs and seqs[j + 1] == seqs[j] + 1 and math.floor(seqs[j + 1] / CHUNK) == chunk do
      j = j + 1
    end
    local first = seqs[i] % CHUNK
    local run = redis.call('GETRANGE', log_key(part, chunk), first * LOG_ENTRY,
                           (first + j - i + 1) * LOG_ENTRY - 1)
    for k = 0, j - i do table.insert(found, string.sub(run, k * LOG_ENTRY + 7, (k + 1) * LOG_ENTRY)) end
    i = j + 1
  end
  return found
end

-- The first seq in [lo, hi) created at or after t (hi if none).
local function first_at(part, t, lo, hi)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if log_entry(part, mid) < t then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- The seqs of the events created in [max(since, now - ttl), before) that still exist.
local function seq_range(part, now, ttl_ms, since, before)
  local meta = redis.call('HMGET', meta_key(part), 'low', 'seq')
  local low, next_seq = tonumber(meta[1] or 0), tonumber(meta[2] or 0)
  local from = now - ttl_ms
  if since and since > from then from = since end
  local lo = first_at(part, from, low, next_seq)
  local hi = next_seq
  if before then hi = first_at(part, before, lo, next_seq) end
  return lo, hi
end
