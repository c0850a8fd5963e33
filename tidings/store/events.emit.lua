-- uses: keys records events
-- Store a batch of events, all or nothing, and snapshot which handlers subscribe to each.
-- ARGV: as ('scope' or 'secret'), who, platform, label, actor, now, ttl (s), grace (ms),
--       idempotency ttl (s; '': the retention), then 7 per event (see store_events)
-- As 'scope', `who` is the scope prefix. As 'secret', it is the sha256 of a secret key,
-- checked here so that an emit costs one round trip: the key's owner and environment are
-- the scope, and its name the label and actor.
-- Returns status 'ok', owner, env, label, stored (per event, see store_events)
--       | status 'unknown' | 'revoked'
local as, who, platform, label, actor, now, ttl, grace, idem_ttl = unpack(ARGV, 1, 9)
local scope, owner, env
if as == 'secret' then
  local secret = read_fields(secret_key(who), {'name', 'env', 'owner', 'revokedAt'})
  if not secret then return as_pairs({status = 'unknown'}) end
  if secret.revokedAt then return as_pairs({status = 'revoked'}) end
  label, env, owner, actor = secret.name, secret.env, secret.owner, secret.name
  scope = scope_key(owner, env)
else
  scope = who
  owner, env = owner_env(scope)
end
local stored = store_events(scope, env, platform, label, actor, now, ttl, grace, 10, idem_ttl)
return as_pairs({status = 'ok', owner = owner, env = env, label = label, stored = stored})
