"""A real Celery worker process for the tests, running tests/e2e_handlers.py."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from redis_support import client as redis_client

from tidings.cli import WORKER_ARGS
from tidings.store import keys

ROOT = Path(__file__).resolve().parent.parent
WORKER_ENV = {
    "TIDINGS_HANDLERS": "e2e_handlers",
    "PYTHONPATH": str(ROOT / "tests"),
    "TIDINGS_LEASE_SECONDS": "3",
    "TIDINGS_GRACE_SECONDS": "1",
    "TIDINGS_RECOVERY_INTERVAL_SECONDS": "0.5",
}


class Worker:
    """`celery -A workers worker` in its own process group, stopped by PID."""

    def __init__(self, redis_url: str, log_path: Path, env: dict[str, str]) -> None:
        self.redis_url = redis_url
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        # Celery's node name, its own for each worker: on RabbitMQ two workers of one name
        # cannot both hold the node's exclusive remote-control queue.
        self.node = f"w{uuid.uuid4().hex[:8]}@{socket.gethostname()}"

    def start(self) -> "Worker":
        command = [
            sys.executable,
            "-m",
            "celery",
            *WORKER_ARGS,
            "--concurrency=2",
            "--loglevel=info",
            f"--hostname={self.node}",
        ]
        env = {**os.environ, **WORKER_ENV, "REDIS_URL": self.redis_url, **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis_client(self.redis_url)
        deadline = time.monotonic() + 30
        while client.zscore(keys.WORKERS, self.name) is None:  # subscribed: ready
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    @property
    def name(self) -> str:
        """As it names itself in its heartbeats and transactions' history."""
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}"

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the main process and its pool children at once: no goodbyes."""
        self._signal(signal.SIGKILL)


def spans(client: Any, name: str) -> list[tuple[float, float, int]]:
    """(started, ended, attempt) of the runs a handler recorded under ``name``
    (tests/e2e_handlers.py: record_span), in seconds of the machine's clock."""
    found = []
    for span in client.lrange(f"test:spans:{name}", 0, -1):
        started, ended, attempt, _ = span.split()
        found.append((float(started), float(ended), int(attempt)))
    return found


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Until check() answers something true; that answer."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def handled(http: httpx.Client, key: str, timeout: float = 30) -> dict[str, Any]:
    """The event, once every transaction it expects has ended (GET /events/{key})."""
    event: dict[str, Any] = wait_until(
        lambda: (e := http.get(f"/events/{key}").json())["processing"]["isCompleted"] and e,
        f"event {key} to be handled",
        timeout,
    )
    return event
