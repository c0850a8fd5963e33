"""The Redis Cluster fixture (tests/cluster_support.py) is a real cluster of three masters:
keys spread over the nodes by slot, the nodes refuse a command whose keys span slots, and
leaving it stops them; the RabbitMQ helper tells whether a broker answers."""

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from cluster_support import MASTERS, EmbeddedCluster, rabbitmq_unavailable
from kombu.connection import Connection
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

from tidings.redis_server import free_port


@pytest.fixture
def cluster(redis_cluster_url: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


def test_keys_in_different_slots_land_on_different_nodes(cluster: RedisCluster) -> None:
    primaries = cluster.get_primaries()
    assert len(primaries) == MASTERS
    one_key_per_node: dict[str, str] = {}
    for i in range(1000):
        key = f"event:{i}"
        one_key_per_node.setdefault(cluster.get_node_from_key(key).name, key)
    assert len(one_key_per_node) == MASTERS
    for key in one_key_per_node.values():
        cluster.set(key, "stored")

    for node in primaries:  # asked directly, each node holds its own key and no other
        with redis.Redis(host=node.host, port=node.port, decode_responses=True) as direct:
            assert direct.keys("event:*") == [one_key_per_node[node.name]]


def test_a_multi_key_command_works_on_keys_sharing_a_hash_tag(cluster: RedisCluster) -> None:
    cluster.mset({"{shop:test}:a": "1", "{shop:test}:b": "2"})
    assert cluster.mget("{shop:test}:a", "{shop:test}:b") == ["1", "2"]
    moved = cluster.eval(
        "redis.call('SET', KEYS[2], redis.call('GET', KEYS[1])) return redis.call('GET', KEYS[2])",
        2,
        "{shop:test}:a",
        "{shop:test}:c",
    )
    assert moved == "1"


def test_a_node_refuses_a_multi_key_command_across_slots(cluster: RedisCluster) -> None:
    first, second = "event:a", "event:b"
    assert cluster.keyslot(first) != cluster.keyslot(second)
    node = cluster.get_node_from_key(first)  # sent to a node as is, past the client's own check
    with pytest.raises(ClusterCrossSlotError):
        cluster.execute_command("MSET", first, "1", second, "2", target_nodes=node)
    with pytest.raises(ClusterCrossSlotError):
        cluster.execute_command("EVAL", "return 1", 2, first, second, target_nodes=node)
    assert cluster.exists(first, second) == 0


def test_leaving_the_cluster_stops_its_nodes_and_removes_their_directory() -> None:
    with EmbeddedCluster() as cluster:
        pids = [node.process.pid for node in cluster.nodes if node.process]
        assert len(pids) == MASTERS
        assert cluster.dir is not None and cluster.dir.is_dir()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not cluster.dir.exists()


def test_rabbitmq_unavailable_says_why_where_nothing_answers() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    problem = rabbitmq_unavailable(url)
    assert problem is not None and problem.startswith(f"RabbitMQ does not answer at {url}")


def test_rabbitmq_url_names_a_broker_that_carries_a_message(rabbitmq_url: str) -> None:
    name = f"tidings-test-{uuid.uuid4().hex}"
    # kombu annotates little: its Connection() takes no typed arguments.
    with Connection(rabbitmq_url) as connection:  # type: ignore[no-untyped-call]
        queue = connection.SimpleQueue(  # both gone when the connection closes
            name, queue_opts={"exclusive": True}, exchange_opts={"auto_delete": True}
        )
        queue.put({"hello": "cluster"})
        assert queue.get(timeout=5).payload == {"hello": "cluster"}
        queue.close()
