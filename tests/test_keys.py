"""Redis key names: keys.lua builds each one as keys.py does, run by the real Redis."""

import re
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from tidings.store import keys, schema
from tidings.store.connection import lua_file
from tidings.work import Scope

#: Sample inputs: plain ones, and names with the characters names may hold (dots, colons,
#: dashes, braces, non-ASCII).
SAMPLES = [
    ("default", "test", "018f2a6b3c4d0001a1b2c3d4e5f60718", "send-receipt", "user.created"),
    ("acme_eu-2", "live", "ffffffffffffffff0000000000000000", "billing:{x}", "commande.payée"),
]
PLATFORM, LABEL, STATE, DIGEST, PARTITION, CHUNK_NUMBER = (
    "custom",
    "shop",
    "failed",
    "ab" * 32,
    5,
    17,
)
IDEMPOTENCY_KEY = "delivery-1"


def lua_cases(owner: str, env: str, key: str, tx_key: str, name: str) -> dict[str, Any]:
    """Lua expression (in terms of the sample, see ARGS) -> what keys.py builds."""
    scope = Scope(owner, env)
    combo = keys.combo(PLATFORM, None, name)
    full = f"{PLATFORM}.{LABEL}.{name}"
    a_list = keys.any_list(tx_key, combo)
    return {
        "CHUNK": keys.CHUNK,
        "secrets_key()": keys.SECRETS,
        "secret_key(DIGEST)": keys.secret(DIGEST),
        "partition_key(O, E, PARTITION)": keys.partition(scope, PARTITION),
        "meta_key(PART)": keys.meta(scope, PARTITION),
        "partition_of_meta(meta_key(PART))": keys.partition(scope, PARTITION),
        "log_key(PART, CHUNK_NUMBER)": keys.log(scope, PARTITION, CHUNK_NUMBER),
        "records_key(PART)": keys.records(scope, PARTITION),
        "lists_key(PART)": keys.lists(scope, PARTITION),
        "combo_list(C)": keys.combo_list(combo),
        "any_list(T, C)": a_list,
        "state_list(STATE, T, FULL)": keys.state_list(STATE, tx_key, full),
        "list_chunk_key(PART, any_list(T, C), CHUNK_NUMBER)": keys.list_chunk(
            scope, PARTITION, a_list, CHUNK_NUMBER
        ),
        "tx_names_key(PART, T)": keys.tx_names(scope, PARTITION, tx_key),
        "outstanding_key(PART)": keys.outstanding(scope, PARTITION),
        "leases_key(PART)": keys.leases(scope, PARTITION),
        "recovered_key(PART)": keys.recovered(scope, PARTITION),
        "due_key(PART)": keys.due(scope, PARTITION),
        "idempotency_key(PART, IKEY)": keys.idempotency(scope, PARTITION, IDEMPOTENCY_KEY),
        "lease_member(KEY16, T)": keys.lease_member(key, tx_key),
        "combos(PLATFORM, LABEL, N)": keys.combos(PLATFORM, LABEL, name),
        "full_name(PLATFORM, LABEL, N)": full,
        "{split_full_name(FULL)}": [PLATFORM, LABEL, name],
    }


#: The sample's names in Lua, from ARGV.
ARGS = """
local O, E, KEY16, T, N, PLATFORM, LABEL, STATE, DIGEST = unpack(ARGV, 1, 9)
local PARTITION, CHUNK_NUMBER, IKEY = unpack(ARGV, 10, 12)
local PART, C = partition_key(O, E, PARTITION), 'p=' .. PLATFORM .. '|n=' .. N
local FULL = full_name(PLATFORM, LABEL, N)
"""


def run_in_lua(client: redis.Redis, expressions: list[str], sample: tuple[str, ...]) -> list[Any]:
    owner, env, key, tx_key, name = sample
    script = lua_file("keys") + ARGS + "return {" + ", ".join(expressions) + "}"
    args: list[object] = [owner, env, bytes.fromhex(key), tx_key, name, PLATFORM, LABEL, STATE]
    args += [DIGEST, PARTITION, CHUNK_NUMBER, IDEMPOTENCY_KEY]
    answer: list[Any] = client.eval(script, 0, *args)
    return answer


