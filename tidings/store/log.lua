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

-- createdAt and key of each seq in [from, to), which are in one chunk, read at once.
local function log_span(part, from, to)
  local chunk, first = math.floor(from / CHUNK), from % CHUNK
  local run = redis.call('GETRANGE', log_key(part, chunk), first * LOG_ENTRY,
                         (first + to - from) * LOG_ENTRY - 1)
  local entries = {}
  for at = 0, #run - LOG_ENTRY, LOG_ENTRY do
    table.insert(entries, {struct.unpack('>I6', run, at + 1), string.sub(run, at + 7, at + LOG_ENTRY)})
  end
  return entries
end

-- Seqs this close share one read of the log: reading the entries between them costs less
-- than another call (a sparse page's 1,000 rows cost 1,000 calls otherwise).
local LOG_READ_GAP = 128

-- The log entries (createdAt and key, 22 bytes) of seqs (ascending), reading each run of
-- nearby seqs in one chunk at once.
local function log_entries(part, seqs)
  local found, i = {}, 1
  while i <= #seqs do
    local chunk = math.floor(seqs[i] / CHUNK)
    local j = i  -- seqs[i..j]: each within LOG_READ_GAP of the one before, in one chunk
    while j < #seqs and seqs[j + 1] - seqs[j] <= LOG_READ_GAP
        and math.floor(seqs[j + 1] / CHUNK) == chunk do
      j = j + 1
    end
    local first = seqs[i]
    local run = redis.call('GETRANGE', log_key(part, chunk), (first % CHUNK) * LOG_ENTRY,
                           (seqs[j] % CHUNK + 1) * LOG_ENTRY - 1)
    for k = i, j do
      local at = (seqs[k] - first) * LOG_ENTRY
      table.insert(found, string.sub(run, at + 1, at + LOG_ENTRY))
    end
    i = j + 1
  end
  return found
end

-- The keys of seqs (ascending).
local function log_keys(part, seqs)
  local found = log_entries(part, seqs)
  for i, entry in ipairs(found) do found[i] = string.sub(entry, 7) end
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
