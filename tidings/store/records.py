"""Records as Redis holds them, turned into named models: one place decodes each shape.

An event is one string in its partition's ``rec`` hash (records.lua writes it): a header
(seq and createdAt, 6 bytes each, and the meta's length, 2), the meta (msgpack, changed by
the scripts: v, history, expected txKeys, transactions, actors) and the body (msgpack,
made here by ``event_body`` and never changed: platform, label, eventName, payload,
headers, query as raw JSON, and a delayed event's deliverAt). The event's state and
processing flags follow from its transactions (as event_state.lua computes them); ids
follow from its key; its ttl is the retention. Scripts answer with flat field/value pairs
(``fields``).
"""

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from tidings import models
from tidings.ids import RECORD_ID_LENGTH
from tidings.work import Claim, Scope

HEADER = struct.Struct(">6s6sH")
STATES = ("pending", "processing", "finished", "failed")
#: Positions in the meta, in a transaction within it, and in a history entry.
META_V, META_HISTORY, META_EXPECTED, META_TXS, META_ACTORS = range(5)
TX_STATE, TX_CREATED, TX_ENDED, TX_ATTEMPTS, TX_V, TX_CLAIMS, TX_OUTPUT, TX_HISTORY = range(8)
H_STATE, H_AT, H_ACTOR, H_REASON = range(4)
#: The body's last place, only a delayed event's (its first six: platform ... query).
BODY_DELIVER_AT = 6
#: An endedAt not set yet.
NOT_ENDED = -1


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def fields(flat: list[Any]) -> dict[str, Any]:
    """Field/value pairs, as a hash or a script answers them, by name."""
    return {text(name): value for name, value in zip(flat[::2], flat[1::2], strict=True)}


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


def event_key_bytes(key: str) -> bytes | None:
    """An event key as Redis holds it (16 bytes), or None if it cannot be one."""
    if len(key) != 32:
        return None
    try:
        return bytes.fromhex(key)
    except ValueError:
        return None


def event_body(
    platform: str,
    label: str,
    event_name: str,
    payload: Any,
    headers: Any,
    query: Any,
    deliver_at: int | None = None,
) -> bytes:
    body: list[Any] = [platform, label, event_name, dump(payload), dump(headers), dump(query)]
    if deliver_at is not None:
        body.append(deliver_at)
    packed: bytes = msgpack.packb(body)
    return packed


