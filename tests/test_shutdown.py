"""SIGTERM as a PaaS sends it: to every process of `tidings serve` or a worker at once, then
SIGKILL once its grace period is over (Heroku: 30 s). Real processes throughout."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis
from conftest import wait_until_healthy
from worker_support import Worker

from tidings import models
from tidings.celery_app import create_celery, publish
from tidings.redis_server import URL_FILE, free_port
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope, WorkItem

T = TypeVar("T")

#: Heroku's: SIGKILL follows SIGTERM after this long.
PAAS_GRACE_SECONDS = 30
SCOPE = Scope("default", "test")
ADMIN = {"Authorization": "Bearer admin-secret"}
#: Clients emitting at once while `tidings serve` is told to stop.
CLIENTS = 16
#: Events accepted before the SIGTERM, so that it lands on a server under load.
ACCEPTED_BEFORE_SIGTERM = 100


def start_serving(
    redis_url: str | None, log_path: Path, *args: str, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`tidings serve` in its own process group, as a PaaS runs it; on the embedded Redis
    of ``cwd`` where ``redis_url`` is None."""
    port = free_port()
    env = {**os.environ, "TIDINGS_ADMIN_TOKEN": "admin-secret"}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "tidings.cli", "serve", "--port", str(port), *args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    wait_until_healthy(base_url, process, log_path)
    return process, base_url


def paas_stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to every process of the group; the exit code, once it has exited within the
    grace period (the test fails otherwise: a PaaS would SIGKILL it there)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=PAAS_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"still running {PAAS_GRACE_SECONDS} s after SIGTERM") from None


