-- uses: keys
-- The sorted sets /query reads (described in tidings/store/keys.py): per combo of an
-- event's name, every event, and the events whose transaction of a txKey is in a state.
-- Members are event keys scored by createdAt; those past retention are trimmed on every
-- write, and a set expires with its newest member.

local function index_add(key, score, member, cutoff, expires_at, now)
  redis.call('ZADD', key, score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. cutoff)
  local pttl = redis.call('PTTL', key)  -- PEXPIRETIME and PEXPIREAT GT need Redis 7
  if pttl < 0 or tonumber(now) + pttl < tonumber(expires_at) then
    redis.call('PEXPIREAT', key, expires_at)
  end
end

-- A new event enters the index of every combo its name makes, and the kept "missing"
-- indexes of each: it has no transaction yet.
local function index_event(scope, key, platform, label, name, now, cutoff, expires_at)
  for _, c in ipairs(combos(platform, label, name)) do
    index_add(index_key(scope, c), now, key, cutoff, expires_at, now)
    for _, txk in ipairs(redis.call('SMEMBERS', missing_registry_key(scope, c))) do
      index_add(missing_index_key(scope, txk, c), now, key, cutoff, expires_at, now)
    end
  end
end

-- Move a transaction between the state indexes of every combo of its event (`ev`, as
-- load_event reads it); a new transaction also enters the "any" indexes and leaves the
-- "missing" ones.
local function index_transaction(scope, ev, txk, old_state, new_state, now)
  local cutoff = tonumber(now) - tonumber(ev.ttl) * 1000
  for _, c in ipairs(combos(ev.platform, ev.label, ev.eventName)) do
    if old_state then
      redis.call('ZREM', tx_index_key(scope, old_state, txk, c), ev.key)
    else
      index_add(tx_index_key(scope, 'any', txk, c), ev.createdAt, ev.key, cutoff, ev.expiresAt, now)
      redis.call('ZREM', missing_index_key(scope, txk, c), ev.key)
    end
    index_add(tx_index_key(scope, new_state, txk, c), ev.createdAt, ev.key, cutoff, ev.expiresAt,
              now)
  end
end