def derived_id(*parts: str, length: int = RECORD_ID_LENGTH) -> str:
    """An id that follows from what it names, as stable as the name."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Stored:
    """An event record as stored, decoded."""

    key: str
    seq: int
    created_at: int
    meta: list[Any]
    platform: str
    label: str
    event_name: str
    payload: str
    headers: str
    query: str
    deliver_at: int | None

    @property
    def transactions(self) -> dict[str, list[Any]]:
        txs = self.meta[META_TXS]
        return txs if isinstance(txs, dict) else {}  # msgpack from Lua: an empty map is []

    def history(self, entries: list[list[Any]]) -> list[dict[str, Any]]:
        """A history as models.HistoryEntry's fields (a reason only where there is one, as
        its JSON has it)."""
        actors, out = self.meta[META_ACTORS], []
        previous = None
        for entry in entries:
            state = STATES[entry[H_STATE]]
            fields = {
                "enterState": state,
                "exitState": previous,
                "timestamp": self.created_at + entry[H_AT],
                "updatedBy": actors[entry[H_ACTOR] - 1],
            }
            if len(entry) > H_REASON and entry[H_REASON] is not None:
                fields["reason"] = entry[H_REASON]
            out.append(fields)
            previous = state
        return out


def log_entry(entry: bytes) -> tuple[int, bytes]:
    """An event's entry in its partition's log (log.lua): its createdAt and key (16 bytes)."""
    return int.from_bytes(entry[:6]), entry[6:]


def stored(key: str | bytes, blob: bytes) -> Stored:
    seq, created, meta_length = HEADER.unpack_from(blob)
    body = msgpack.unpackb(blob[HEADER.size + meta_length :])
    return Stored(
        key=key.hex() if isinstance(key, bytes) else key,
        seq=int.from_bytes(seq),
        created_at=int.from_bytes(created),
        meta=msgpack.unpackb(blob[HEADER.size : HEADER.size + meta_length]),
        platform=body[0],
        label=body[1],
        event_name=body[2],
        payload=body[3],
        headers=body[4],
        query=body[5],
        deliver_at=body[BODY_DELIVER_AT] if len(body) > BODY_DELIVER_AT else None,
    )


def event_id(key: str) -> str:
    return derived_id("event", key)


def event(scope: Scope, s: Stored, ttl_seconds: int) -> models.Event:
    return models.Event.model_validate(event_fields(scope, s, ttl_seconds))


def event_fields(scope: Scope, s: Stored, ttl_seconds: int) -> dict[str, Any]:
    """An event as models.Event's JSON has it (by alias, in order, without a deliverAt it
    does not have): what a /query page answers without building models (~2x faster)."""
    txs = s.transactions
    states = [STATES[tx[TX_STATE]] for tx in txs.values()]
    future = any(
        tx_key not in txs or STATES[txs[tx_key][TX_STATE]] == "processing"
        for tx_key in s.meta[META_EXPECTED]
    )
    completed = bool(states) and not future and "processing" not in states
    history = s.history(s.meta[META_HISTORY])
    fields = {
        "_id": event_id(s.key),
        "key": s.key,
        "eventName": s.event_name,
        "environment": scope.env,
        "payload": json.loads(s.payload),
        "query": json.loads(s.query),
        "headers": json.loads(s.headers),
        "createdAt": s.created_at,
        "state": history[-1]["enterState"],
        "history": history,
        "ttl": ttl_seconds,
        "v": s.meta[META_V],
        "ownership": {"buildableId": scope.owner, "userId": scope.owner, "clientId": s.label},
        "processing": {
            "hasTransactions": bool(states),
            "totalTransactions": len(states),
            "hasFutureTransactions": future,
            "isCompleted": completed,
        },
        "platform": s.platform,
        "label": s.label,
        "fullName": models.full_event_name(s.platform, s.label, s.event_name),
    }
    if s.deliver_at is not None:
        fields["deliverAt"] = s.deliver_at
    return fields


def transaction(s: Stored, tx_key: str, ttl_seconds: int) -> models.Transaction:
    tx = s.transactions[tx_key]
    created = s.created_at + tx[TX_CREATED]
    return models.Transaction(
        id=derived_id("transaction", s.key, tx_key),
        key=s.key,
        txn=derived_id("txn", s.key, tx_key, length=32),
        event=models.EventRef(id=event_id(s.key), eventName=s.event_name),
        createdAt=created,
        ttl=ttl_seconds,
        state=STATES[tx[TX_STATE]],
        history=s.history(tx[TX_HISTORY]),
        startedAt=created,
        txKey=tx_key,
        endedAt=None if tx[TX_ENDED] == NOT_ENDED else s.created_at + tx[TX_ENDED],
        output=json.loads(tx[TX_OUTPUT]) if tx[TX_OUTPUT] else None,
        attempts=tx[TX_ATTEMPTS],
        v=tx[TX_V],
    )


def transactions(s: Stored, ttl_seconds: int) -> list[models.Transaction]:
    return [transaction(s, tx_key, ttl_seconds) for tx_key in sorted(s.transactions)]


def claim(key: str, answer: list[Any]) -> Claim | None:
    """A claim script's answer as a Claim, or None if it skipped."""
    f = fields(answer)
    if text(f["status"]) != "ok":
        return None
    body = msgpack.unpackb(f["body"])
    return Claim(
        token=text(f["claim"]) if isinstance(f["claim"], bytes) else str(f["claim"]),
        attempt=int(f["attempts"]),
        payload=json.loads(body[3]),
        headers=json.loads(body[4]),
        query=json.loads(body[5]),
        created_at=int(f["createdAt"]),
        event_id=event_id(key),
        event_name=body[2],
        platform=body[0],
        label=body[1],
    )
