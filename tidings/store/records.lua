-- Records by name: a hash's fields read into a table, and a script's answer as field/value
-- pairs (tidings/store/records.py decodes them).

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
