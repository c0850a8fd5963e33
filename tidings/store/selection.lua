-- uses: keys lists
-- Which events a filter selects in a partition, counted and paged from the lists, never
-- by reading the events (keys.py describes the lists; the README says what each costs).
-- A filter is a seq range (retention, since, until) and one of:
--   all     every seq                              (no name filter, no txKey)
--   lists   the union of disjoint lists            (a name combo; a txKey in any state;
--                                                   a txKey in a state, per full name)
--   missing a base (a combo's list, or every seq) minus the txKey's list for the combo
-- Counting goes chunk by chunk (a whole chunk by STRLEN, the two at the ends by binary
-- search); a page starts at the r-th match of the chunk it falls in.

local function selection(part, combo, txk, state)
  if not txk then
    if combo == '*' then return {kind = 'all'} end
    return {kind = 'lists', lists = {combo_list(combo)}}
  elseif not state then
    return {kind = 'lists', lists = {any_list(txk, combo)}}
  elseif state == 'does-not-exist' then
    local base
    if combo ~= '*' then base = combo_list(combo) end
    return {kind = 'missing', base = base, less = any_list(txk, combo)}
  elseif combo == '*' then
    return {kind = 'lists', lists = {state_list(state, txk, '*')}}
  end
  local lists = {}
  for _, full in ipairs(redis.call('SMEMBERS', tx_names_key(part, txk))) do
    for _, c in ipairs(combos(split_full_name(full))) do
      if c == combo then table.insert(lists, state_list(state, txk, full)) end
    end
  end
  return {kind = 'lists', lists = lists}
end

-- Matches in a chunk among offsets [a, b).
local function count_in(part, sel, chunk, a, b)
  if sel.kind == 'all' then return b - a end
  local whole = a == 0 and b == CHUNK
  local function count(list)
    if whole then return list_length(part, list, chunk) end
    local l = open_list(part, list, chunk)
    return l.rank(b) - l.rank(a)
  end
  if sel.kind == 'missing' then
    local base = b - a
    if sel.base then base = count(sel.base) end
    return base - count(sel.less)
  end
  local n = 0
  for _, list in ipairs(sel.lists) do n = n + count(list) end
  return n
end

-- Up to `need` offsets of matches in a chunk among [a, b), from the r-th match (0-based).
local function collect(part, sel, chunk, a, b, r, need)
  local out = {}
  if sel.kind == 'all' then
    for off = a + r, math.min(b, a + r + need) - 1 do table.insert(out, off) end
    return out
  end
  if sel.kind == 'lists' then
    local ls, at = {}, {}
    for i, list in ipairs(sel.lists) do ls[i] = open_list(part, list, chunk) end
    if #ls == 1 then
      at[1] = ls[1].rank(a) + r
    else  -- the r-th of the union: the smallest offset v with more than r matches in [a, v]
      local v, top = a, b - 1
      while v < top do
        local mid = math.floor((v + top) / 2)
        local k = 0
        for _, l in ipairs(ls) do k = k + l.rank(mid + 1) - l.rank(a) end
        if k > r then top = mid else v = mid + 1 end
      end
      for i, l in ipairs(ls) do at[i] = l.rank(v) end
    end
    while #out < need do  -- merge the lists from there
      local best, from = b, nil
      for i, l in ipairs(ls) do
        if at[i] < l.n and l.at(at[i]) < best then best, from = l.at(at[i]), i end
      end
      if not from then break end
      table.insert(out, best)
      at[from] = at[from] + 1
    end
    return out
  end
  -- missing: base minus `less`, where `less` is within base
  local less = open_list(part, sel.less, chunk)
  local base = every_offset()
  if sel.base then base = open_list(part, sel.base, chunk) end
  local ja, jb, qa = base.rank(a), base.rank(b), less.rank(a)
  -- the r-th missing: the smallest j with r + 1 missing among base[ja..j]
  local j, top = ja, jb - 1
  while j < top do
    local mid = math.floor((j + top) / 2)
    if (mid - ja + 1) - (less.rank(base.at(mid) + 1) - qa) > r then top = mid else j = mid + 1 end
  end
  local q = less.rank(base.at(j))
  local function same(t) return base.at(j + t - 1) == less.at(q + t - 1) end
  while j < jb and #out < need do
    if q < less.n and less.at(q) == base.at(j) then
      -- a run of events that are in both: gallop to its end
      local limit = math.min(jb - j, less.n - q)
      local t = 1
      while 2 * t <= limit and same(2 * t) do t = 2 * t end
      local top_t = math.min(2 * t - 1, limit)
      while t < top_t do
        local mid = math.floor((t + top_t + 1) / 2)
        if same(mid) then t = mid else top_t = mid - 1 end
      end
      j, q = j + t, q + t
    else
      table.insert(out, base.at(j))
      j = j + 1
    end
  end
  return out
end

-- The chunks of seqs [lo, hi) with their match counts, and the total.
local function count_matches(part, sel, lo, hi)
  local spans, total = {}, 0
  if hi <= lo then return spans, 0 end
  for chunk = math.floor(lo / CHUNK), math.floor((hi - 1) / CHUNK) do
    local a = math.max(lo, chunk * CHUNK) - chunk * CHUNK
    local b = math.min(hi, (chunk + 1) * CHUNK) - chunk * CHUNK
    local n = count_in(part, sel, chunk, a, b)
    table.insert(spans, {chunk = chunk, a = a, b = b, n = n})
    total = total + n
  end
  return spans, total
end

-- Seqs of up to `want` matches from the `start`-th (0-based, oldest first).
local function select_seqs(part, sel, spans, start, want)
  local seqs = {}
  for _, span in ipairs(spans) do
    if #seqs >= want then break end
    if start >= span.n then
      start = start - span.n
    else
      for _, off in ipairs(collect(part, sel, span.chunk, span.a, span.b, start, want - #seqs)) do
        table.insert(seqs, span.chunk * CHUNK + off)
      end
      start = 0
    end
  end
  return seqs
end
