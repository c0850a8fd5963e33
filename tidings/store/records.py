"""Records as Redis holds them, turned into named models: one place decodes each shape.

Scripts answer as HGETALL does, with flat field/value pairs (``as_pairs`` in records.lua),
so that every record is read by name.
"""

import json
from typing import Any

from tidings import models
from tidings.work import Claim, Emitted, Scope, WorkItem


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fields(flat: list[Any]) -> dict[str, Any]:
    """Field/value pairs, as a hash or a script answers them, by name."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def secret_key(record: dict[str, str]) -> models.SecretKey:
    return models.SecretKey.model_validate(
        {
            **record,
            "createdAt": int(record["createdAt"]),
            "revokedAt": int_or_none(record.get("revokedAt")),
        }
    )


def event(scope: Scope, f: dict[str, str]) -> models.Event:
    return models.Event(
        id=f["_id"],
        key=f["key"],
        eventName=f["eventName"],
        environment=scope.env,
        payload=json.loads(f["payload"]),
        query=json.loads(f["query"]),
        headers=json.loads(f["headers"]),
        createdAt=int(f["createdAt"]),
        state=f["state"],
        history=json.loads(f["history"]),
        ttl=int(f["ttl"]),
        v=int(f["v"]),
        ownership=models.Ownership(
            buildableId=scope.owner, userId=scope.owner, clientId=f["label"]
        ),
        processing=models.Processing(
            hasTransactions=f["hasTransactions"] == "1",
            totalTransactions=int(f["totalTransactions"]),
            hasFutureTransactions=f["hasFutureTransactions"] == "1",
            isCompleted=f["isCompleted"] == "1",
        ),
        platform=f["platform"],
        label=f["label"],
        fullName=models.full_event_name(f["platform"], f["label"], f["eventName"]),
    )


def transaction(f: dict[str, str]) -> models.Transaction:
    return models.Transaction(
        id=f["_id"],
        key=f["key"],
        txn=f["txn"],
        event=models.EventRef(id=f["eventId"], eventName=f["eventName"]),
        createdAt=int(f["createdAt"]),
        ttl=int(f["ttl"]),
        state=f["state"],
        history=json.loads(f["history"]),
        startedAt=int(f["startedAt"]),
        txKey=f["txKey"],
        endedAt=int_or_none(f.get("endedAt")),
        output=json.loads(f["output"]) if "output" in f else None,
        attempts=int(f["attempts"]),
        v=int(f["v"]),
    )


def claim(answer: list[Any], token: str) -> Claim | None:
    """A claim script's answer as a Claim, or None if it skipped."""
    f = fields(answer)
    if f["status"] != "ok":
        return None
    return Claim(
        token=token,
        attempt=int(f["attempts"]),
        payload=json.loads(f["payload"]),
        headers=json.loads(f["headers"]),
        query=json.loads(f["query"]),
        created_at=int(f["createdAt"]),
        event_id=f["_id"],
        event_name=f["eventName"],
        platform=f["platform"],
        label=f["label"],
    )


def emitted(event_keys: list[str], stored: list[list[Any]]) -> list[Emitted]:
    """Events as store_events (events.lua) answers for each: stored with the txKey/queue
    pairs of its handlers, or a duplicate of the event first stored with its idempotency
    key."""
    found = []
    for key, answer in zip(event_keys, map(fields, stored), strict=True):
        if answer["duplicateOf"]:
            found.append(Emitted(answer["duplicateOf"], [], duplicate=True))
        else:
            found.append(Emitted(key, list(fields(answer["routes"]).items())))
    return found


def work(answer: list[Any], *, attempt: int = 0) -> tuple[WorkItem, str]:
    """A work item a script hands out, with its queue."""
    f = fields(answer)
    return WorkItem(f["owner"], f["env"], f["key"], f["txKey"], attempt), f["queue"]
