-- uses: keys
-- Create a secret key: its record, and its name pointing at it, in one step. A name is
-- free when no key has it or its key has been revoked.
-- ARGV: "{owner}/{env}/{name}", sha256 of the secret, then the record's field/value pairs
-- Returns 1, or 0 when an active key has the name.
local slot, digest = ARGV[1], ARGV[2]
local existing = redis.call('HGET', secrets_key(), slot)
if existing and not redis.call('HGET', secret_key(existing), 'revokedAt') then
  return 0
end
redis.call('HSET', secret_key(digest), unpack(ARGV, 3))
redis.call('HSET', secrets_key(), slot, digest)
return 1
