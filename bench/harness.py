"""What both benchmarks share: an embedded Redis and the processes they start, stopped by PID.

Every process runs in its own session (so its group id is its PID) with its output in a log
file in the run's temporary directory; ``Harness.stop`` sends SIGTERM to that group and
SIGKILL if it lingers. Leaving the ``with Harness()`` block stops everything it started.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from tidings.redis_server import EmbeddedRedis, free_port
from tidings.store import keys
from tidings.work import Scope

#: The scope the benchmarks emit in.
SCOPE = Scope("default", "test")

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
#: The worker settings both sides run with (the prefetch multiplier and acks_late are in
#: the app configs: tidings.celery_app.create_celery and bench/plain_celery.py).
WORKER_ARGS = ["--pool=prefork", "--concurrency=2", "--without-mingle", "--without-gossip"]


def wait_until(check: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


def stored_events(rdb: redis.Redis, scope: Scope = SCOPE) -> int:
    """The events stored in a scope (of one partition, the default)."""
    return int(rdb.hlen(keys.records(scope, 0)))


def finished(rdb: redis.Redis, tx_key: str, scope: Scope = SCOPE) -> int:
    """The finished transactions of a txKey in a scope (of one partition): the length of
    its list of finished ones, chunk by chunk."""
    chunks = int(rdb.hget(keys.meta(scope, 0), "seq") or 0) // keys.CHUNK + 1
    name = keys.state_list("finished", tx_key, "*")
    with rdb.pipeline(transaction=False) as pipe:
        for chunk in range(chunks):
            pipe.strlen(keys.list_chunk(scope, 0, name, chunk))
        return sum(pipe.execute()) // 2


class Harness:
    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-bench-")
        self.dir = Path(self.tmp.name)
        self.redis = EmbeddedRedis(self.dir / "redis", persist=False)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.redis_url = ""

    def __enter__(self) -> "Harness":
        self.redis_url = self.redis.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for pid in list(self.processes):
            self.stop(pid)
        if exc_type is not None:  # the logs go with the temporary directory: show their ends
            for log in sorted(self.dir.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log.name} (last lines)", *tail, sep="\n", file=sys.stderr)
        self.redis.stop()
        self.tmp.cleanup()

    def env(self, **extra: str) -> dict[str, str]:
        path = os.pathsep.join([str(BENCH), str(ROOT)])
        return {**os.environ, "REDIS_URL": self.redis_url, "PYTHONPATH": path, **extra}

    def start(self, name: str, command: list[str], **env: str) -> int:
        with open(self.dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[process.pid] = process
        return process.pid

    def check(self, pid: int, name: str) -> None:
        if self.processes[pid].poll() is not None:
            raise RuntimeError(f"{name} exited:\n" + (self.dir / f"{name}.log").read_text())

    def stop(self, pid: int) -> None:
        process = self.processes.pop(pid)
        if process.poll() is None:
            os.killpg(pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                process.wait()

    def serve(self, name: str, command: list[str], **env: str) -> tuple[int, str]:
        """Start an HTTP server given its command (``{port}`` is filled in); wait for /health."""
        port = free_port()
        pid = self.start(name, [arg.format(port=port) for arg in command], **env)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            self.check(pid, name)
            try:  # 503 with Redis up: its queues have no worker yet (they start next)
                answer = httpx.get(f"{base}/health")
                return answer.status_code == 200 or answer.json().get("redis") == "ok"
            except (httpx.TransportError, ValueError):
                return False

        wait_until(healthy, 30, name)
        return pid, base


def cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group: a
    process started here and, for a Celery worker, its pool children."""
    return sum(cpu_split(pgid))


def cpu_split(pgid: int) -> tuple[float, float]:
    """CPU time of a process group's leader (a Celery worker's main process) and of the
    rest (its pool children)."""
    leader = rest = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            used = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            if int(pid) == pgid:
                leader += used
            else:
                rest += used
    return leader, rest


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used since boot (all CPUs, /proc/stat)."""
    with open("/proc/stat") as f:
        # cpu  user nice system idle iowait irq softirq steal ...
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLOCK_TICKS


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
