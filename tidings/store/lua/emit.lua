-- Store a batch of events, all or nothing, and snapshot which handlers subscribe to each.
-- ARGV: as ('scope' or 'secret'), who, platform, label, actor, now, ttl (s), grace (ms),
--       idempotency ttl (s; "": the retention), then 7 per event (see store_events)
-- As 'scope', `who` is the scope prefix. As 'secret', it is the sha256 of a secret key,
-- checked here so that an emit costs one round trip: the key's owner and environment are
-- the scope, and its name the label and actor.
-- Returns {'ok', owner, env, label, {{txKey, queue, ...} per event},
--          {the key of the event first stored with its idempotency key, or "", per event}}
--       | {'unknown' | 'revoked'}
local as, who, platform, label, actor, now, ttl, grace, idem_ttl = unpack(ARGV, 1, 9)
local scope, owner, env
if as == 'secret' then
  local secret = redis.call('HMGET', ROOT .. ':secret:' .. who, 'name', 'env', 'owner', 'revokedAt')
  if not secret[1] then return {'unknown'} end
  if secret[4] then return {'revoked'} end
  label, env, owner, actor = secret[1], secret[2], secret[3], secret[1]
  scope = ROOT .. ':' .. owner .. ':' .. env
else
  scope = who
  owner, env = owner_env(scope)
end
local routes_of, firsts = store_events(scope, env, platform, label, actor, now, ttl, grace, 10, idem_ttl)
return {'ok', owner, env, label, routes_of, firsts}
