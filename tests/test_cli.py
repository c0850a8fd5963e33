"""`tidings keys create/list/revoke` and `tidings unsubscribe`, run as
`python -m tidings.cli` against the test Redis."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tidings import models
from tidings.settings import Settings
from tidings.store import Store

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(redis_url: str, redis_client: object) -> Cli:
    """cli(*args): runs the command line on an empty database; never raises on failure."""
    env = {**os.environ, "REDIS_URL": redis_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tidings.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    return run


def succeeds(cli: Cli, *args: str) -> list[str]:
    """The lines of stdout of a command that must succeed."""
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def emit_with(api: TestClient, secret: str) -> int:
    answer = api.post("/emit", json={"event": "order.paid"}, headers={"X-Buildable-Secret": secret})
    return answer.status_code


def test_create_prints_the_secret_on_its_last_line(cli: Cli, api: TestClient) -> None:
    lines = succeeds(cli, "keys", "create", "--name", "billing", "--env", "test")
    secret = lines[-1]
    assert "default/test/billing" in lines[0]
    assert emit_with(api, secret) == 200
    [row] = api.post("/query", json={}, headers={"X-Buildable-Secret": secret}).json()["rows"]
    assert (row["environment"], row["ownership"]["clientId"]) == ("test", "billing")


def test_create_json_is_one_object_with_the_secret(
    cli: Cli, api: TestClient, snapshot: Callable[[], dict[str, object]]
) -> None:
    [line] = succeeds(
        cli, "keys", "create", "--name", "ops", "--env", "live", "--owner", "acme", "--json"
    )
    key = json.loads(line)
    assert (key["name"], key["env"], key["owner"]) == ("ops", "live", "acme")
    assert type(key["createdAt"]) is int
    assert emit_with(api, key["secret"]) == 200
    assert key["secret"] not in json.dumps(snapshot(), default=str)


def test_list_shows_every_key_but_never_a_secret(cli: Cli, new_secret: Callable[..., str]) -> None:
    secrets = [
        new_secret("billing"),
        new_secret("billing", "live"),
        new_secret("ops", "test", "acme"),
    ]
    listed = [json.loads(line) for line in succeeds(cli, "keys", "list", "--json")]
    assert sorted((k["owner"], k["env"], k["name"]) for k in listed) == [
        ("acme", "test", "ops"),
        ("default", "live", "billing"),
        ("default", "test", "billing"),
    ]
    assert all("secret" not in k and "revokedAt" not in k for k in listed)
    acme = [json.loads(line) for line in succeeds(cli, "keys", "list", "--owner", "acme", "--json")]
    assert [(k["owner"], k["name"]) for k in acme] == [("acme", "ops")]
    plain = succeeds(cli, "keys", "list")
    assert len(plain) == 3 and all(line.endswith("\tactive") for line in plain)
    assert not any(secret in "\n".join(plain) for secret in secrets)


def test_revoke_makes_the_secret_401(
    cli: Cli, api: TestClient, new_secret: Callable[..., str]
) -> None:
    secret, other = new_secret("billing"), new_secret("billing", "live")
    [line] = succeeds(cli, "keys", "revoke", "billing", "--env", "test", "--json")
    revoked = json.loads(line)
    assert (revoked["name"], revoked["env"], revoked["owner"]) == ("billing", "test", "default")
    assert type(revoked["revokedAt"]) is int and "secret" not in revoked
    assert emit_with(api, secret) == 401
    assert emit_with(api, other) == 200
    listed = succeeds(cli, "keys", "list")
    assert sorted(line.split("\t")[1] for line in listed) == ["active", "revoked"]


@pytest.mark.parametrize(
    "args, exit_code",
    [
        (["keys", "create", "--name", "billing", "--env", "test"], 1),  # exists already
        (["keys", "revoke", "nobody", "--env", "test"], 1),
        (["keys", "create", "--name", "billing", "--env", "prod"], 2),
        (["keys", "create", "--name", "has space", "--env", "test"], 2),
        (["keys", "create", "--env", "test"], 2),
    ],
    ids=["duplicate", "revoke unknown", "unknown env", "bad name", "no name"],
)
def test_refused_commands_exit_non_zero_and_write_nothing(
    cli: Cli,
    api: TestClient,
    snapshot: Callable[[], dict[str, object]],
    new_secret: Callable[..., str],
    args: list[str],
    exit_code: int,
) -> None:
    first = new_secret("billing")
    before = snapshot()
    done = cli(*args)
    assert done.returncode == exit_code
    assert "Error" in done.stderr and done.stdout == ""
    assert snapshot() == before
    assert emit_with(api, first) == 200


def test_unsubscribe_forgets_a_handler_and_says_so(cli: Cli, settings: Settings) -> None:
    async def subscribe() -> None:
        store = Store.from_settings(settings)
        sub = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")
        await store.subscribe([sub], ["live"])
        await store.close()

    asyncio.run(subscribe())
    assert succeeds(cli, "unsubscribe", "ship") == ["ship unsubscribed in live"]
    again = cli("unsubscribe", "ship")
    assert again.returncode != 0
    assert "no handler 'ship' is subscribed" in again.stderr


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line in ``folder``, with no REDIS_URL: on the embedded Redis, if any."""
    unset = {"REDIS_URL", "TIDINGS_REDIS_URL", "TIDINGS_DATA_DIR"}
    env = {name: value for name, value in os.environ.items() if name not in unset}
    command = [sys.executable, "-m", "tidings.cli", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "create", "--name", "billing", "--env", "test"],
        ["keys", "revoke", "billing", "--env", "test"],
        ["unsubscribe", "ship"],
        ["rerun", "--failed", "--tx-key", "ship", "--env", "test"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_outside_a_project_folder_a_command_names_the_data_folder_and_makes_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    done = run_in(tmp_path, *args)
    assert done.returncode == 1 and done.stdout == ""
    assert f"its data folder would be {tmp_path.resolve() / '.tidings'}" in done.stderr
    assert "set REDIS_URL" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_in_a_project_folder_a_command_uses_its_embedded_redis(tmp_path: Path) -> None:
    (tmp_path / ".tidings").mkdir()  # as `tidings dev` or `tidings serve` leaves it
    created = run_in(tmp_path, "keys", "create", "--name", "billing", "--env", "live")
    assert created.returncode == 0, created.stderr
    listed = run_in(tmp_path, "keys", "list")  # another embedded Redis, on the same data
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["default/live/billing\tactive"]
    assert any((tmp_path / ".tidings" / "redis").glob("appendonly*"))  # its data is there
