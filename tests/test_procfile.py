"""The Procfile as a PaaS runs it: honcho starts web and worker; 200 events get handled."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from tidings.redis_server import free_port
from tidings.settings import Settings
from tidings.store import keys

ROOT = Path(__file__).resolve().parent.parent


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_honcho_runs_the_procfile_and_200_events_are_handled(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PORT": str(port),
        "REDIS_URL": settings.redis_url or "",
        "TIDINGS_ADMIN_TOKEN": "admin-secret",
    }
    log = open(tmp_path / "honcho.log", "wb")  # noqa: SIM115
    honcho = subprocess.Popen(
        [f"{bin_dir}/honcho", "start"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def web_up() -> bool:
            try:
                return httpx.get(f"{base}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(web_up, 30, "the web process")
        wait_until(lambda: redis_client.zcard(keys.WORKERS) > 0, 30, "the worker")
        with httpx.Client(base_url=base, timeout=10) as http:
            admin = {"Authorization": "Bearer admin-secret"}
            created = http.post(
                "/admin/keys", json={"name": "signup", "env": "live"}, headers=admin
            )
            http.headers["X-Buildable-Secret"] = created.json()["secret"]
            for n in range(200):
                payload = {"email": f"user{n}@example.com", "name": f"User {n}"}
                assert (
                    http.post(
                        "/emit", json={"event": "user.created", "payload": payload}
                    ).status_code
                    == 200
                )

            def finished() -> int:
                query = {"txKey": "send-welcome-email", "txState": "finished", "pageSize": 1}
                return int(http.post("/query", json=query).json()["total"])

            wait_until(lambda: finished() == 200, 60, "200 finished transactions")
            pending = {
                "eventName": "user.created",
                "txKey": "send-welcome-email",
                "txState": "does-not-exist",
            }
            assert http.post("/query", json=pending).json()["total"] == 0
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=30)
        log.close()
    assert "worker.1" in (tmp_path / "honcho.log").read_text()
