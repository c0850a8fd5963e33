"""The store's Lua: each script is sent with exactly the shared pieces it uses, and Redis
compiles every one."""

import re
from importlib import resources

import pytest
import redis

from tidings.store.connection import lua_file, script_source, uses

FILES = sorted(
    path.name.removesuffix(".lua")
    for path in resources.files("tidings.store").iterdir()
    if path.name.endswith(".lua")
)
#: Scripts are named after the module that runs them ("events.emit"); pieces are not.
SCRIPTS = [name for name in FILES if "." in name]
PIECES = [name for name in FILES if "." not in name]


def defined_in(piece: str) -> set[str]:
    """The functions and constants a piece defines for the files that use it."""
    text = lua_file(piece)
    return set(re.findall(r"^local function (\w+)", text, re.M)) | set(
        re.findall(r"^local ([A-Z_]+) =", text, re.M)
    )


def names_used_in(name: str) -> set[str]:
    code = re.sub(r"--.*", "", lua_file(name))  # comments aside
    return set(re.findall(r"\b\w+\b", code))


@pytest.mark.parametrize("name", FILES)
def test_a_lua_file_names_the_pieces_whose_functions_it_calls_and_no_others(name: str) -> None:
    called = names_used_in(name)
    needed = {piece for piece in PIECES if piece != name and defined_in(piece) & called}
    assert set(uses(name)) == needed


def test_no_two_pieces_define_the_same_name() -> None:
    seen: dict[str, str] = {}
    for piece in PIECES:
        for defined in defined_in(piece):
            assert defined not in seen, f"{defined} in {piece} and {seen[defined]}"
            seen[defined] = piece


@pytest.mark.parametrize("script", SCRIPTS)
def test_redis_compiles_every_script_with_its_pieces_before_their_users(
    redis_client: redis.Redis, script: str
) -> None:
    source = script_source(script)
    redis_client.script_load(source)
    position = {name: source.find(lua_file(name)) for name in [*PIECES, script]}
    sent = {name: at for name, at in position.items() if at >= 0}
    for user, at in sent.items():
        assert all(0 <= position[used] < at for used in uses(user)), user
