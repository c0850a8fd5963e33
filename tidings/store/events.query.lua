-- uses: keys records log selection
-- One page of a filter's events in one partition, with the total.
-- KEYS: the partition's meta. ARGV: combo, txKey, txState ("" for none; or
--       "does-not-exist"), since, until (ms or ""), order ("asc" or "desc"), offset, count,
--       now (ms), ttl (ms)
-- Returns total, keys and rows (the events' keys and records, oldest first or newest first)
local combo, txk, state, since, before, order, offset, count, now, ttl = unpack(ARGV, 1, 10)
local part = partition_of_meta(KEYS[1])
local lo, hi = seq_range(part, tonumber(now), tonumber(ttl), tonumber(since), tonumber(before))
local sel = selection(part, combo, txk ~= '' and txk or nil, state ~= '' and state or nil)
local spans, total = count_matches(part, sel, lo, hi)
offset, count = tonumber(offset), tonumber(count)
local start, want = offset, math.min(count, total - offset)
if order == 'desc' then start = math.max(total - offset - count, 0) end
local keys16, rows = {}, {}
if want > 0 then
  keys16 = log_keys(part, select_seqs(part, sel, spans, start, want))
  if order == 'desc' then
    for i = 1, math.floor(#keys16 / 2) do
      keys16[i], keys16[#keys16 + 1 - i] = keys16[#keys16 + 1 - i], keys16[i]
    end
  end
  rows = redis.call('HMGET', records_key(part), unpack(keys16))
end
return as_pairs({total = total, keys = keys16, rows = rows})
