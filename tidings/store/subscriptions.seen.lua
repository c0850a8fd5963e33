-- A partition learns the subscriptions version (see events.emit.lua); it never goes back.
-- KEYS: the partition's meta. ARGV: version
if tonumber(redis.call('HGET', KEYS[1], 'subs') or 0) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'subs', ARGV[1])
end
return 1
