-- uses: keys log
-- Forget what retention has passed in one partition, oldest first, at most `budget`
-- events a call: their records, then each chunk of the log and of the lists once all its
-- events have gone. Queries never show an expired event, whatever this has done yet.
-- KEYS: the partition's meta. ARGV: now (ms), ttl (ms), budget
-- Returns the number of events forgotten
local now, ttl, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local part = partition_of_meta(KEYS[1])
local meta = redis.call('HMGET', KEYS[1], 'low', 'seq')
local low, next_seq = tonumber(meta[1] or 0), tonumber(meta[2] or 0)
local cutoff, seq, stop = now - ttl, low, math.min(next_seq, low + budget)
while seq < stop do
  local chunk = math.floor(seq / CHUNK)
  local gone = {}
  for _, entry in ipairs(log_span(part, seq, math.min(stop, (chunk + 1) * CHUNK))) do
    if entry[1] >= cutoff then break end
    table.insert(gone, entry[2])
  end
  if #gone == 0 then break end
  redis.call('HDEL', records_key(part), unpack(gone))
  redis.call('ZREM', outstanding_key(part), unpack(gone))
  seq = seq + #gone
  if seq % CHUNK ~= 0 then break end  -- stopped within the chunk: budget or retention
  redis.call('UNLINK', log_key(part, chunk))
  for _, list in ipairs(redis.call('SMEMBERS', lists_key(part))) do
    redis.call('UNLINK', list_chunk_key(part, list, chunk))
  end
end
if seq > low then redis.call('HSET', KEYS[1], 'low', seq) end
return seq - low
