"""The sorted lists of 2-byte offsets (tidings/store/lists.lua) under adds and removes in any
order, one at a time and gathered, checked against a Python set by the real Redis."""

import random

import pytest
import redis

from tidings.store.connection import lua_file

PART = "tidings:{lists-test|test|0}"
LIST = "a:t|*"

#: ARGV: a mode ("one": list_add each; "later": adds gathered and flushed in batches of 50),
#: then offsets to add (positive) and to remove (negative, minus one). Answers the list.
SCRIPT = (
    lua_file("keys")
    + lua_file("lists")
    + """
local mode = ARGV[1]
for i = 2, #ARGV do
  local n = tonumber(ARGV[i])
  if n >= 0 then
    if mode == 'one' then list_add(PART, LIST, 0, n) else list_add_later(PART, LIST, 0, n) end
  else  -- after the adds before it: a script never adds and removes one offset
    flush_list_changes()
    list_remove_later(PART, LIST, 0, -n - 1)
  end
  if mode == 'one' or i % 50 == 0 then flush_list_changes() end
end
flush_list_changes()
return redis.call('GET', list_chunk_key(PART, LIST, 0)) or ''
""".replace("PART", repr(PART)).replace("LIST,", repr(LIST) + ",")
)


def ops(rng: random.Random) -> tuple[list[int], set[int]]:
    """Adds mostly in order (a few late, some far back), some removes; what remains."""
    found: set[int] = set()
    done: list[int] = []
    for n in range(0, 4000, 2):
        off = max(n - rng.choice([0, 0, 0, 2, 6, 100, n]), 0)  # late by a little, or a lot
        done.append(off)
        found.add(off)
        if rng.random() < 0.2:
            gone = rng.choice(sorted(found))
            done.append(-gone - 1)
            found.discard(gone)
    return done, found


@pytest.mark.parametrize("mode", ["one", "later"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_list_holds_every_offset_once_in_order_whatever_the_order_of_changes(
    redis_url: str, mode: str, seed: int
) -> None:
    done, expected = ops(random.Random(seed))
    with redis.Redis.from_url(redis_url) as client:
        client.delete(f"{PART}:{LIST}:0")
        found = client.eval(SCRIPT, 0, mode, *done)
    assert isinstance(found, bytes)
    offsets = [int.from_bytes(found[i : i + 2]) for i in range(0, len(found), 2)]
    assert offsets == sorted(expected)
