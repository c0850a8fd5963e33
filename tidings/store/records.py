"""Records as Redis holds them, turned into named models: one place decodes each shape."""

import json
from typing import Any

from tidings import models
from tidings.work import Claim, Emitted, Scope


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fields(flat: list[str]) -> dict[str, str]:
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
    if answer[0] != "ok":
        return None
    attempts, payload, headers, query, created_at, event_id, name, platform, label = answer[1:]
    return Claim(
        token=token,
        attempt=int(attempts),
        payload=json.loads(payload),
        headers=json.loads(headers),
        query=json.loads(query),
        created_at=int(created_at),
        event_id=event_id,
        event_name=name,
        platform=platform,
        label=label,
    )


def emitted(event_keys: list[str], routes: list[list[str]]) -> list[Emitted]:
    return [
        Emitted(key, list(zip(r[::2], r[1::2], strict=True)))
        for key, r in zip(event_keys, routes, strict=True)
    ]
