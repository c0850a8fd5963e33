-- The history of an event or a transaction: a JSON list of its state changes.

-- `reason` (beyond the original) says why a worker recorded the entry, e.g. a failed attempt.
local function history_entry(enter, exit, now, actor, reason)
  return {enterState = enter, exitState = exit or cjson.null, timestamp = tonumber(now),
          updatedBy = actor, reason = reason}
end

local function append_history(hkey, enter, exit, now, actor, reason)
  local history = cjson.decode(redis.call('HGET', hkey, 'history'))
  table.insert(history, history_entry(enter, exit, now, actor, reason))
  redis.call('HSET', hkey, 'history', cjson.encode(history))
end
