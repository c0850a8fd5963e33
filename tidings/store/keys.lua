-- Every Redis key name the scripts use, built as tidings/store/keys.py builds it (where
-- the keys are described); tests/test_keys.py checks that the two agree.
-- `part` is a partition's prefix, "tidings:{owner|env|p}": a script is given the
-- partition's meta key (KEYS[1]) and builds the rest from it, in the same slot.

local ROOT = 'tidings'
local CHUNK = 65536

local function secrets_key() return ROOT .. ':{secrets}' end
local function secret_key(digest) return secrets_key() .. ':' .. digest end

local function partition_key(owner, env, p) return ROOT .. ':{' .. owner .. '|' .. env .. '|' .. p .. '}' end
local function meta_key(part) return part .. ':meta' end
local function partition_of_meta(meta) return string.sub(meta, 1, -6) end
local function log_key(part, chunk) return part .. ':log:' .. chunk end
local function records_key(part) return part .. ':rec' end
local function lists_key(part) return part .. ':lists' end
local function combo_list(combo) return 'c:' .. combo end
local function any_list(txk, combo) return 'a:' .. txk .. '|' .. combo end
local function state_list(state, txk, full) return 's:' .. state .. '|' .. txk .. '|' .. full end
local function list_chunk_key(part, list, chunk) return part .. ':' .. list .. ':' .. chunk end
local function tx_names_key(part, txk) return part .. ':txnames:' .. txk end
local function outstanding_key(part) return part .. ':outstanding' end
local function leases_key(part) return part .. ':leases' end
local function recovered_key(part) return part .. ':recovered' end
local function due_key(part) return part .. ':due' end
local function idempotency_key(part, ikey) return part .. ':idem:' .. ikey end
-- A transaction as the leases and recovered sets name it: the event key's 16 bytes, txKey.
local function lease_member(key16, txk) return key16 .. txk end

-- The eight combos of (platform, label, eventName) an event can be queried by.
local function combos(platform, label, name)
  local p, l, n = 'p=' .. platform, 'l=' .. label, 'n=' .. name
  return {'*', p, l, n, p .. '|' .. l, p .. '|' .. n, l .. '|' .. n, p .. '|' .. l .. '|' .. n}
end
local function full_name(platform, label, name) return platform .. '.' .. label .. '.' .. name end
-- "platform.label.eventName" -> its three parts (platforms and labels hold no dots)
local function split_full_name(full) return string.match(full, '^([^.]+)%.([^.]+)%.(.+)$') end
