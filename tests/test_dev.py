"""`tidings dev` as a developer runs it: a real process with its API and worker, stopped by
PID."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import wait_until_healthy
from worker_support import ROOT, WORKER_ENV, Worker, wait_until

from tidings.cli import DEV_WORKER_STOP_SECONDS
from tidings.redis_server import free_port
from tidings.store import keys

#: How long a killed worker's `tidings dev` may take to end, beyond its warm shutdown.
KILL_SECONDS = 15

Dev = Callable[..., tuple[subprocess.Popen[bytes], httpx.Client]]


@pytest.fixture
def dev(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Dev]:
    """Start `tidings dev` in a project folder of its own, on the tests' Redis; answers the
    process and an HTTP client with the dev key's secret."""
    started: list[tuple[subprocess.Popen[bytes], httpx.Client]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], httpx.Client]:
        (tmp_path / ".tidings").mkdir(exist_ok=True)
        port = free_port()
        env = {
            **os.environ,
            **WORKER_ENV,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
            "REDIS_URL": redis_url,
        }
        command = [sys.executable, "-m", "tidings.cli", "dev", "--port", str(port), *args]
        log_path = tmp_path / "dev.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(base_url, process, log_path)
        secret = (tmp_path / ".tidings" / "dev-secret").read_text()
        http = httpx.Client(base_url=base_url, headers={"X-Buildable-Secret": secret})
        started.append((process, http))
        return process, http

    yield start
    for process, http in started:
        http.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_stopped_while_a_handler_runs_kills_its_worker_rather_than_orphan_it(
    dev: Dev, redis_client: redis.Redis
) -> None:
    process, http = dev()
    [name] = wait_until(lambda: redis_client.zrange(keys.WORKERS, 0, -1), "its worker")
    worker_pid = int(name.rsplit(":", 1)[1])
    try:
        key = http.post("/emit", json={"event": "e2e.slow"}).json()["key"]  # hangs for 120 s
        wait_until(lambda: redis_client.get(f"test:started:{key}"), "the handler")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEV_WORKER_STOP_SECONDS + KILL_SECONDS) == 0
        assert not alive(worker_pid)
    finally:
        if alive(worker_pid):  # orphaned: no one else would stop it
            os.kill(worker_pid, signal.SIGKILL)


def test_events_emitted_to_dev_before_a_worker_runs_are_handled_once_one_starts(
    dev: Dev, redis_url: str, tmp_path: Path
) -> None:
    _, http = dev("--no-worker")
    key = http.post("/emit", json={"event": "e2e.echo", "payload": {}}).json()["key"]
    worker = Worker(redis_url, tmp_path / "worker.log", {}).start()
    try:
        wait_until(
            lambda: http.get(f"/events/{key}").json()["state"] == "finished", "the event handled"
        )
    finally:
        worker.kill()
