-- Every Redis key name the scripts use, built as tidings/store/keys.py builds it (where
-- the keys are described); tests/test_keys.py checks that the two agree.
-- A `scope` is a scope's prefix, "tidings:{owner}:{env}".

local ROOT = 'tidings'

local function secrets_key() return ROOT .. ':secrets' end
local function secret_key(digest) return ROOT .. ':secret:' .. digest end
local function subscriptions_key(env, name) return ROOT .. ':subs:' .. env .. ':' .. name end
local function outstanding_key(env) return ROOT .. ':outstanding:' .. env end
local function leases_key(env) return ROOT .. ':leases:' .. env end
local function recovered_key(env) return ROOT .. ':recovered:' .. env end

local function scope_key(owner, env) return ROOT .. ':' .. owner .. ':' .. env end
local function event_key(scope, key) return scope .. ':ev:' .. key end
local function event_txs_key(scope, key) return event_key(scope, key) .. ':txs' end
local function event_expected_key(scope, key) return event_key(scope, key) .. ':expected' end
local function transaction_key(scope, key, txk) return scope .. ':tx:' .. key .. '|' .. txk end
local function index_key(scope, combo) return scope .. ':idx|' .. combo end
local function tx_index_key(scope, state, txk, combo)
  return scope .. ':txidx|' .. state .. '|' .. txk .. '|' .. combo
end
local function missing_index_key(scope, txk, combo)
  return scope .. ':miss|' .. txk .. '|' .. combo
end
local function missing_registry_key(scope, combo) return scope .. ':missreg|' .. combo end
local function missing_kept_key(scope) return scope .. ':missing-kept' end
local function idempotency_key(scope, ikey) return scope .. ':idem:' .. ikey end

-- The eight combos of (platform, label, eventName) an event can be queried by.
local function combos(platform, label, name)
  local p, l, n = 'p=' .. platform, 'l=' .. label, 'n=' .. name
  return {'*', p, l, n, p .. '|' .. l, p .. '|' .. n, l .. '|' .. n, p .. '|' .. l .. '|' .. n}
end

-- "tidings:{owner}:{env}" -> owner, env
local function owner_env(scope) return string.match(scope, '^[^:]+:([^:]+):([^:]+)$') end
local function env_of(scope)
  local _, env = owner_env(scope)
  return env
end
-- An event as the outstanding sets name it: "{owner}|{env}|{key}".
local function scope_member(scope, key)
  local owner, env = owner_env(scope)
  return owner .. '|' .. env .. '|' .. key
end
-- A transaction as the leases and recovered sets name it: "{owner}|{env}|{key}|{txKey}".
local function lease_member(scope, key, txk) return scope_member(scope, key) .. '|' .. txk end
-- Either member -> owner, env, key, txKey ('' for an event's)
local function parse_member(member)
  return string.match(member, '^([^|]+)|([^|]+)|([^|]+)|?(.*)$')
end
