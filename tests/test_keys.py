"""Redis key names: keys.lua builds each one as keys.py does, run by the real Redis."""

import re
from typing import Any

import pytest
import redis

from tidings.store import keys
from tidings.store.connection import lua_file
from tidings.work import Scope

#: Sample inputs: plain ones, and names with the characters names may hold (dots, colons,
#: dashes, non-ASCII).
SAMPLES = [
    ("default", "test", "018f2a6b3c4d0001a1b2c3d4e5f60718", "send-receipt", "user.created"),
    ("acme_eu-2", "live", "k-1", "billing:invoice.v2", "commande.payée"),
]
PLATFORM, LABEL, STATE, DIGEST = "custom", "shop", "failed", "ab" * 32


def lua_cases(owner: str, env: str, key: str, tx_key: str, name: str) -> dict[str, Any]:
    """Lua expression (in terms of the sample, see ARGS) -> what keys.py builds."""
    scope = Scope(owner, env)
    combo = keys.combo(PLATFORM, None, name)
    subsets = [(p, lb, n) for p in (None, PLATFORM) for lb in (None, LABEL) for n in (None, name)]
    return {
        "secrets_key()": keys.SECRETS,
        "secret_key(DIGEST)": keys.secret(DIGEST),
        "subscriptions_key(E, N)": keys.subscriptions(env, name),
        "outstanding_key(E)": keys.outstanding(env),
        "leases_key(E)": keys.leases(env),
        "recovered_key(E)": keys.recovered(env),
        "scope_key(O, E)": keys.scope_prefix(scope),
        "event_key(S, K)": keys.event(scope, key),
        "event_txs_key(S, K)": keys.event_txs(scope, key),
        "event_expected_key(S, K)": keys.event_expected(scope, key),
        "transaction_key(S, K, T)": keys.transaction(scope, key, tx_key),
        "index_key(S, C)": keys.index(scope, combo),
        "tx_index_key(S, STATE, T, C)": keys.tx_index(scope, STATE, tx_key, combo),
        "missing_index_key(S, T, C)": keys.missing_index(scope, tx_key, combo),
        "missing_registry_key(S, C)": keys.missing_registry(scope, combo),
        "missing_kept_key(S)": keys.missing_kept(scope),
        "idempotency_key(S, DIGEST)": keys.idempotency(scope, DIGEST),
        "combos(PLATFORM, LABEL, N)": [keys.combo(*subset) for subset in subsets],
        "{owner_env(S)}": [owner, env],
        "env_of(S)": env,
        "scope_member(S, K)": keys.scope_member(owner, env, key),
        "lease_member(S, K, T)": keys.lease_member(owner, env, key, tx_key),
        "{parse_member(MEMBER)}": [owner, env, key, tx_key],
        "{parse_member(EVENT_MEMBER)}": [owner, env, key, ""],
    }


#: The sample's names in Lua, from ARGV.
ARGS = """
local O, E, K, T, N, PLATFORM, LABEL, STATE, DIGEST, MEMBER, EVENT_MEMBER = unpack(ARGV)
local S, C = scope_key(O, E), 'p=' .. PLATFORM .. '|n=' .. N
"""


def run_in_lua(client: redis.Redis, expressions: list[str], sample: tuple[str, ...]) -> list[Any]:
    owner, env, key, tx_key, name = sample
    members = [keys.lease_member(owner, env, key, tx_key), keys.scope_member(owner, env, key)]
    script = lua_file("keys") + ARGS + "return {" + ", ".join(expressions) + "}"
    args = [*sample, PLATFORM, LABEL, STATE, DIGEST, *members]
    answer: list[Any] = client.eval(script, 0, *args)  # type: ignore[assignment]
    return answer


@pytest.mark.parametrize("sample", SAMPLES, ids=["plain", "dotted-colons-unicode"])
def test_every_lua_key_name_is_the_one_keys_py_builds(
    redis_client: redis.Redis, sample: tuple[str, str, str, str, str]
) -> None:
    cases = lua_cases(*sample)
    built_in_lua = run_in_lua(redis_client, list(cases), sample)
    for (expression, expected), found in zip(cases.items(), built_in_lua, strict=True):
        if expression.startswith("combos"):
            assert sorted(found) == sorted(expected), expression
        else:
            assert found == expected, expression


def test_every_function_of_keys_lua_is_compared() -> None:
    defined = set(re.findall(r"^local function (\w+)", lua_file("keys"), re.M))
    called = {re.findall(r"\w+", expression)[0] for expression in lua_cases(*SAMPLES[0])}
    assert defined == called
