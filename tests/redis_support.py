"""A Redis client for the tests' own reads and writes, of the database under test: a
cluster client when the run is on a Redis Cluster (TIDINGS_REDIS_CLUSTER, set by
tests/conftest.py for `make test`'s cluster run), else a plain one."""

import os
from typing import Any

import redis
from redis.cluster import RedisCluster


def on_cluster() -> bool:
    return os.environ.get("TIDINGS_REDIS_CLUSTER", "").lower() == "true"


def client(url: str, **options: Any) -> Any:
    """redis.Redis, or RedisCluster on a cluster run; both answer the same commands."""
    if on_cluster():
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)
