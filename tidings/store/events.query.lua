-- uses: keys records log selection
-- One page of a filter's events in one partition, with the total.
-- KEYS: the partition's meta. ARGV: combo, txKey, txState ("" for none; or
--       "does-not-exist"), since, until (ms or ""), order ("asc" or "desc"), offset, count,
--       now (ms), ttl (ms), with_rows ("1": read the page's records too)
-- Returns total, entries (the page's log entries: createdAt and key, oldest first or newest
-- first) and rows (their records, if asked for)
local combo, txk, state, since, before, order, offset, count, now, ttl, with_rows = unpack(ARGV, 1, 11)
local part = partition_of_meta(KEYS[1])
local lo, hi = seq_range(part, tonumber(now), tonumber(ttl), tonumber(since), tonumber(before))
local sel = selection(part, combo, txk ~= '' and txk or nil, state ~= '' and state or nil)
local spans, total = count_matches(part, sel, lo, hi)
offset, count = tonumber(offset), tonumber(count)
local start, want = offset, math.min(count, total - offset)
if order == 'desc' then start = math.max(total - offset - count, 0) end
local entries, rows = {}, {}
if want > 0 then
  entries = log_entries(part, select_seqs(part, sel, spans, start, want))
  if order == 'desc' then
    for i = 1, math.floor(#entries / 2) do
      entries[i], entries[#entries + 1 - i] = entries[#entries + 1 - i], entries[i]
    end
  end
  if with_rows == '1' then
    local keys16 = {}
    for i, entry in ipairs(entries) do keys16[i] = string.sub(entry, 7) end
    rows = redis.call('HMGET', records_key(part), unpack(keys16))
  end
end
return as_pairs({total = total, entries = entries, rows = rows})
