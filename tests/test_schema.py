"""The store's schema version: recorded on first use; data of another schema is refused by
`tidings serve`, `tidings dev` and a worker, real processes, with a message saying what to do."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from conftest import db_snapshot
from fastapi.testclient import TestClient
from worker_support import ROOT, WORKER_ENV

from tidings.api import create_app
from tidings.cli import WORKER_ARGS
from tidings.redis_server import free_port
from tidings.settings import Settings
from tidings.store import keys, schema
from tidings.store.schema import SCHEMA_VERSION, SchemaMismatch

OTHER = str(SCHEMA_VERSION + 1)
REFUSAL = (
    f"this Redis holds tidings data of schema {OTHER}; this tidings needs schema "
    f"{SCHEMA_VERSION}: flush it (FLUSHDB"
)


def run_to_exit(
    command: list[str], redis_url: str, cwd: Path, **env: str | None
) -> tuple[int, str]:
    """Run a command on the tests' Redis, with the tests' handlers (``env`` sets more, or
    unsets with None), until it exits (its process group is killed if it has not within a
    minute: it did not refuse); its exit code and output."""
    merged = {**os.environ, **WORKER_ENV, "REDIS_URL": redis_url, **env}
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={name: value for name, value in merged.items() if value is not None},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, output


@pytest.fixture
def other_schema(redis_client: redis.Redis) -> dict[str, object]:
    """Tidings data of another schema; a snapshot of the database."""
    redis_client.set(keys.SCHEMA, OTHER)
    redis_client.hset(keys.secret("ab" * 32), mapping={"name": "shop", "env": "test"})
    return db_snapshot(redis_client)


@pytest.mark.parametrize("with_handlers", [True, False], ids=["handlers", "no-handlers-package"])
def test_serve_refuses_to_start_on_data_of_another_schema(
    redis_url: str,
    redis_client: redis.Redis,
    other_schema: dict[str, object],
    with_handlers: bool,
    tmp_path: Path,
) -> None:
    serve = [sys.executable, "-m", "tidings.cli", "serve", "--port", str(free_port())]
    if with_handlers:
        code, output = run_to_exit(serve, redis_url, ROOT)
    else:  # a folder with no handlers package and TIDINGS_HANDLERS unset: an API alone
        code, output = run_to_exit(serve, redis_url, tmp_path, TIDINGS_HANDLERS=None)
    assert code == 1
    assert REFUSAL in output
    assert db_snapshot(redis_client) == other_schema  # no handler subscribed, nothing else


def test_dev_refuses_to_start_on_data_of_another_schema(
    redis_url: str, redis_client: redis.Redis, other_schema: dict[str, object], tmp_path: Path
) -> None:
    dev = [sys.executable, "-m", "tidings.cli", "dev", "--no-worker", "--port", str(free_port())]
    code, output = run_to_exit(dev, redis_url, tmp_path)
    assert code == 1
    assert REFUSAL in output
    assert db_snapshot(redis_client) == other_schema  # no dev key made


def test_a_worker_refuses_to_start_on_data_of_another_schema(
    redis_url: str, redis_client: redis.Redis, other_schema: dict[str, object]
) -> None:
    worker = [sys.executable, "-m", "celery", *WORKER_ARGS, "--concurrency=1"]
    code, output = run_to_exit(worker, redis_url, ROOT)
    assert code == 1
    assert REFUSAL in output
    assert db_snapshot(redis_client) == other_schema  # no heartbeat, no subscription


def test_a_command_records_this_schema_in_an_empty_database(
    redis_url: str, redis_client: redis.Redis
) -> None:
    create = [sys.executable, "-m", "tidings.cli", "keys", "create", "--name", "shop", "--env"]
    code, output = run_to_exit([*create, "test"], redis_url, ROOT)
    assert code == 0, output
    assert redis_client.get(keys.SCHEMA) == str(SCHEMA_VERSION)


def schema_of(redis_url: str, *steps: tuple[str, int]) -> str | None:
    """Run schema.check (needs) and schema.record (version) steps; the recorded schema."""

    async def scenario() -> str | None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            for step, version in steps:
                if step == "check":
                    await schema.check(client, needs=version)
                else:
                    await schema.record(client, version=version)
            recorded: str | None = await client.get(keys.SCHEMA)
            return recorded
        finally:
            await client.aclose()

    return asyncio.run(scenario())


def test_tidings_data_without_a_recorded_schema_is_schema_1(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A secret key as schema 1 names it (schema 2 names it keys.secret(...)).
    redis_client.hset("tidings:secret:" + "ab" * 32, mapping={"name": "shop", "env": "test"})
    with pytest.raises(SchemaMismatch, match="holds tidings data of schema 1; .* needs schema 2"):
        schema_of(redis_url, ("check", 2))
    assert redis_client.get(keys.SCHEMA) is None  # refused: nothing recorded
    assert schema_of(redis_url, ("check", 1), ("record", 1)) == "1"


def test_a_database_holding_only_other_applications_keys_takes_this_schema(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("another-app:counter", 7)
    assert schema_of(redis_url, ("check", 2), ("record", 2)) == "2"
    with pytest.raises(SchemaMismatch, match="schema 2; this tidings needs schema 1"):
        schema_of(redis_url, ("check", 1))


def test_a_recorded_schema_stands(redis_url: str, redis_client: redis.Redis) -> None:
    assert schema_of(redis_url, ("record", 1), ("record", 2)) == "1"


def test_the_api_records_this_schema_and_will_not_start_on_another(
    settings: Settings, redis_client: redis.Redis
) -> None:
    with TestClient(create_app(settings)):
        assert redis_client.get(keys.SCHEMA) == str(SCHEMA_VERSION)
    redis_client.set(keys.SCHEMA, OTHER)
    with (
        pytest.raises(SchemaMismatch, match=re.escape(REFUSAL)),
        TestClient(create_app(settings)),
    ):
        pass