def in_store(settings: Settings, query: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = Store.from_settings(settings)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(run())


def total(settings: Settings, **filters: str) -> int:
    request = models.QueryRequest(pageSize=1, **filters)  # type: ignore[arg-type]
    page = in_store(settings, lambda store: store.query(SCOPE, request))
    return page.total


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        log_path = tmp_path / f"worker{len(started)}.log"
        started.append(Worker(settings.store_url, log_path, env).start())
        return started[-1]

    yield start
    for each in started:
        each.kill()


async def emit_until_stopped(
    base_url: str, secret: str, process: subprocess.Popen[bytes]
) -> tuple[list[str], int]:
    """Emit from many clients at once; SIGTERM the server under that load. Answers the keys
    of the accepted events and the server's exit code."""
    accepted: list[str] = []
    stopped = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while not stopped.is_set():
            try:
                answer = await http.post("/emit", json={"event": "e2e.echo", "payload": {}})
            except httpx.TransportError:  # refused or cut off: never accepted
                await asyncio.sleep(0.01)
                continue
            if answer.status_code == 200:
                accepted.append(answer.json()["key"])

    headers = {"X-Buildable-Secret": secret}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
        clients = [asyncio.create_task(client(http)) for _ in range(CLIENTS)]
        while len(accepted) < ACCEPTED_BEFORE_SIGTERM:
            await asyncio.sleep(0.01)
        exit_code = await asyncio.to_thread(paas_stop, process)
        stopped.set()
        await asyncio.gather(*clients)
    return accepted, exit_code


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_to_serve_answers_what_is_in_flight_and_every_accepted_event_is_handled(
    settings: Settings, worker: Callable[..., Worker], tmp_path: Path, workers: str
) -> None:
    # Recovery would re-dispatch events the API never published: here it waits an hour, so
    # that only the API's own publishing, flushed as it stops, can get them handled.
    worker(TIDINGS_GRACE_SECONDS="3600")
    process, base_url = start_serving(
        settings.store_url, tmp_path / "serve.log", "--workers", workers
    )
    try:
        created = httpx.post(
            f"{base_url}/admin/keys", json={"name": "shop", "env": "test"}, headers=ADMIN
        )
        accepted, exit_code = asyncio.run(
            emit_until_stopped(base_url, created.json()["secret"], process)
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert exit_code == 0, (tmp_path / "serve.log").read_text()
    # Every event stored was answered 200, and every one answered 200 is stored ...
    assert total(settings, eventName="e2e.echo") == len(accepted) >= ACCEPTED_BEFORE_SIGTERM
    # ... and handled, though the API stopped right after accepting the last of them.
    wait_until(
        lambda: total(settings, txKey="echo", txState="finished") == len(accepted),
        60,
        f"{len(accepted)} events handled",
    )


def emit_to_worker(settings: Settings, event_name: str) -> str:
    async def emit(store: Store) -> list[tuple[WorkItem, str]]:
        [event] = await store.emit(
            SCOPE, [models.EmitRequest(event=event_name)], platform="custom", label="t", actor="t"
        )
        return [(WorkItem(SCOPE.owner, SCOPE.env, event.key, tx), q) for tx, q in event.routes]

    items = in_store(settings, emit)
    assert items, "no handler subscribed"
    publish(create_celery(settings, import_handlers=False), items)
    return str(items[0][0].key)


def transaction(settings: Settings, key: str) -> models.Transaction:
    event = in_store(settings, lambda store: store.get_event(SCOPE, key))
    [tx] = event.transactions
    return tx


def test_sigterm_to_a_worker_lets_its_running_handler_finish(
    settings: Settings, worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    running = worker()
    key = emit_to_worker(settings, "e2e.long")  # runs 4.5 s, beyond its 3 s lease
    wait_until(lambda: redis_client.get(f"test:runs:long:{key}") == "1", 20, "the handler")
    assert running.process is not None
    assert paas_stop(running.process) == 0
    tx = transaction(settings, key)
    assert (tx.state, tx.output, tx.attempts) == ("finished", "done", 1)
    assert redis_client.get(f"test:runs:long:{key}") == "1"


def test_a_handler_outlasting_the_grace_period_is_recovered_by_another_worker(
    settings: Settings, worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    first = worker()
    key = emit_to_worker(settings, "e2e.slow")  # its first attempt hangs for 120 s
    wait_until(lambda: bool(redis_client.get(f"test:started:{key}")), 20, "the handler")
    assert first.process is not None
    os.killpg(first.process.pid, signal.SIGTERM)
    time.sleep(1)  # a short grace period: the handler is still running ...
    assert first.process.poll() is None
    first.kill()  # ... when the PaaS's SIGKILL comes
    worker()
    wait_until(lambda: transaction(settings, key).state == "finished", 30, "the recovery")
    tx = transaction(settings, key)
    assert tx.output == {"attempt": 2}
    assert any(h.reason == "lease expired: claimed again" for h in tx.history)


def test_sigterm_to_serve_on_its_embedded_redis_stops_that_redis_too(tmp_path: Path) -> None:
    process, base_url = start_serving(None, tmp_path / "serve.log", cwd=tmp_path)
    url_file = tmp_path / ".tidings" / "redis" / URL_FILE
    url = url_file.read_text()
    assert redis.Redis.from_url(url).ping()
    assert paas_stop(process) == 0, (tmp_path / "serve.log").read_text()
    assert not url_file.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_a_worker_finishing_a_handler_after_sigterm_is_not_taken_for_deaf(
    settings: Settings, worker: Callable[..., Worker], redis_client: redis.Redis
) -> None:
    # Its handler (4.5 s) outlasts the canary timeout (2 s) while its consumer, shut down,
    # answers no canary.
    running = worker(TIDINGS_CANARY_INTERVAL_SECONDS="0.5", TIDINGS_CANARY_TIMEOUT_SECONDS="2")
    key = emit_to_worker(settings, "e2e.long")
    wait_until(lambda: redis_client.get(f"test:runs:long:{key}") == "1", 20, "the handler")
    assert running.process is not None
    os.killpg(running.process.pid, signal.SIGTERM)

    def beat() -> models.WorkerBeat:
        record = redis_client.get(keys.worker(running.name))
        assert record, "no heartbeat"
        return models.WorkerBeat.model_validate_json(record)

    # While it finishes the handler, it heartbeats, but as a consumer of nothing.
    wait_until(lambda: not beat().queues, 3, "a heartbeat without queues")
    assert running.process.poll() is None
    assert running.process.wait(timeout=PAAS_GRACE_SECONDS) == 0
    assert (transaction(settings, key).state, transaction(settings, key).output) == (
        "finished",
        "done",
    )
    assert "deaf" not in running.log_path.read_text()


@pytest.mark.parametrize("signals", [["SIGINT", "SIGINT"], ["SIGTERM", "SIGQUIT"], ["SIGQUIT"]])
def test_a_cold_shutdown_stops_a_running_handler_and_another_worker_recovers_it(
    settings: Settings,
    worker: Callable[..., Worker],
    redis_client: redis.Redis,
    signals: list[str],
) -> None:
    first = worker()
    key = emit_to_worker(settings, "e2e.slow")  # its first attempt hangs for 120 s
    wait_until(lambda: bool(redis_client.get(f"test:started:{key}")), 20, "the handler")
    assert first.process is not None
    for name in signals:  # to the main process alone, as Ctrl+C twice or `kill` would
        os.kill(first.process.pid, signal.Signals[name])
        time.sleep(1)  # for Celery to take each signal in turn
    first.process.wait(timeout=PAAS_GRACE_SECONDS)  # not the 120 s of the handler
    worker()
    wait_until(lambda: transaction(settings, key).state == "finished", 30, "the recovery")
    assert transaction(settings, key).output == {"attempt": 2}