def as_built(value: Any) -> Any:
    """What Redis answered, as keys.py builds it: text, except a lease member's bytes."""
    if isinstance(value, list):
        return [as_built(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value


@pytest.mark.parametrize("sample", SAMPLES, ids=["plain", "dotted-colons-braces-unicode"])
def test_every_lua_key_name_is_the_one_keys_py_builds(
    redis_url: str, sample: tuple[str, str, str, str, str]
) -> None:
    cases = lua_cases(*sample)
    with redis.Redis.from_url(redis_url) as client:  # bytes: a lease member is not text
        built_in_lua = run_in_lua(client, list(cases), sample)
    for (expression, expected), found in zip(cases.items(), built_in_lua, strict=True):
        found = found if expression.startswith("lease_member") else as_built(found)
        if expression.startswith("combos"):
            assert sorted(found) == sorted(expected), expression
        else:
            assert found == expected, expression


def test_every_name_keys_lua_defines_is_compared() -> None:
    text = lua_file("keys")
    defined = set(re.findall(r"^local function (\w+)", text, re.M))
    defined |= set(re.findall(r"^local ([A-Z_]+) =", text, re.M)) - {"ROOT"}
    called = {re.findall(r"\w+", expression)[0] for expression in lua_cases(*SAMPLES[0])}
    assert defined == called


def test_a_partition_is_one_cluster_slot() -> None:
    """Every key of a partition carries the partition's hash tag, whatever the names."""
    scope, p = Scope(*SAMPLES[1][:2]), 3
    tag = f"{{{scope.owner}|{scope.env}|{p}}}"
    tx_key, full = SAMPLES[1][3], f"custom.shop.{SAMPLES[1][4]}"
    built = [
        keys.meta(scope, p),
        keys.log(scope, p, 0),
        keys.records(scope, p),
        keys.lists(scope, p),
        keys.list_chunk(scope, p, keys.state_list("failed", tx_key, full), 2),
        keys.tx_names(scope, p, tx_key),
        keys.outstanding(scope, p),
        keys.leases(scope, p),
        keys.recovered(scope, p),
        keys.due(scope, p),
        keys.idempotency(scope, p, "{other}"),
    ]
    assert all(re.match(r"[^{]*(\{[^}]*\})", key).group(1) == tag for key in built)  # type: ignore[union-attr]


def test_a_limit_is_one_cluster_slot_and_flow_keys_are_of_schema_2() -> None:
    """A flow script's keys (all of one limit) share a slot, whatever the key path's value;
    and every flow key carries a hash tag, so that it is not taken for schema-1 data."""
    scope, tx_key = Scope(*SAMPLES[1][:2]), SAMPLES[1][3]
    limit = keys.flow_limit("concurrency", scope, tx_key, '{"id": "a}b"}')
    of_limit = [keys.flow_tat(limit), keys.flow_booked(limit)]
    of_limit += [keys.flow_slots(limit), keys.flow_waiting(limit)]
    assert len({key_slot(key.encode()) for key in of_limit}) == 1
    registries = [keys.FLOW_WAITING, keys.FLOW_BOOKED]
    assert len({key_slot(key.encode()) for key in registries}) == 1
    for key in [*of_limit, *registries, keys.flow_tick(scope, SAMPLES[1][4])]:
        assert not schema.of_schema_1(key), key


def test_a_limit_tells_what_it_was_built_from() -> None:
    scope, tx_key = Scope(*SAMPLES[1][:2]), SAMPLES[1][3]
    for value in ("null", '"a|b}"', '{"id":"a}b"}'):
        limit = keys.flow_limit("rate", scope, tx_key, value)
        assert keys.flow_limit_parts(limit) == ("rate", scope, tx_key, value)
