"""The Redis keys of connections (beside the store's, tidings/store/keys.py)::

    tidings:connection:{id}             hash  a connection: platform, label, env, owner,
                                              createdAt, revokedAt, its options (JSON) and
                                              its signing secret
    tidings:connections                 set   the id of every connection ever made
    tidings:connection:{id}:deliveries  list  its last LOG_SIZE requests taken, newest first
                                              (JSON DeliveryRecord)
    tidings:connection:{id}:rejections  list  its last LOG_SIZE requests refused, likewise

The events a connection's requests become are the store's, in its owner's environment; a
repeated delivery is found by the store's idempotency key ``webhook:{id}:{delivery id}``.
"""

from tidings.store.keys import ROOT

CONNECTIONS = f"{ROOT}:connections"


def connection(connection_id: str) -> str:
    return f"{ROOT}:connection:{connection_id}"


def deliveries(connection_id: str) -> str:
    return f"{connection(connection_id)}:deliveries"


def rejections(connection_id: str) -> str:
    return f"{connection(connection_id)}:rejections"


def idempotency_key(connection_id: str, delivery_id: str) -> str:
    return f"webhook:{connection_id}:{delivery_id}"
